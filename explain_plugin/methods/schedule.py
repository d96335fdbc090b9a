"""When a sampling method takes snapshots (``--every``, ``--progressive``) and when it stops
early (``--converge``): the same for every method that refines a map sample by sample."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator


@dataclass
class SnapshotSchedule:
    """Snapshots every ``every`` samples (when ``wanted``) up to ``total``; ``tolerance``
    stops at the first snapshot whose estimated noise is below it."""

    total: int
    every: int = 100
    wanted: bool = False
    tolerance: float | None = None

    def __post_init__(self):
        self.every = max(1, int(self.every))
        self.wanted = bool(self.wanted or self.tolerance)

    def chunks(self, batch: int) -> Iterator[int]:
        """Sizes of the steps a method accumulates in: at most ``batch``, never across a
        snapshot boundary, whether or not snapshots are wanted, so a progressive run adds
        up exactly what a plain one does. (The engine packs them into full batches.)"""
        done = 0
        while done < self.total:
            count = min(batch, self.total - done, self.every - done % self.every)
            yield count
            done += count

    def due(self, done: int) -> bool:
        """A snapshot is due after ``done`` samples (never at the end: that one is final)."""
        return self.wanted and done < self.total and done % self.every == 0

    def converged(self, noise: float) -> bool:
        return bool(self.tolerance) and noise < self.tolerance
