"""Targets per item: the model's predictions (``top:K``), the item's ground truth
(``gt``: its Label and Bbox annotations), or both (``gt,pred``).

Ground truth is matched to the model's labels by name. Until the shared core's
per-item target list lands, a resolved item becomes explicit class ids that the
method's own ``--targets`` option takes (for detectors: boxes of those labels).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from explain_plugin.errors import CliError


@dataclass(frozen=True)
class TargetSpec:
    gt: bool = False
    pred: bool = True
    pred_spec: str = ""  # what the method's --targets would say for predictions

    @property
    def per_item(self) -> bool:
        """Whether targets must be resolved per item (ground truth is involved)."""
        return self.gt


def parse_target_spec(text: str | None) -> TargetSpec:
    """``gt``, ``pred``, ``gt,pred``, ``gt,top:3``; anything without ``gt`` is the
    method's own spec (``top:K``, ``all``, names) and passes through unchanged."""
    tokens = [t.strip() for t in (text or "").split(",") if t.strip()]
    if "gt" not in tokens:
        rest = [t for t in tokens if t != "pred"]
        return TargetSpec(False, True, ",".join(rest))
    rest = [t for t in tokens if t not in ("gt", "pred")]
    if any(not (t.startswith("top") or t == "all") for t in rest):
        raise CliError(f"bad --targets '{text}': with gt, add pred, top:K or all "
                       "(e.g. gt,pred or gt,top:3), not label names")
    return TargetSpec(True, "pred" in tokens or bool(rest), ",".join(rest) or "top:1")


@dataclass
class GroundTruth:
    names: list[str] = field(default_factory=list)  # GT label names (Label and Bbox)
    boxes: list[tuple[str, tuple[float, float, float, float]]] = field(default_factory=list)


def item_ground_truth(item, dataset_labels: Sequence[str]) -> GroundTruth:
    """An item's GT labels (in annotation order, unique) and boxes (x1, y1, x2, y2)."""
    from datumaro.components.annotation import AnnotationType

    gt = GroundTruth()
    for ann in item.annotations:
        if ann.type not in (AnnotationType.label, AnnotationType.bbox) or ann.label is None:
            continue
        name = dataset_labels[ann.label] if 0 <= ann.label < len(dataset_labels) \
            else str(ann.label)
        if name not in gt.names:
            gt.names.append(name)
        if ann.type == AnnotationType.bbox:
            x, y, w, h = ann.get_bbox()
            gt.boxes.append((name, (float(x), float(y), float(x + w), float(y + h))))
    return gt


def dataset_label_names(dataset) -> list[str]:
    from datumaro.components.annotation import AnnotationType

    cat = dataset.categories().get(AnnotationType.label)
    return [c.name for c in cat.items] if cat is not None else []


@dataclass
class ItemTargets:
    class_ids: list[int]          # what the method explains, in order
    roles: dict[int, str]         # class id -> "gt", "pred" or "gt+pred"
    missing_gt: list[str]         # GT names the model does not know


def resolve_item_targets(spec: TargetSpec, gt: GroundTruth, model_labels: Sequence[str],
                         predict: Callable[[], np.ndarray] | None) -> ItemTargets:
    """Explicit class ids for an item: its GT labels first, then the predicted ones."""
    index = {name: i for i, name in enumerate(model_labels)}
    ids: list[int] = []
    roles: dict[int, str] = {}
    missing = [n for n in gt.names if n not in index]
    if spec.gt:
        for name in gt.names:
            if name in index and index[name] not in roles:
                ids.append(index[name])
                roles[index[name]] = "gt"
    if spec.pred and predict is not None:
        from explain_plugin.methods.targets import parse_targets, select_classes

        scores = predict()
        for c in select_classes(scores, parse_targets(spec.pred_spec, model_labels)):
            c = int(c)
            if c in roles:
                roles[c] = "gt+pred" if roles[c] == "gt" else roles[c]
            else:
                ids.append(c)
                roles[c] = "pred"
    return ItemTargets(ids, roles, missing)


def method_targets_param(class_ids: Sequence[int]) -> str:
    """The explicit ids as the method's ``--targets`` value."""
    return ",".join(str(int(c)) for c in class_ids)
