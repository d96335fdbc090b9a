"""Datumaro annotations returned by interpreters -> arrays the methods compute on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from datumaro.components.annotation import Annotation, Bbox, Label

from explain_plugin.errors import CliError

__all__ = ["Detections", "scores_from_annotations", "detections_from_annotations",
           "check_finite_annotations"]


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


def scores_from_annotations(
    batch_anns: Sequence[Sequence[Annotation]], num_classes: int, *, source: str = "interpreter"
) -> np.ndarray:
    """[B,C] float32 class scores from each image's ``Label`` annotations.

    A Label gives its class the ``score`` attribute; one carrying a ``scores``
    vector of length C (as Datumaro's classic samples return with the top-1
    label) fills the whole row. Classes without a Label score 0; other
    annotation types are ignored.
    """
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


def detections_from_annotations(
    anns: Sequence[Annotation], num_classes: int, *, source: str = "interpreter"
) -> Detections:
    """The ``Bbox`` annotations of one image as arrays (other types are ignored).

    ``probs`` is filled when every box carries a ``probs`` attribute of length C.
    """
    boxes = [a for a in anns if isinstance(a, Bbox)]
    if not boxes:
        return Detections.empty()
    labels = np.array([_label_id(b, num_classes, source) for b in boxes], np.int64)
    scores = np.array([_score(b, source) for b in boxes], np.float32)
    xyxy = np.array([b.points for b in boxes], np.float32).reshape(-1, 4)
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


def check_finite_annotations(batch_anns: Sequence[Sequence[Annotation]], *, source: str) -> None:
    """Refuse NaN or infinite scores, score vectors and box coordinates from a script,
    before any of them is used. One comprehension per image for the scores; only the
    annotations with more than a score (boxes, vectors) get a closer look."""
    for index, anns in enumerate(batch_anns):
        if not anns:
            continue
        attrs = [a.attributes for a in anns]
        groups = [("score", [d.get("score", 0.0) for d in attrs]),
                  ("Bbox coordinate", [a.points for a in anns if type(a) is Bbox])]
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
