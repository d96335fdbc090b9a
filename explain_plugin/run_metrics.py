"""Cheap per-target metrics a dataset run stores beside each map.

``area``: share of the image in the explanation region. Where the item has
ground-truth boxes of the target's label: ``pointing`` (1 when the map's peak
falls in one of them, Zhang et al. 2016) and ``energy`` (the share of the map's
mass inside them). The shared core's metrics (deletion/insertion AUC) join these
when it lands.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def box_mask(boxes: Sequence[tuple[float, float, float, float]], h: int, w: int,
             scale: tuple[float, float]) -> np.ndarray:
    """bool [h, w]: pixels whose centres fall in any box (boxes in source pixels)."""
    sx, sy = scale
    ys = (np.arange(h) + 0.5)[:, None] / sy
    xs = (np.arange(w) + 0.5)[None, :] / sx
    out = np.zeros((h, w), dtype=bool)
    for x1, y1, x2, y2 in boxes:
        out |= (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
    return out


def target_metrics(saliency: np.ndarray, region: np.ndarray,
                   gt_boxes: Sequence[tuple[float, float, float, float]],
                   source_hw: tuple[int, int]) -> dict[str, float | int | None]:
    """Metrics of one map [h, w] in [0, 1] and its region, against GT boxes of its label."""
    h, w = saliency.shape
    out: dict[str, float | int | None] = {"area": round(float(region.mean()), 4)}
    if not gt_boxes:
        return out
    inside = box_mask(gt_boxes, h, w, (w / source_hw[1], h / source_hw[0]))
    if not inside.any():
        return out
    total = float(saliency.sum())
    if total <= 0:
        out.update(pointing=None, energy=None)
        return out
    peak = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    out["pointing"] = int(inside[peak])
    out["energy"] = round(float(saliency[inside].sum() / total), 4)
    return out
