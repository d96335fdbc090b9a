"""ReX's boxes: random 4-way splits, and masks / maps painted from many boxes at once.

A box is an int row ``[y0, y1, x0, x1, depth]`` (half-open, view pixels). Boxes
of one mutant never overlap. Responsibility maps sum many boxes' credits: a 2-D
difference array paints them all in one pass.
"""
from __future__ import annotations

import numpy as np

DISTRIBUTIONS = ("uniform", "betabinom")
BETABINOM_ARGS = (1.1, 1.1)  # ReX's distribution_args example: a flat-ish bell


def splittable(boxes: np.ndarray, tree_depth: int, min_box_size: int) -> np.ndarray:
    """bool [N]: boxes that can split into 4 children of ``min_box_size`` px on average,
    and are above the depth limit."""
    h = boxes[:, 1] - boxes[:, 0]
    w = boxes[:, 3] - boxes[:, 2]
    return (h >= 2) & (w >= 2) & (h * w >= 4 * max(1, min_box_size)) & (boxes[:, 4] < tree_depth)


def _cut(rng: np.random.Generator, size: np.ndarray, distribution: str,
         args: tuple[float, float]) -> np.ndarray:
    """A cut inside each span, in [1, size - 1], so both parts are non-empty."""
    if distribution == "betabinom":
        p = rng.beta(args[0], args[1], size=size.shape)
        return 1 + rng.binomial(size - 2, p)
    return rng.integers(1, size)  # uniform on [1, size - 1]


def split(boxes: np.ndarray, rng: np.random.Generator, distribution: str = "uniform",
          args: tuple[float, float] = BETABINOM_ARGS) -> np.ndarray:
    """Children [N, 4, 5] of splittable boxes [N, 5] at one random point each:
    0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right (ReX's order)."""
    y0, y1, x0, x1, d = boxes.T
    ry = y0 + _cut(rng, y1 - y0, distribution, args)
    rx = x0 + _cut(rng, x1 - x0, distribution, args)
    d1 = d + 1
    rows = [
        (y0, ry, x0, rx), (y0, ry, rx, x1),
        (ry, y1, x0, rx), (ry, y1, rx, x1),
    ]
    return np.stack([np.stack([a, b, c, e, d1], axis=1) for a, b, c, e in rows], axis=1)


def area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 1] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 2])


def paint(owner: np.ndarray, boxes: np.ndarray, count: int, height: int, width: int,
          values: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
    """[count, height, width]: ``values`` (default 1) summed over the boxes of each owner.

    ``owner`` [N] is the output index of each of ``boxes`` [N, >=4].
    """
    diff = np.zeros((count, height + 1, width + 1), dtype=np.float64 if values is not None
                    else np.int32)
    v = np.ones(len(boxes), diff.dtype) if values is None else np.asarray(values, diff.dtype)
    y0, y1, x0, x1 = (boxes[:, i] for i in range(4))
    np.add.at(diff, (owner, y0, x0), v)
    np.add.at(diff, (owner, y0, x1), -v)
    np.add.at(diff, (owner, y1, x0), -v)
    np.add.at(diff, (owner, y1, x1), v)
    out = diff.cumsum(axis=1).cumsum(axis=2)[:, :height, :width]
    return out.astype(dtype, copy=False)


def masks_of(kept: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """bool [K, height, width]: mutant k keeps the pixels of the boxes ``kept[k]``.

    Filled box by box (a mutant has a few boxes): memset-speed slices cost far less
    than integrating a difference array over every pixel of every mask."""
    out = np.zeros((len(kept), height, width), bool)
    for k, boxes in enumerate(kept):
        for y0, y1, x0, x1 in boxes[:, :4].tolist():
            out[k, y0:y1, x0:x1] = True
    return out
