"""Masks from per-segment keep bits: one table lookup per pixel, straight to float32.

``keep[:, labels]`` (numpy's fancy indexing) costs about 4x a lookup table here, and
its bool result needs another pass to become the float32 the blend reads.
"""
from __future__ import annotations

import numpy as np


class SegmentRenderer:
    """float32 masks [n, h, w] for keep bits [n, K] over a label image [h, w]."""

    def __init__(self, labels: np.ndarray):
        self.labels = np.asarray(labels)
        self.count = int(self.labels.max()) + 1
        # cv2.LUT indexes with 8-bit pixels: up to 256 segments
        self._u8 = self.labels.astype(np.uint8) if self.count <= 256 else None

    def __call__(self, keep: np.ndarray) -> np.ndarray:
        import cv2

        keep = np.asarray(keep)
        n = keep.shape[0]
        if self._u8 is None:
            return np.take(keep.astype(np.float32), self.labels, axis=1)
        table = np.zeros((n, 256), np.float32)
        table[:, :self.count] = keep[:, :self.count]
        out = np.empty((n, *self.labels.shape), np.float32)
        for k in range(n):  # one C call per mask: OpenCV's LUT has no batch form
            cv2.LUT(self._u8, table[k], dst=out[k])
        return out
