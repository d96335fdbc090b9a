"""RISE's saliency sums: E[weight | pixel kept] for each target, in two halves."""
from __future__ import annotations

import numpy as np

from explain_plugin.methods.base import Snapshot
from explain_plugin.methods.normalize import flat_maps, normalize_maps


NOISE_ROWS = 64  # targets per pass of the noise estimate (1000 maps: no 100 MB of temporaries)
BLOCK = 128  # masks per matrix product: [T, 8] @ [8, hw] runs ~7x slower per mask than [T, 128]


class SaliencyAccumulator:
    """Sums of weight x mask for each target, in two halves (alternate steps).

    Steps are buffered per half and summed ``BLOCK`` masks at a time (one matrix
    product for many launcher batches: with 1000 targets a batch-sized product
    costs as much as 10% of the inference). Blocks close at the same masks whether
    or not snapshots are read (a read adds the open block without closing it), so
    progressive runs give the same final maps as plain ones.

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
        self._pending: list[list[tuple[np.ndarray, np.ndarray]]] = [[], []]
        self._buffered = [0, 0]

    @property
    def used(self) -> int:
        return self.counts[0] + self.counts[1]

    def add(self, weights: np.ndarray, masks: np.ndarray) -> None:
        """``weights`` [T, B] for flattened ``masks`` [B, h*w]."""
        half = self._steps % 2
        self._steps += 1
        self._pending[half].append((np.asarray(weights, np.float32), np.asarray(masks, np.float32)))
        self._buffered[half] += masks.shape[0]
        self.counts[half] += masks.shape[0]
        if self._buffered[half] >= BLOCK:
            self._flush(half)

    def _open_block(self, half: int, rows: slice = slice(None)
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(weight x mask sums, coverage, weight sums) of the steps not yet summed,
        for the targets ``rows``."""
        parts = self._pending[half]
        if not parts:
            return None
        weights = np.concatenate([w for w, _ in parts], axis=1) if len(parts) > 1 else parts[0][0]
        masks = np.concatenate([m for _, m in parts]) if len(parts) > 1 else parts[0][1]
        weights = weights[rows]
        return weights @ masks, masks.sum(axis=0), weights.sum(axis=1)

    def _flush(self, half: int) -> None:
        block = self._open_block(half)
        self._pending[half], self._buffered[half] = [], 0
        if block is not None:
            self.sums[half] += block[0]
            self.coverage[half] += block[1]
            self.weight_sums[half] += block[2]

    def _totals(self, half: int, rows: slice = slice(None)
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """The half's sums, coverage and weight sums including the open block, and
        whether the arrays are new (else views of the running sums: read only)."""
        block = self._open_block(half, rows)
        sums, weight_sums = self.sums[half][rows], self.weight_sums[half][rows]
        if block is None:
            return sums, self.coverage[half], weight_sums, False
        # in the block's own arrays: a + b == b + a exactly, and no third array
        np.add(block[0], sums, out=block[0])
        np.add(block[1], self.coverage[half], out=block[1])
        return block[0], block[1], weight_sums + block[2], True

    def raw(self, halves=(0, 1), rows: slice = slice(None)) -> np.ndarray:
        """E[weight | pixel kept], over the masks' actual coverage of each pixel
        (``density``) or over its expectation N * p (the paper's); targets ``rows``.

        Summed half by half into one array (the halves' totals are added in the same
        order as ever, so the values do not depend on how much memory this takes)."""
        total = cover = None
        for h in halves:
            sums, coverage, _, new = self._totals(h, rows)
            if total is None:
                total, cover = (sums if new else sums.copy()), coverage.copy()
            else:
                total += sums
                cover += coverage
            del sums
        if self.density:
            total /= np.maximum(cover, 1e-6)
        else:
            total /= max(sum(self.counts[h] for h in halves), 1) * self.prob
        return total.reshape(-1, *self.shape)

    def noise(self) -> float:
        """Mean absolute noise of the normalised maps (worst target), from the halves."""
        if not all(self.counts):
            return float("inf")
        worst = 0.0
        for start in range(0, self.sums.shape[1], NOISE_ROWS):  # bounded temporaries
            rows = slice(start, start + NOISE_ROWS)
            a, b = normalize_maps(self.raw([0], rows)), normalize_maps(self.raw([1], rows))
            worst = max(worst, float(np.abs(a - b).reshape(len(a), -1).mean(axis=1).max()))
        return worst / 2

    def snapshot(self, targets, **kwargs) -> Snapshot:
        if kwargs.get("final"):  # nothing more comes: sum the open blocks in place
            self._flush(0)
            self._flush(1)
        raw = self.raw()
        weight_sums = sum(self.weight_sums[h] + (np.concatenate([w for w, _ in part], axis=1)
                                                 .sum(axis=1) if part else 0)
                          for h, part in enumerate(self._pending))
        baseline = (weight_sums / max(self.used, 1)).astype(np.float32)
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

    def release(self) -> None:
        """Drop the sums (after the final snapshot: the maps hold all that is left)."""
        self.sums = self.coverage = None
        self._pending = [[], []]
