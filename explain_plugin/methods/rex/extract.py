"""Explanations from a responsibility map, as engine producers.

Pixels are ranked by responsibility (ties: by the map blurred, so pixels next to
more responsible ones come first; then by position). An explanation is a
prefix of a ranking. Every search below is batched: a round evaluates
``points`` prefix lengths at once (geometric first, then evenly inside the
bracket found), so finding the minimal prefix to 2% (or ``resolution`` pixels)
takes 2-3 rounds, not one evaluation per chunk.

- global: the smallest prefix that alone gives the target (minimal sufficient).
- spatial: the smallest disc around the map's peak that gives the target, then
  the global search inside it.
- multi: the global explanation, then spatial searches from further peaks of
  the map; explanations overlapping an earlier one (Dice > ``overlap``) dropped.
- contrastive: the smallest prefix that is sufficient (kept alone, the target
  stays) and necessary (occluded, the target goes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from explain_plugin.methods.rex.search import Producer

STRATEGIES = ("global", "spatial", "multi", "contrastive")
POINTS = 20  # prefix lengths per round: 2 rounds reach RELATIVE on a 224 x 224 view
RELATIVE = 0.02  # an explanation is minimal to within 2% of its size (or the chunk size)


@dataclass
class Found:
    """An explanation's outcome: ``mask`` (bool [h, w]) or None when none exists."""

    mask: np.ndarray | None = None
    score: float | None = None
    evaluations: int = 0
    note: str = ""
    masks: list = field(default_factory=list)  # multi: every explanation


def ranking(rmap: np.ndarray, restrict: np.ndarray | None = None) -> np.ndarray:
    """int [h*w]: each pixel's position in the ranking (0 = most responsible);
    pixels outside ``restrict`` rank after every pixel inside it."""
    import cv2

    h, w = rmap.shape
    m = rmap.astype(np.float32)
    smooth = cv2.GaussianBlur(m, (0, 0), sigmaX=max(1.0, max(h, w) / 64))
    keys = [np.arange(h * w), -smooth.ravel(), -m.ravel()]
    if restrict is not None:
        keys.append(~restrict.ravel())
    order = np.lexsort(keys)
    pos = np.empty(h * w, np.int64)
    pos[order] = np.arange(h * w)
    return pos


def _grid(lo: int, hi: int, points: int, geometric: bool) -> np.ndarray:
    """Prefix lengths in (lo, hi], ``hi`` always included."""
    if geometric:
        grid = np.geomspace(max(lo, 1), hi, points + 1)[1:]
    else:
        grid = np.linspace(lo, hi, points + 2)[1:]
    grid = np.unique(np.clip(np.ceil(grid).astype(np.int64), lo + 1, hi))
    return grid


def prefix_search(pos: np.ndarray, shape: tuple[int, int], judge: Callable, hi: int,
                  found: Found, points: int = POINTS, resolution: int = 10,
                  contrastive: bool = False, relative: float = RELATIVE) -> Producer:
    """The smallest prefix length n <= ``hi`` of ranking ``pos`` passing (sufficient;
    with ``contrastive`` also necessary), to within ``resolution`` pixels or
    ``relative`` x n, whichever is larger (two rounds of ``points`` on a photo)."""
    lo, best, geometric = 0, None, True
    while True:
        grid = _grid(lo, hi if best is None else best, points, geometric)
        if best is not None:
            grid = grid[grid < best]
        if not len(grid):
            break
        keep = pos[None, :] < grid[:, None]
        masks = keep.reshape(len(grid), *shape)
        if contrastive:
            answer = yield np.concatenate([masks, ~masks])
            ok = judge(answer)
            good = ok[: len(grid)] & ~ok[len(grid):]
            found.evaluations += 2 * len(grid)
        else:
            answer = yield masks
            good = judge(answer)
            found.evaluations += len(grid)
        hits = np.flatnonzero(good)
        if len(hits):
            first = hits[0]
            best = int(grid[first])
            scores = np.asarray(answer.scores)[:, getattr(judge, "column", 0)]
            found.score = float(scores[first])
            lo = int(grid[first - 1]) if first > 0 else lo
        else:
            if best is None:
                return  # nothing up to ``hi`` passes
            lo = int(grid[-1])
        geometric = False
        if best - lo <= max(resolution, relative * best):
            break
    if best is not None:
        found.mask = (pos < best).reshape(shape)


def _disc(shape: tuple[int, int], centre: tuple[int, int], radii: np.ndarray) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    dist2 = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2
    return dist2[None] <= (radii[:, None, None] ** 2)


def spatial_search(rmap: np.ndarray, judge: Callable, found: Found, centre=None,
                   radius: float = 25.0, eta: float = 0.2, expansions: int | None = None,
                   points: int = POINTS, resolution: int = 10) -> Producer:
    """Grow a disc around ``centre`` (default: the map's peak) until alone it gives
    the target; then the global search inside that disc."""
    shape = rmap.shape
    if centre is None:
        centre = np.unravel_index(int(np.argmin(ranking(rmap))), shape)
    reach = float(np.hypot(max(centre[0], shape[0] - centre[0]), max(centre[1], shape[1] - centre[1])))
    count = int(np.ceil(np.log(max(reach / radius, 1.0)) / np.log1p(eta))) + 1
    if expansions is not None:
        count = min(count, expansions + 1)
    radii = radius * (1 + eta) ** np.arange(count)
    discs = _disc(shape, centre, radii)
    answer = yield discs
    ok = judge(answer)
    found.evaluations += len(radii)
    if not ok.any():
        found.note = "no disc around the peak gives the target"
        return
    disc = discs[int(np.argmax(ok))]
    pos = ranking(rmap, restrict=disc)
    yield from prefix_search(pos, shape, judge, int(disc.sum()), found, points, resolution)


def peaks(rmap: np.ndarray, count: int, radius: float) -> list[tuple[int, int]]:
    """Up to ``count`` centres: the map's highest points, each at least ``radius``
    from the others (greedy non-maximum suppression), where the map is > 0."""
    import cv2

    h, w = rmap.shape
    m = cv2.GaussianBlur(rmap.astype(np.float32), (0, 0), sigmaX=max(1.0, radius / 3))
    m[rmap <= 0] = -np.inf
    yy, xx = np.ogrid[:h, :w]
    out = []
    for _ in range(count):
        i = int(np.argmax(m))
        if not np.isfinite(m.flat[i]):
            break
        y, x = divmod(i, w)
        out.append((y, x))
        m[(yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2] = -np.inf
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 0.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def distinct(masks: list[np.ndarray], wanted: int, overlap: float) -> list[int]:
    """Indices of up to ``wanted`` masks, in order, none overlapping an earlier kept one
    by more than Dice ``overlap``."""
    kept: list[int] = []
    for i, m in enumerate(masks):
        if m is None or not m.any():
            continue
        if all(dice(m, masks[j]) <= overlap for j in kept):
            kept.append(i)
        if len(kept) == wanted:
            break
    return kept
