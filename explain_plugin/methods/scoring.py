"""How much a perturbed image still says about each target, and whether it still wins.

A scorer turns the launcher's annotations for K images into an ``Answer``:
``scores`` [K, T] (the weights of RISE and D-RISE), ``hit`` [K, T] (the target is
still the model's answer) and, for classifiers, the full class rows [K, C].

``ClassScorer``: the target classes' scores; hit = the target class alone scores highest.
``BoxScorer`` (D-RISE, Petsiuk et al. 2021): for each target box, the max over the
image's detections of IoU x class similarity (cosine of probability vectors where
the interpreter gives them, else same label x score), IoU below ``iou`` counting 0;
hit = a box of the target's label with IoU >= ``iou`` survives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from explain_plugin.launchers.predictions import (
    Detections, detections_from_annotations, scores_from_annotations,
)
from explain_plugin.methods.base import ExplainedTarget


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of xyxy boxes."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0).astype(np.float32)


@dataclass
class Answer:
    """The model's answer on K perturbed images, for the evaluator's T targets."""

    scores: np.ndarray  # float32 [K, T]
    hit: np.ndarray  # bool [K, T]
    classes: np.ndarray | None = None  # float32 [K, C] (classifiers), else None

    def __len__(self) -> int:
        return self.scores.shape[0]

    def rows(self, start: int, stop: int) -> "Answer":
        return Answer(self.scores[start:stop], self.hit[start:stop],
                      None if self.classes is None else self.classes[start:stop])

    @classmethod
    def join(cls, parts: Sequence["Answer"]) -> "Answer":
        if len(parts) == 1:
            return parts[0]
        classes = None if parts[0].classes is None else np.concatenate([p.classes for p in parts])
        return cls(np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.hit for p in parts]), classes)


class ClassScorer:
    """Scores = the target classes' scores; hit = the target class alone is the top class."""

    def __init__(self, class_ids: np.ndarray, num_classes: int):
        self.class_ids = np.asarray(class_ids, dtype=np.int64)
        self.num_classes = num_classes

    def answer(self, batch_anns: Sequence[list]) -> Answer:
        classes = scores_from_annotations(batch_anns, self.num_classes)
        scores = np.ascontiguousarray(classes[:, self.class_ids], dtype=np.float32)
        top = classes.max(axis=1, keepdims=True)
        # a tie at the top is no answer (a model that ignores its input "answers" nothing)
        unique = (classes == top).sum(axis=1, keepdims=True) == 1
        return Answer(scores, (scores >= top) & unique, classes)

    def __call__(self, batch_anns: Sequence[list]) -> np.ndarray:
        """Weights [T, B] float32."""
        return np.ascontiguousarray(self.answer(batch_anns).scores.T)


class BoxScorer:
    """Weights = max over detections of IoU(target, det) x class similarity."""

    def __init__(self, targets: Detections, num_classes: int, iou_thresh: float = 0.0):
        self.targets = targets
        self.num_classes = num_classes
        self.iou_thresh = float(iou_thresh)

    def __call__(self, batch_anns: Sequence[list]) -> np.ndarray:
        """Weights [T, B] float32."""
        return np.ascontiguousarray(self.answer(batch_anns).scores.T)

    def answer(self, batch_anns: Sequence[list]) -> Answer:
        t = self.targets
        weights = np.zeros((len(batch_anns), len(t.labels)), dtype=np.float32)
        hit = np.zeros(weights.shape, dtype=bool)
        dets = [detections_from_annotations(anns, self.num_classes) for anns in batch_anns]
        counts = [len(d.labels) for d in dets]
        if not sum(counts) or not len(t.labels):
            return Answer(weights, hit)
        image_idx = np.repeat(np.arange(len(dets)), counts)
        boxes = np.concatenate([d.boxes for d in dets])
        labels = np.concatenate([d.labels for d in dets])
        scores = np.concatenate([d.scores for d in dets])
        iou = box_iou(t.boxes, boxes)  # [T, K]
        iou[iou < self.iou_thresh] = 0.0
        same = (t.labels[:, None] == labels[None, :]) & (iou > 0)
        if not self.iou_thresh:
            same &= iou >= 0.5  # no --iou: a surviving box must still be the same object
        np.logical_or.at(hit, image_idx, same.T)
        have_probs = t.probs is not None and all(d.probs is not None for d in dets if len(d.labels))
        if have_probs:
            probs = np.concatenate([d.probs for d in dets if len(d.labels)])
            sim = _cosine(t.probs, probs)
        else:
            sim = (t.labels[:, None] == labels[None, :]) * scores[None, :]
        np.maximum.at(weights, image_idx, (iou * sim).T.astype(np.float32))
        return Answer(weights, hit)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return (a / np.maximum(na, 1e-12)) @ (b / np.maximum(nb, 1e-12)).T


def box_targets(det: Detections, label_names: Sequence[str], scale: tuple[float, float]
                ) -> list[ExplainedTarget]:
    """Targets for detections; ``scale`` (sx, sy) maps boxes back to the original image."""
    sx, sy = scale
    return [
        ExplainedTarget(int(l), _name(label_names, int(l)), float(s),
                        (float(b[0] * sx), float(b[1] * sy), float(b[2] * sx), float(b[3] * sy)))
        for b, l, s in zip(det.boxes, det.labels, det.scores)
    ]


def class_targets(class_ids: np.ndarray, scores: np.ndarray, label_names: Sequence[str]
                  ) -> list[ExplainedTarget]:
    return [ExplainedTarget(int(c), _name(label_names, int(c)), float(scores[c]))
            for c in class_ids]


def _name(label_names: Sequence[str], label: int) -> str:
    return label_names[label] if 0 <= label < len(label_names) else str(label)
