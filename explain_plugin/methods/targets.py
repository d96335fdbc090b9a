"""What to explain: ``--targets top:K | all | NAME,ID,...`` or a per-item list, resolved
against the model's answer on the clean image into classes (classification) or boxes
(detection), with the scorer that weighs perturbed images against them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from explain_plugin.errors import CliError
from explain_plugin.methods.base import ExplainedTarget


@dataclass(frozen=True)
class TargetSpec:
    """``kind``: default | top | all | labels | items. ``value``: K, label ids, or (for
    ``items``) ExplainedTargets given per item, e.g. ground truth (boxes in image pixels)."""

    kind: str = "default"
    value: object = None

    def __iter__(self):  # unpacks as (kind, value), the older tuple form
        return iter((self.kind, self.value))



def detection_options(iou: float = 0.9, iou_help: str = "Detections: min IoU for a masked "
                      "detection to count.") -> list:
    """``--iou``, ``--nms`` and ``--conf``: which detected boxes a method explains and how a
    masked image's boxes are matched to them (the same flags for every method)."""
    import click

    opt = click.Option
    return [
        opt(["--iou", "--iou-thresh", "iou_thresh"], type=click.FloatRange(0, 1), default=iou,
            show_default=True, help=iou_help),
        opt(["--nms", "--nms-iou-thresh", "nms_iou_thresh"], type=click.FloatRange(0, 1),
            default=0.0, show_default=True,
            help="Detections: NMS IoU threshold on the clean image's boxes (0: off)."),
        opt(["--conf", "--det-conf-thresh", "det_conf_thresh"], type=click.FloatRange(0, 1),
            default=0.0, show_default=True,
            help="Detections: min confidence of a clean-image box to explain."),
    ]

def parse_targets(spec: str | None, labels: Sequence[str]) -> TargetSpec:
    """Parse ``--targets``. The default is the top-1 class for a classifier and every
    box for a detector."""
    spec = (spec or "").strip()
    if not spec:
        return TargetSpec("default")
    if spec == "all":
        return TargetSpec("all")
    if spec.startswith("top"):
        _, _, k = spec.partition(":")
        try:
            count = int(k or 1)
        except ValueError:
            count = 0
        if count < 1:
            raise CliError(f"bad --targets '{spec}': write top:K with K >= 1, e.g. top:3")
        return TargetSpec("top", count)
    ids = []
    for token in filter(None, (t.strip() for t in spec.split(","))):
        if token in labels:
            ids.append(list(labels).index(token))
        elif token.isdigit() and int(token) < len(labels):
            ids.append(int(token))
        else:
            raise CliError(
                f"bad --targets: '{token}' is not a label of the model: use top:K, all, "
                f"or names/ids among {', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''}"
            )
    if not ids:
        raise CliError("bad --targets: empty list: use top:K, all, or label names/ids")
    return TargetSpec("labels", ids)


def item_targets(targets: Sequence[ExplainedTarget]) -> TargetSpec:
    """A per-item list (e.g. an item's ground-truth labels or boxes) as a spec."""
    return TargetSpec("items", list(targets))


def select_classes(scores: np.ndarray, spec: TargetSpec) -> np.ndarray:
    """Class ids to explain, given the clean image's scores [C]."""
    kind, value = spec
    if kind == "all":
        return np.arange(scores.shape[0])
    if kind in ("top", "default"):
        return np.argsort(-scores, kind="stable")[: int(value or 1)]
    if kind == "items":
        return np.asarray([t.label for t in value], dtype=np.int64)
    return np.asarray(value, dtype=np.int64)


def select_boxes(labels: np.ndarray, scores: np.ndarray, spec: TargetSpec) -> np.ndarray:
    """Indices of detections to explain (default and all: every box, as D-RISE does)."""
    kind, value = spec
    order = np.argsort(-scores, kind="stable")
    if kind == "labels":
        return order[np.isin(labels[order], value)]
    if kind == "top":
        return order[: int(value)]
    return order


def resolve(launcher, view, spec: TargetSpec, *, conf: float = 0.0, nms: float = 0.0,
            iou: float = 0.0):
    """``(scorer, targets)`` from the model's answer on the clean view: classes, or boxes
    after ``conf`` and ``nms`` (``iou``: the match a perturbed box needs)."""
    from explain_plugin.launchers.predictions import (
        Detections, detections_from_annotations, scores_from_annotations,
    )
    from explain_plugin.methods.scoring import (
        BoxScorer, ClassScorer, box_targets, class_targets,
    )

    labels = [c.name for c in launcher.categories]
    num_classes = len(labels)
    clean = launcher.predict_views([view.pixels])[0]
    if any(_is_box(a) for a in clean):
        det = detections_from_annotations(clean, num_classes)
        if spec.kind == "items":  # given boxes, in image pixels: explained as themselves
            boxes = np.array([view.box_to_view(t.box) for t in spec.value], np.float32)
            det = Detections(boxes.reshape(-1, 4),
                             np.array([t.label for t in spec.value], np.int64),
                             np.array([t.score for t in spec.value], np.float32))
        else:
            det = det.subset(np.flatnonzero(det.scores >= conf))
            if nms:
                det = det.subset(det.nms(nms))
            det = det.subset(select_boxes(det.labels, det.scores, spec))
        return BoxScorer(det, num_classes, iou), box_targets(det, labels, view.scale)
    scores = scores_from_annotations([clean], num_classes)[0]
    ids = select_classes(scores, spec)
    return ClassScorer(ids, num_classes), class_targets(ids, scores, labels)


def _is_box(annotation) -> bool:
    from datumaro.components.annotation import Bbox

    return isinstance(annotation, Bbox)
