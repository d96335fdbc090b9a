"""Greedy refinement of a map's top: which segments, in which order, matter most.

A sampled map ranks segments by their average effect over random contexts, but
what a reader (and a deletion/insertion curve) needs is the order of the first
few: the segment whose removal, given those already removed, hurts the target
most, and whose addition, given those already kept, helps it most. Starting from
the map's ranking, each step scores the ``candidates`` best-ranked segments not
yet chosen twice, removed with the chosen ones from the whole image and kept with
them alone (everything else occluded), and takes the ``add`` segments with the
largest (kept - removed) score. Every image is an evaluation of the method's own
budget; steps depend on the previous ones (a closed-loop producer per target).
"""
from __future__ import annotations

from typing import Generator

import numpy as np

from explain_plugin.methods.segments.render import SegmentRenderer


def plan(budget: int, targets: int, candidates: int) -> tuple[int, int]:
    """(steps per target, evaluations used) for a refinement budget; 0 steps when it
    cannot pay for one step of every target."""
    per = 2 * candidates + 2  # + the check of the map's own order, one step deep each
    steps = budget // (per * max(1, targets))
    return steps, steps * per * max(1, targets)


def segment_means(raw: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """float64 [count]: the map's mean over each segment (labels at the map's size)."""
    area = np.bincount(labels.reshape(-1), minlength=count).astype(np.float64)
    total = np.bincount(labels.reshape(-1), raw.reshape(-1).astype(np.float64), minlength=count)
    return total / np.maximum(area, 1)


def greedy(prior: np.ndarray, render: SegmentRenderer, target: int, steps: int,
           candidates: int, add: int) -> Generator[np.ndarray, object, list[int]]:
    """Producer: the chosen segments in order. ``prior`` [K] ranks the segments
    ``render`` draws (at the view's size); ``target`` is the answer column to read."""
    count = len(prior)
    order = [int(k) for k in np.argsort(-prior, kind="stable")]
    chosen: list[int] = []
    gains: list[float] = []
    for _ in range(steps):
        pool = [k for k in order if k not in chosen][:candidates]
        if not pool:
            break
        table = np.zeros((len(pool), count), np.bool_)  # [M, K]: the removed/kept set
        table[:, chosen] = True
        table[np.arange(len(pool)), pool] = True
        answer = yield render(np.concatenate([~table, table]))
        scores = np.asarray(answer.scores[:, target], np.float64)
        gain = scores[len(pool):] - scores[:len(pool)]
        best = np.argsort(-gain, kind="stable")[:add]
        chosen += [pool[i] for i in best]
        gains.append(float(gain[best[0]]))
    # The greedy order must beat the map's own: the same curves for its top segments
    # (cumulative, as many steps); otherwise the map is left as it is.
    own = order[:len(gains)]
    table = np.tril(np.ones((len(own), len(own)), np.bool_))  # row i: the top i + 1
    sets = np.zeros((len(own), count), np.bool_)
    sets[:, own] = table
    answer = yield render(np.concatenate([~sets, sets]))
    scores = np.asarray(answer.scores[:, target], np.float64)
    mine = scores[len(own):] - scores[:len(own)]
    return chosen if sum(gains) > float(mine.sum()) else []


def lift(raw: np.ndarray, labels: np.ndarray, chosen: list[int]) -> np.ndarray:
    """The map with the chosen segments (map-size ``labels``) raised above every other
    pixel, in the chosen order, each flat; the rest keeps its values."""
    if not chosen:
        return raw
    out = raw.astype(np.float64)
    lo, hi = float(out.min()), float(out.max())
    span = (hi - lo) or 1.0
    rank = np.full(int(labels.max()) + 1, -1, np.int64)
    rank[chosen] = np.arange(len(chosen))
    r = rank[labels]
    lifted = hi + span * (len(chosen) - r) / (2.0 * len(chosen))
    return np.where(r >= 0, lifted, out)
