"""Quality metrics of any method's maps, measured through the evaluation engine.

Per target:
* ``deletion`` / ``insertion`` AUC (Petsiuk et al., RISE): pixels by decreasing
  saliency; step k of ``steps`` deletes (sets to the occlusion base) or inserts
  (into a Gaussian blur, sigma = 10% of the image's size) the k/steps most
  salient pixels; the curve is the target's score, the AUC its trapezoid mean.
  Lower deletion and higher insertion are better. Every step of every target
  goes to the engine at once (purpose ``metrics``: counted apart).
* ``area``: the smallest fraction (on the same step grid) of top-ranked pixels
  that alone, everything else occluded with the method's mask value, make the
  target the model's answer (None: not even the whole image): the size of a
  sufficient explanation. A binary search, a handful of evaluations per target.
* with a ground-truth box of the target's label: ``pointing`` (the map's peak lies
  inside a box) and ``energy_in_box`` (share of the map's mass inside the boxes).
"""
from __future__ import annotations

from typing import Any, Sequence

import click
import numpy as np

INSERTION_BLUR = 0.1  # sigma of the insertion start, as a fraction of the image's size
MAX_TARGETS = 10  # metrics cost 2 x (steps + 1) + ~log2(steps) evaluations per target


def metric_options() -> list[click.Parameter]:
    """``--metrics/--no-metrics`` and ``--metric-steps``, for any method to include."""
    return [
        click.Option(["--metrics/--no-metrics"], default=True, show_default=True,
                     help=f"Measure the maps: deletion/insertion AUC, explanation area, and "
                          f"pointing game/energy in ground-truth boxes (first {MAX_TARGETS} "
                          "targets; evaluations counted apart)."),
        click.Option(["--metric-steps"], type=click.IntRange(min=2), default=20,
                     show_default=True, help="Steps of the deletion and insertion curves."),
    ]


def auc(curve: np.ndarray) -> np.ndarray:
    """Area under curves sampled at evenly spaced fractions 0..1 (last axis), trapezoids."""
    curve = np.asarray(curve, np.float64)
    steps = curve.shape[-1] - 1
    return (curve.sum(axis=-1) - 0.5 * (curve[..., 0] + curve[..., -1])) / steps


def rank(saliency: np.ndarray) -> np.ndarray:
    """Each pixel's rank by decreasing saliency (0 = most salient), ties by position."""
    order = np.argsort(-saliency.reshape(-1), kind="stable")
    out = np.empty(order.size, np.int64)
    out[order] = np.arange(order.size)
    return out.reshape(saliency.shape)


def step_masks(saliency: np.ndarray, steps: int) -> np.ndarray:
    """bool [steps + 1, h, w]: step k holds the k/steps most salient pixels."""
    counts = np.round(np.linspace(0, saliency.size, steps + 1)).astype(np.int64)
    return rank(saliency)[None] < counts[:, None, None]


def box_scores(saliency: np.ndarray, boxes: Sequence[tuple[float, float, float, float]]
               ) -> tuple[bool, float]:
    """(pointing game hit, share of the map's mass inside the union of ``boxes``), for
    boxes in the map's own pixel coordinates."""
    h, w = saliency.shape
    inside = np.zeros((h, w), bool)
    ys, xs = np.arange(h) + 0.5, np.arange(w) + 0.5
    for x1, y1, x2, y2 in boxes:
        inside |= ((ys >= y1) & (ys <= y2))[:, None] & ((xs >= x1) & (xs <= x2))[None, :]
    peak = np.unravel_index(np.argmax(saliency), saliency.shape)
    total = float(saliency.sum())
    share = float(saliency[inside].sum() / total) if total > 0 else 0.0
    return bool(inside[peak]), share


def evaluate_maps(evaluator, maps: np.ndarray, targets: Sequence, item=None, steps: int = 20,
                  max_targets: int = MAX_TARGETS) -> list[dict[str, Any] | None]:
    """Metrics for maps [T, h, w] of ``targets``, one dict per target (None past
    ``max_targets``), computed on the evaluator's view with purpose ``metrics``."""
    import cv2

    from explain_plugin.methods.occlusion import Occlusion
    from explain_plugin.methods.view import upsample

    view = evaluator.view
    vh, vw = view.hw
    count = min(len(targets), max_targets)
    sal = upsample(maps[:count], vh, vw)
    blur = Occlusion(view.pixels, cv2.GaussianBlur(
        view.pixels, (0, 0), sigmaX=max(1.0, INSERTION_BLUR * max(vh, vw))))

    def curve(t: int, inserted: bool):
        chosen = step_masks(sal[t], steps)
        answer = yield (chosen if inserted else ~chosen)
        return answer.scores[:, t]

    def area(t: int):
        ranks = rank(sal[t])
        counts = np.round(np.linspace(0, ranks.size, steps + 1)).astype(np.int64)
        answer = yield ranks[None] < counts[[0, steps], None, None]
        if answer.hit[0, t]:
            return 0.0
        if not answer.hit[1, t]:
            return None
        lo, hi = 0, steps  # not sufficient at lo, sufficient at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            answer = yield (ranks < counts[mid])[None]
            lo, hi = (lo, mid) if answer.hit[0, t] else (mid, hi)
        return hi / steps

    producers, occlusions = [], []
    for t in range(count):
        producers += [curve(t, False), curve(t, True), area(t)]
        occlusions += [evaluator.occlusion, blur, evaluator.occlusion]
    results = evaluator.run(producers, purpose="metrics", occlusion=occlusions)

    out: list[dict[str, Any] | None] = []
    sx, sy = view.scale
    for t in range(count):
        dele, ins, size = results[3 * t: 3 * t + 3]
        entry: dict[str, Any] = {
            "deletion_auc": round(float(auc(dele)), 6),
            "insertion_auc": round(float(auc(ins)), 6),
            "area": size,
            "steps": steps,
        }
        boxes = [b for name, b in (item.boxes if item is not None else [])
                 if name == targets[t].name]
        if boxes:
            in_view = [(x1 / sx, y1 / sy, x2 / sx, y2 / sy) for x1, y1, x2, y2 in boxes]
            entry["pointing"], entry["energy_in_box"] = box_scores(sal[t], in_view)
            entry["energy_in_box"] = round(entry["energy_in_box"], 6)
        out.append(entry)
    return out + [None] * (len(targets) - count)
