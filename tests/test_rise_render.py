"""RISE's mask rendering: interpolation weights written at flat offsets, the x
weights made in the product's layout, the same masks as the plain construction."""
from __future__ import annotations

import numpy as np
import pytest

from explain_plugin.methods.rise.masks import MaskGenerator, _interp_matrix


def _plain_weights(size: int, cells: int, cell: float, shift: np.ndarray) -> np.ndarray:
    """[B, size, cells + 1] by index grids: the construction the fast one replaces."""
    pos = (np.arange(size, dtype=np.float32)[None, :] + shift[:, None] + 0.5) / cell - 0.5
    pos = np.clip(pos, 0.0, float(cells))
    lo = np.minimum(np.floor(pos).astype(np.int64), cells - 1)
    frac = (pos - lo).astype(np.float32)
    weights = np.zeros((shift.shape[0], size, cells + 1), dtype=np.float32)
    b, i = np.indices(lo.shape)
    weights[b, i, lo] = 1.0 - frac
    weights[b, i, lo + 1] = frac
    return weights


@pytest.mark.parametrize("h,w,gh,gw,count", [(224, 336, 7, 7, 8), (336, 224, 7, 7, 8),
                                             (56, 56, 7, 7, 8), (40, 72, 5, 9, 3),
                                             (224, 337, 7, 7, 1), (1, 9, 1, 3, 2),
                                             (2, 9, 1, 3, 2), (9, 1, 3, 1, 2)])
def test_render_gives_the_plain_constructions_masks_bit_for_bit(h, w, gh, gw, count):
    gen = MaskGenerator(gh, gw, 0.5, seed=h + w)
    for _ in range(3):
        grids, shifts = gen.sample(count)
        cell_h, cell_w = h / gh, w / gw
        wy = _plain_weights(h, gh, cell_h, shifts[:, 0] * cell_h)
        wx = _plain_weights(w, gw, cell_w, shifts[:, 1] * cell_w)
        assert np.array_equal(_interp_matrix(h, gh, cell_h, shifts[:, 0] * cell_h), wy)
        assert np.array_equal(_interp_matrix(w, gw, cell_w, shifts[:, 1] * cell_w,
                                             nodes_first=True), wx.transpose(0, 2, 1))
        want = np.matmul(np.matmul(wy, grids), wx.transpose(0, 2, 1))
        got = gen.render(grids, shifts, h, w)
        assert got.shape == (count, h, w) and got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
        assert got.min() >= 0 and got.max() <= 1 and np.ptp(got) > 0
