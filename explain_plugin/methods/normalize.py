"""Map normalisation: min-max to [0, 1], with maps too flat to resolve kept exactly 0.

A map whose range is within float32 accumulation round-off of its values
(e.g. a model that ignores its input: every pixel's E[score | kept] is the same
number up to the BLAS kernel's summation order) says nothing; min-max scaling
would blow that round-off up to a confident-looking heatmap.
"""
from __future__ import annotations

import numpy as np

# Relative range below which a map is flat: float32 sums over ~10^4 masks keep
# about 4 significant digits whatever the BLAS kernel; a real effect is larger.
FLAT_RTOL = 1e-4


def flat_maps(maps: np.ndarray, rtol: float = FLAT_RTOL) -> np.ndarray:
    """bool [T]: maps whose range is below ``rtol`` x their largest magnitude
    (or exactly constant)."""
    flat = maps.reshape(maps.shape[0], -1)
    # min and max are exact in any dtype: only the [T] results need float64
    lo, hi = flat.min(axis=1).astype(np.float64), flat.max(axis=1).astype(np.float64)
    scale = np.maximum(np.abs(lo), np.abs(hi))
    return (hi - lo) <= rtol * scale


def normalize_maps(maps: np.ndarray, rtol: float = FLAT_RTOL) -> np.ndarray:
    """Min-max normalise each map [T, h, w] to [0, 1] float32; flat maps become
    exactly 0 (never NaN, never amplified round-off).

    One output array, written in place: with 1000 maps each temporary the size of
    ``maps`` would cost as much as the maps themselves."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    keep = ~flat_maps(maps, rtol)[:, None] & (span > 0)
    out = flat - lo
    if out.dtype.kind != "f":  # integer maps divide in float64, as numpy's true division does
        out = out.astype(np.float64)
    np.divide(out, np.where(keep, span, 1.0).astype(out.dtype, copy=False), out=out)
    out[~keep[:, 0]] = 0.0
    return out.astype(np.float32, copy=False).reshape(maps.shape)
