"""RISE's all-classes memory: the final snapshot and the normalisation take about
the maps' own size beyond the sums, with the same values as ever."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from explain_plugin.methods.normalize import flat_maps, normalize_maps
from explain_plugin.methods.rise import MaskGenerator, SaliencyAccumulator


def _reference_normalize(maps: np.ndarray) -> np.ndarray:
    """The plain expression (a temporary per operation)."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    keep = ~flat_maps(maps)[:, None] & (span > 0)
    safe = np.where(keep, span, 1.0)
    return np.where(keep, (flat - lo) / safe, 0.0).astype(np.float32).reshape(maps.shape)


def _peak_over(fn, *args, **kwargs):
    """(result, bytes allocated at the peak of ``fn`` beyond what was live before it)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn(*args, **kwargs)
        return out, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_normalize_in_place_gives_the_plain_expressions_values(dtype):
    rng = np.random.default_rng(0)
    maps = (rng.random((6, 9, 11)) * 1000).astype(dtype)
    maps[1] = 7  # constant
    maps[2] = 1e6 + rng.random((9, 11)) * 1e-3 if dtype != np.int32 else 3  # flat
    got = normalize_maps(maps)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _reference_normalize(maps))
    assert not got[1].any() and not got[2].any() and got[0].max() == 1.0


def test_normalize_allocates_only_its_output():
    maps = np.random.default_rng(1).random((300, 56, 56), dtype=np.float32)
    out, peak = _peak_over(normalize_maps, maps)
    assert peak < 1.2 * out.nbytes  # the plain expressions took ~4x


def _steps(targets: int, n_steps: int, seed: int = 0):
    gen, rng = MaskGenerator(7, 7, 0.5, seed=seed), np.random.default_rng(seed)
    return [(rng.random((targets, 8), dtype=np.float32), gen.next(8, 24, 24).reshape(8, -1))
            for _ in range(n_steps)]


@pytest.mark.parametrize("density", [True, False])
def test_final_snapshot_sums_open_blocks_in_place_with_the_same_maps(density):
    """The final snapshot folds the open blocks into the sums; a non-final one adds
    them on the side: the same raw maps, maps and baseline, bit for bit."""
    steps = _steps(40, 37)  # 296 masks: closed blocks and an open one in each half
    accs = [SaliencyAccumulator(40, 24, 24, 0.5, density=density) for _ in range(2)]
    for acc in accs:
        for weights, masks in steps:
            acc.add(weights, masks)
    side, folded = accs[0].snapshot([], final=False), accs[1].snapshot([], final=True)
    assert folded.final and not side.final
    assert not any(accs[1]._pending) and any(accs[0]._pending)
    for a, b in ((side.raw, folded.raw), (side.maps, folded.maps),
                 (side.baseline, folded.baseline)):
        np.testing.assert_array_equal(a, b)
    assert side.maps.shape == (40, 24, 24) and np.ptp(side.maps) == 1.0


def test_final_snapshot_of_many_targets_takes_about_the_maps_size():
    """1000 targets at the saliency size (the accumulator's sums: 2 x the maps):
    the final snapshot adds the raw maps and the normalised ones, not 5 more copies."""
    acc = SaliencyAccumulator(1000, 24, 24, 0.5, density=True)
    for weights, masks in _steps(1000, 11):  # 88 masks: every step still in an open block
        acc.add(weights, masks)
    snap, peak = _peak_over(acc.snapshot, [], final=True)
    assert peak < 2.6 * snap.maps.nbytes  # raw + maps + one block product; was ~6.5x
    acc.release()
    assert acc.sums is None
