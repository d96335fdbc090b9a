"""A synthetic numpy 'model' of masks, and a local driver, for ReX's unit tests."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Answer:
    scores: np.ndarray
    hit: np.ndarray
    classes: np.ndarray | None


class RegionModel:
    """Class k's logit = weight[k] x the fraction of region k kept (boxes (y0, y1, x0, x1))."""

    def __init__(self, shape, regions, weights, targets):
        self.shape = shape
        self.regions = np.zeros((len(regions), *shape), np.float32)
        for r, (y0, y1, x0, x1) in zip(self.regions, regions):
            r[y0:y1, x0:x1] = 1.0 / ((y1 - y0) * (x1 - x0))
        self.weights = np.asarray(weights, np.float32)
        self.targets = list(targets)
        self.calls = 0

    def classes(self, masks):
        m = np.asarray(masks, np.float32).reshape(len(masks), -1)
        return (m @ self.regions.reshape(len(self.regions), -1).T) * self.weights

    def __call__(self, masks):
        self.calls += len(masks)
        c = self.classes(masks)
        hit = c.argmax(axis=1)[:, None] == np.array(self.targets)[None, :]
        return Answer(c[:, self.targets], hit, c)
