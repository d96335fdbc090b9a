"""Datumaro annotations returned by interpreters -> arrays the methods compute on.

Scripts return one Label per class (1000 per image): the conversion reads whole
batches with C-level ``map`` and one array op, and falls back to the per-annotation
loop (which also words every error) for anything unusual.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, itemgetter, methodcaller
from typing import Sequence

import numpy as np
from datumaro.components.annotation import Annotation, Bbox, Label

from explain_plugin.errors import CliError

from . import standins
from .score_rows import ScoreLabels

__all__ = ["Detections", "Predictions", "scores_from_annotations", "detections_from_annotations",
           "check_finite_annotations", "label_scores"]


class Predictions(list):
    """A batch's annotation lists (one per image), with the [B,C] class scores read
    when the batch was interpreted (None where the batch is not Label-only)."""

    def __init__(self, per_image=(), class_scores: np.ndarray | None = None):
        super().__init__(per_image)
        self.class_scores = class_scores


@dataclass
class Detections:
    """The boxes of one image, in original image coordinates."""

    boxes: np.ndarray  # [K,4] float32 x1, y1, x2, y2
    labels: np.ndarray  # [K] int64
    scores: np.ndarray  # [K] float32
    probs: np.ndarray | None = None  # [K,C] float32 per-class probabilities, when given

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, num_classes: int | None = None) -> "Detections":
        probs = None if num_classes is None else np.zeros((0, num_classes), np.float32)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32), probs)

    def subset(self, idx: np.ndarray) -> "Detections":
        """The detections at indices ``idx``, in that order."""
        return Detections(self.boxes[idx], self.labels[idx], self.scores[idx],
                          None if self.probs is None else self.probs[idx])

    def nms(self, iou_thresh: float) -> np.ndarray:
        """Indices kept by per-label non-maximum suppression (OpenCV's), best first."""
        import cv2

        if not len(self):
            return np.zeros(0, np.int64)
        xywh = np.concatenate([self.boxes[:, :2], self.boxes[:, 2:] - self.boxes[:, :2]], axis=1)
        keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), self.scores.tolist(), self.labels.tolist(),
                                       float(np.finfo(np.float32).min), float(iou_thresh))
        keep = np.asarray(keep, np.int64).reshape(-1)
        return keep[np.argsort(-self.scores[keep], kind="stable")]


def _label_id(ann: Annotation, num_classes: int, source: str) -> int:
    label = ann.label
    if label is None or not 0 <= label < num_classes:
        raise CliError(
            f"{source}: returned a {type(ann).__name__} with label {label!r}, "
            f"outside the model's {num_classes} categories (ids 0..{num_classes - 1})"
        )
    return int(label)


def _score(ann: Annotation, source: str) -> float:
    try:
        return float(ann.attributes["score"])
    except (KeyError, TypeError, ValueError):
        raise CliError(
            f"{source}: returned a {type(ann).__name__} (label {ann.label}) without a numeric "
            "'score' attribute; expected e.g. attributes={'score': p}"
        ) from None


_LISTS = (list, tuple, ScoreLabels)
_LABEL_TYPES = {Label, standins.Label}
_BBOX_TYPES = {Bbox, standins.Bbox}
# Score types that float() reads exactly as numpy reads them (one type per batch
# lets np.fromiter read them at C speed).
_SCORE_DTYPES = {float: np.float64, np.float64: np.float64, np.float32: np.float32,
                 int: np.float64, np.float16: np.float16}
_label_of = attrgetter("label")
_attributes_of = attrgetter("attributes")
_score_of = itemgetter("score")
_has_scores = methodcaller("__contains__", "scores")


def label_scores(batch_anns: Sequence[Sequence[Annotation]], num_classes: int) -> np.ndarray | None:
    """[B,C] scores of a batch of Labels that carry nothing but a finite numeric
    ``score`` and a label in range (so nothing to check further); None otherwise."""
    if any(type(anns) is ScoreLabels for anns in batch_anns):
        rows = _pending_rows(batch_anns, num_classes)
        if rows is not None:
            return rows
        for anns in batch_anns:  # something to look at closer: the Labels themselves
            if type(anns) is ScoreLabels:
                anns.build()
    if not all(type(anns) in _LISTS for anns in batch_anns):
        return None
    if sum(map(len, map(_attributes_of, chain.from_iterable(batch_anns)))) != \
            sum(map(len, batch_anns)):
        return None
    return _fast_scores(batch_anns, num_classes)


def _pending_rows(batch_anns: Sequence[Sequence[Annotation]], num_classes: int) -> np.ndarray | None:
    """[B,C] scores of a batch of unbuilt ``ScoreLabels`` (what ``_fast_scores`` reads
    from the Labels they stand for: label i scores max(p_i, 0)); None unless every
    row is one, with finite values and no more than C of them."""
    if not all(type(anns) is ScoreLabels and anns.pending for anns in batch_anns):
        return None
    values = [anns.values for anns in batch_anns]
    if any(len(v) > num_classes or (anns.top and len(v) != num_classes)
           for v, anns in zip(values, batch_anns)):
        return None
    scores = np.zeros((len(values), num_classes), np.float32)
    for row, v in zip(scores, values):
        row[:len(v)] = v  # float16/32/64 -> float32, as the Labels' scores are read
    if not np.isfinite(scores).all():
        return None
    return np.maximum(np.float32(0), scores, out=scores)  # as _fast_scores's maximum.at


def _fast_scores(batch_anns: Sequence[Sequence[Annotation]], num_classes: int) -> np.ndarray | None:
    """[B,C] scores when every annotation is a Label with a numeric ``score``, a
    label in range and no ``scores`` vector; None otherwise (the loop decides)."""
    if not all(type(anns) in _LISTS for anns in batch_anns):
        return None
    flat = list(chain.from_iterable(batch_anns))
    n = len(flat)
    if not set(map(type, flat)) <= _LABEL_TYPES:
        return None
    attributes = list(map(_attributes_of, flat))
    try:
        values = list(map(_score_of, attributes))
    except (KeyError, TypeError):
        return None
    # one key each means 'score' only; otherwise look for 'scores' vectors
    if sum(map(len, attributes)) != n and any(map(_has_scores, attributes)):
        return None
    kinds = set(map(type, values))
    if len(kinds) > 1 or not kinds <= _SCORE_DTYPES.keys():
        return None
    values = np.fromiter(values, _SCORE_DTYPES[kinds.pop()] if n else np.float64, n)
    labels = np.fromiter(map(_label_of, flat), np.int64, n)
    if n and (labels.min() < 0 or labels.max() >= num_classes or not np.isfinite(values).all()):
        return None
    scores = np.zeros(len(batch_anns) * num_classes, np.float32)
    offsets = np.repeat(np.arange(0, scores.size, num_classes), [len(anns) for anns in batch_anns])
    # the loop's max with 0 per class (duplicates keep their maximum)
    np.maximum.at(scores, offsets + labels, values.astype(np.float32))
    return scores.reshape(len(batch_anns), num_classes)


def scores_from_annotations(
    batch_anns: Sequence[Sequence[Annotation]], num_classes: int, *, source: str = "interpreter"
) -> np.ndarray:
    """[B,C] float32 class scores from each image's ``Label`` annotations.

    A Label gives its class the ``score`` attribute; one carrying a ``scores``
    vector of length C (as Datumaro's classic samples return with the top-1
    label) fills the whole row. Classes without a Label score 0; other
    annotation types are ignored.
    """
    cached = getattr(batch_anns, "class_scores", None)
    if cached is not None and cached.shape == (len(batch_anns), num_classes):
        return cached.copy()
    fast = _fast_scores(batch_anns, num_classes)
    if fast is not None:
        return fast
    scores = np.zeros((len(batch_anns), num_classes), np.float32)
    for row, anns in zip(scores, batch_anns):
        for ann in anns:
            if not isinstance(ann, Label):
                continue
            vector = ann.attributes.get("scores")
            if vector is not None:
                vector = np.asarray(vector, np.float32).reshape(-1)
                if vector.shape != (num_classes,):
                    raise CliError(
                        f"{source}: a Label's 'scores' attribute has {vector.size} values, "
                        f"expected one per category ({num_classes})"
                    )
                np.maximum(row, vector, out=row)
                if "score" not in ann.attributes:
                    continue
            label = _label_id(ann, num_classes, source)
            row[label] = max(row[label], _score(ann, source))
    return scores


def _box_corners(boxes: list) -> np.ndarray:
    """[K,4] float32 x1, y1, x2, y2 of the boxes, as Datumaro stores ``points``."""
    if set(map(type, boxes)) == {standins.Bbox}:  # points not computed yet: all in one op
        corners = [(x, y, x + w, y + h) for x, y, w, h in map(attrgetter("_xywh"), boxes)]
        return np.array(corners, np.float32).round(standins.ROUND)
    return np.array([b.points for b in boxes], np.float32).reshape(-1, 4)


def detections_from_annotations(
    anns: Sequence[Annotation], num_classes: int, *, source: str = "interpreter"
) -> Detections:
    """The ``Bbox`` annotations of one image as arrays (other types are ignored).

    ``probs`` is filled when every box carries a ``probs`` attribute of length C.
    """
    boxes = [a for a in anns if type(a) in _BBOX_TYPES or isinstance(a, Bbox)]
    if not boxes:
        return Detections.empty()
    labels = np.array([_label_id(b, num_classes, source) for b in boxes], np.int64)
    scores = np.array([_score(b, source) for b in boxes], np.float32)
    xyxy = _box_corners(boxes)
    probs = None
    if all("probs" in b.attributes for b in boxes):
        rows = [np.asarray(b.attributes["probs"], np.float32).reshape(-1) for b in boxes]
        bad = next((r.size for r in rows if r.size != num_classes), None)
        if bad is not None:
            raise CliError(
                f"{source}: a Bbox's 'probs' attribute has {bad} values, "
                f"expected one per category ({num_classes})"
            )
        probs = np.stack(rows)
    return Detections(xyxy, labels, scores, probs)


_score_or_zero = methodcaller("get", "score", 0.0)


def _all_finite(batch_anns: Sequence[Sequence[Annotation]]) -> bool:
    """True when every score and box coordinate of the batch is a finite number and no
    annotation carries more than its score, read in a few C-level passes over the whole
    batch; False when the per-image check must look closer."""
    flat = list(chain.from_iterable(batch_anns))
    if not flat:
        return True
    attributes = list(map(_attributes_of, flat))
    if sum(map(len, attributes)) > len(attributes):  # vectors maybe: the closer look
        return False
    scores = list(map(_score_or_zero, attributes))
    kinds = set(map(type, scores))
    if len(kinds) != 1 or not kinds <= _SCORE_DTYPES.keys():
        return False
    if not np.isfinite(np.fromiter(scores, _SCORE_DTYPES[kinds.pop()], len(scores))).all():
        return False
    if not set(map(type, flat)) <= _LABEL_TYPES:
        boxes = [a for a in flat if isinstance(a, Bbox)]
        return not boxes or bool(np.isfinite(_box_corners(boxes)).all())
    return True


def check_finite_annotations(batch_anns: Sequence[Sequence[Annotation]], *, source: str) -> None:
    """Refuse NaN or infinite scores, score vectors and box coordinates from a script,
    before any of them is used. The whole batch in a few array passes; only a batch
    with more than scores (vectors) or a bad number gets the per-image look."""
    if _all_finite(batch_anns):
        return
    for index, anns in enumerate(batch_anns):
        if not anns:
            continue
        attrs = [a.attributes for a in anns]
        groups = [("score", [d.get("score", 0.0) for d in attrs]),
                  ("Bbox coordinate", [a.points for a in anns if isinstance(a, Bbox)])]
        for i in [i for i, d in enumerate(attrs) if len(d) > 1]:
            for key in ("scores", "probs"):
                if key in attrs[i]:
                    kind = type(anns[i]).__name__
                    groups.append((f"value in a {kind}'s '{key}'", attrs[i][key]))
        for what, values in groups:
            array = _numbers(values)
            if array is not None and not np.isfinite(array).all():
                bad = "a NaN" if np.isnan(array).any() else "an infinite"
                raise CliError(
                    f"{source}: returned {bad} {what} for image {index} of the batch: "
                    "fix the script (or the model outputs it reads)"
                )


def _numbers(values) -> np.ndarray | None:
    """``values`` as a float array; None where they are not numbers (the conversion says so)."""
    try:
        return np.asarray(values, np.float64)
    except (TypeError, ValueError):
        try:  # ragged: check what is numeric
            return np.asarray([float(v) for v in np.ravel(values)
                               if isinstance(v, (int, float, np.number))], np.float64)
        except (TypeError, ValueError):
            return None
