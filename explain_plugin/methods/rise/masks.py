"""RISE random masks: binary grids, bilinearly upsampled with a random sub-cell shift.

Masks are made a batch at a time with batched matrix products (no per-mask
loop), at any aspect ratio. The sequence of masks depends only on the seed,
never on the batch size: grids and shifts come from two separate streams.
"""
from __future__ import annotations

import numpy as np


def _interp_matrix(size: int, cells: int, cell: float, shift: np.ndarray,
                   nodes_first: bool = False) -> np.ndarray:
    """Bilinear weights [B, size, cells + 1] of the grid nodes for each output pixel
    ([B, cells + 1, size] with ``nodes_first``: the right operand of a product).

    Output pixel ``i`` of mask ``b`` samples the upsampled grid at ``i + shift[b]``
    (pixel centres, as cv2.INTER_LINEAR does; edges replicate).
    """
    count = shift.shape[0]
    pos = (np.arange(size, dtype=np.float32)[None, :] + shift[:, None] + 0.5) / cell - 0.5
    pos = np.clip(pos, 0.0, float(cells))
    lo = np.minimum(np.floor(pos).astype(np.int64), cells - 1)
    frac = (pos - lo).astype(np.float32)
    # two weights per pixel, written at flat offsets (no index grids)
    if nodes_first:
        weights = np.zeros((count, cells + 1, size), dtype=np.float32)
        at = (np.arange(count) * ((cells + 1) * size))[:, None] + lo * size + np.arange(size)
        step = size
    else:
        weights = np.zeros((count, size, cells + 1), dtype=np.float32)
        at = np.arange(count * size).reshape(count, size) * (cells + 1) + lo
        step = 1
    flat = weights.reshape(-1)
    flat[at] = 1.0 - frac
    flat[at + step] = frac
    return weights


class MaskGenerator:
    """Streams RISE masks over a ``grid_h`` x ``grid_w`` grid of cells.

    ``sample`` draws grids and shifts; ``render`` draws them at any resolution,
    so the same masks can blend images at full size and accumulate saliency at
    a small one (the maps are smooth at the scale of a cell).
    """

    def __init__(self, grid_h: int = 7, grid_w: int = 7, prob: float = 0.5, seed: int = 0):
        if not 0.0 < prob < 1.0:
            raise ValueError(f"prob must be in (0, 1), got {prob}")
        self.grid_h, self.grid_w, self.prob = int(grid_h), int(grid_w), float(prob)
        grid_seq, shift_seq = np.random.SeedSequence(seed).spawn(2)
        self._grid_rng = np.random.default_rng(grid_seq)
        self._shift_rng = np.random.default_rng(shift_seq)

    def sample(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``count`` binary grids [count, gh+1, gw+1] and shifts [count, 2] in cells."""
        grids = (self._grid_rng.random((count, self.grid_h + 1, self.grid_w + 1),
                                       dtype=np.float32) < self.prob).astype(np.float32)
        return grids, self._shift_rng.random((count, 2), dtype=np.float32)

    def render(self, grids: np.ndarray, shifts: np.ndarray, height: int, width: int) -> np.ndarray:
        """Masks float32 [count, height, width] in [0, 1] for sampled grids and shifts."""
        cell_h, cell_w = height / self.grid_h, width / self.grid_w
        wy = _interp_matrix(height, self.grid_h, cell_h, shifts[:, 0] * cell_h)
        rows = np.matmul(wy, grids)
        if height == 1:  # one row: numpy's vector product sums in the operand's layout order
            wx = _interp_matrix(width, self.grid_w, cell_w, shifts[:, 1] * cell_w)
            return np.matmul(rows, wx.transpose(0, 2, 1))
        # x weights made as the product's right operand (no transposed copy for BLAS)
        wx = _interp_matrix(width, self.grid_w, cell_w, shifts[:, 1] * cell_w, nodes_first=True)
        return np.matmul(rows, wx)

    def next(self, count: int, height: int, width: int) -> np.ndarray:
        return self.render(*self.sample(count), height, width)
