"""Cheap per-target metrics a dataset run stores beside each map.

``region_area``: share of the image in the explanation region. Where the item has
ground-truth boxes of the target's label: ``pointing`` (the map's peak falls in one
of them, Zhang et al. 2016) and ``energy_in_box`` (the share of the map's mass inside
them), unless the method's own metrics (``--metrics``) measured them already.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def target_metrics(saliency: np.ndarray, region: np.ndarray,
                   gt_boxes: Sequence[tuple[float, float, float, float]],
                   source_hw: tuple[int, int], method_metrics: dict | None = None
                   ) -> dict[str, Any]:
    """Metrics of one map [h, w] in [0, 1] and its region, against GT boxes (source
    pixels) of its label, on top of the method's own ``method_metrics``."""
    from explain_plugin.methods.metrics import box_scores

    out: dict[str, Any] = {k: v for k, v in (method_metrics or {}).items()
                           if v is not None and k != "steps"}
    out["region_area"] = round(float(region.mean()), 4)
    if gt_boxes and "pointing" not in out and float(saliency.max()) > 0:
        h, w = saliency.shape
        sx, sy = w / source_hw[1], h / source_hw[0]
        hit, share = box_scores(saliency, [(x1 * sx, y1 * sy, x2 * sx, y2 * sy)
                                           for x1, y1, x2, y2 in gt_boxes])
        out["pointing"], out["energy_in_box"] = int(hit), round(share, 4)
    return out
