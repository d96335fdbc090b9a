"""RISE's saliency sums: E[weight | pixel kept] for each target, in two halves."""
from __future__ import annotations

import numpy as np

from explain_plugin.methods.base import Snapshot
from explain_plugin.methods.normalize import flat_maps, normalize_maps


class SaliencyAccumulator:
    """Sums of weight x mask for each target, in two halves (alternate steps).

    The two half-maps are independent estimates of the same map, so half their
    difference measures the noise left in the full map: ``--converge`` stops on
    that, not on how much the map moved since the last snapshot.
    """

    def __init__(self, targets: int, height: int, width: int, prob: float, density: bool):
        self.shape, self.prob, self.density = (height, width), prob, density
        self.sums = np.zeros((2, targets, height * width), dtype=np.float32)
        self.coverage = np.zeros((2, height * width), dtype=np.float32)  # sum of masks per pixel
        self.weight_sums = np.zeros((2, targets), dtype=np.float64)
        self.counts = [0, 0]
        self._steps = 0

    @property
    def used(self) -> int:
        return self.counts[0] + self.counts[1]

    def add(self, weights: np.ndarray, masks: np.ndarray) -> None:
        """``weights`` [T, B] for flattened ``masks`` [B, h*w]."""
        half = self._steps % 2
        self._steps += 1
        self.sums[half] += weights @ masks
        self.coverage[half] += masks.sum(axis=0)
        self.weight_sums[half] += weights.sum(axis=1)
        self.counts[half] += masks.shape[0]

    def raw(self, halves=(0, 1)) -> np.ndarray:
        """E[weight | pixel kept], over the masks' actual coverage of each pixel
        (``density``) or over its expectation N * p (the paper's)."""
        halves = list(halves)
        sums = self.sums[halves].sum(axis=0)
        if self.density:
            sums = sums / np.maximum(self.coverage[halves].sum(axis=0), 1e-6)
        else:
            sums = sums / (max(sum(self.counts[h] for h in halves), 1) * self.prob)
        return sums.reshape(-1, *self.shape)

    def noise(self) -> float:
        """Mean absolute noise of the normalised maps (worst target), from the halves."""
        if not all(self.counts):
            return float("inf")
        a, b = normalize_maps(self.raw([0])), normalize_maps(self.raw([1]))
        return float(np.abs(a - b).reshape(len(a), -1).mean(axis=1).max() / 2)

    def snapshot(self, targets, **kwargs) -> Snapshot:
        raw = self.raw()
        baseline = (self.weight_sums.sum(axis=0) / max(self.used, 1)).astype(np.float32)
        snap = Snapshot(normalize_maps(raw), targets, self.used, raw=raw, baseline=baseline,
                        **kwargs)
        flat = flat_maps(raw)
        if flat.any():
            names = [t.name for t, f in zip(targets, flat) if f]
            listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            snap.notes.append(
                f"{len(names)} flat map(s) ({listed}): the model's score does not change "
                "with the masks (within float32 round-off), so the map is all 0")
            snap.extra["flat"] = [bool(f) for f in flat]
        return snap
