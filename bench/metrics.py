"""Shared helpers for the benchmarks: memory high-water marks and saliency-map metrics.

* ``Rss``: the process's resident-set high-water mark over a block of code, as a
  delta over the RSS right before it (Linux: VmHWM reset through
  ``/proc/self/clear_refs``; elsewhere ``ru_maxrss``, which cannot be reset).
* ``deletion_insertion``: the deletion and insertion AUCs of Petsiuk et al.
  (RISE, BMVC 2018) for a batch of saliency maps, vectorised: each step set is
  one batch of perturbed images streamed through a launcher.
"""
from __future__ import annotations

import ctypes
import gc
import resource
import sys
from typing import Callable, Sequence

import numpy as np

from explain_plugin.methods.metrics import auc, rank  # one definition, the package's

__all__ = ["Rss", "rss_kb", "deletion_insertion", "auc"]


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kb() -> int:
    """Current resident set size (kB)."""
    value = _status_kb("VmRSS")
    if value is None:  # no procfs: the best we have is the high-water mark
        value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
    return value


class Rss:
    """``with Rss() as r: ...`` then ``r.peak_mb``: high-water mark minus the RSS at entry.

    Freed heap is returned to the OS first (gc + malloc_trim), so memory the
    block allocates shows up as new resident pages rather than reused ones.
    """

    def __init__(self) -> None:
        self.resettable = False
        self.base_kb = 0
        self.peak_kb = 0

    def __enter__(self) -> "Rss":
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            self.resettable = True
        except OSError:
            self.resettable = False
        self.base_kb = rss_kb()
        return self

    def __exit__(self, *exc) -> None:
        hwm = _status_kb("VmHWM") if self.resettable else None
        if hwm is None:
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak_kb = hwm

    @property
    def peak_mb(self) -> float:
        return max(0, self.peak_kb - self.base_kb) / 1024

    @property
    def base_mb(self) -> float:
        return self.base_kb / 1024


def deletion_insertion(
    score_fn: Callable[[Sequence[np.ndarray]], np.ndarray],
    image: np.ndarray,
    maps: np.ndarray,
    blurred: np.ndarray,
    steps: int = 50,
    deleted_value: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion AUCs [M] for ``maps`` [M, h, w] of one HWC float32 image.

    Maps are bilinearly resized to the image. Step k of ``steps`` perturbs the
    k/steps most salient pixels: deletion sets them to ``deleted_value``;
    insertion starts from ``blurred`` and puts the original pixels back.
    ``score_fn(images) -> [len(images)]`` scores a list of images (the target
    class's probability); it is called once per map and metric with all
    ``steps + 1`` images.
    """
    import cv2

    h, w = image.shape[:2]
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64)
    dels, inss = [], []
    for sal in maps:
        sal = cv2.resize(np.asarray(sal, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        chosen = rank(sal)[None] < counts[:, None, None]  # [steps+1, h, w]
        deleted = np.where(chosen[..., None], np.float32(deleted_value), image[None])
        inserted = np.where(chosen[..., None], image[None], blurred[None])
        dels.append(auc(score_fn(list(deleted))))
        inss.append(auc(score_fn(list(inserted))))
    return np.asarray(dels), np.asarray(inss)


def run_worker(script: str, *args: object) -> dict:
    """Run ``script --worker ARGS`` in a fresh process; its last stdout line is JSON."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, script, "--worker", *map(str, args)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"worker failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
