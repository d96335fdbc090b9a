"""Superpixels in numpy: SLIC-style k-means over (Lab colour, position), at a small size.

The image is shrunk to at most ``max_side`` pixels a side first: segments only
need to follow edges at the scale the masks are drawn, and every pixel is
compared with every centre in one array op (no per-pixel loop, no new dependency).
"""
from __future__ import annotations

import numpy as np


def grid_shape(count: int, height: int, width: int) -> tuple[int, int]:
    """Rows x columns of about ``count`` square-ish cells at the image's aspect."""
    rows = max(1, int(round(np.sqrt(count * height / width))))
    return rows, max(1, int(round(count / rows)))


def superpixels(image: np.ndarray, count: int, size: tuple[int, int],
                compactness: float = 10.0, iters: int = 6) -> np.ndarray:
    """int32 labels [h, w] (``size``) of about ``count`` segments of a float32 BGR image
    (0..255), numbered 0..K-1 with no empty label."""
    import cv2

    h, w = size
    small = cv2.resize(np.asarray(image, np.float32), (w, h), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(np.clip(small / 255.0, 0, 1).astype(np.float32), cv2.COLOR_BGR2LAB)
    rows, cols = grid_shape(count, h, w)
    step = np.sqrt(h * w / (rows * cols))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # position scaled so that ``compactness`` Lab units weigh as much as one cell
    feats = np.concatenate([lab.reshape(-1, 3),
                            (np.stack([yy, xx], -1).reshape(-1, 2) * (compactness / step))], 1)
    cy = (np.arange(rows) + 0.5) * h / rows
    cx = (np.arange(cols) + 0.5) * w / cols
    seeds = (np.clip(cy.astype(int), 0, h - 1)[:, None] * w
             + np.clip(cx.astype(int), 0, w - 1)[None, :]).reshape(-1)
    centres = feats[seeds].astype(np.float64)
    feats64 = feats.astype(np.float64)
    sq = (feats64 ** 2).sum(1)
    for _ in range(iters):
        # einsum, not BLAS: the labels must not depend on the BLAS kernel
        d = sq[:, None] - 2.0 * np.einsum("pf,kf->pk", feats64, centres, optimize=False) \
            + (centres ** 2).sum(1)[None, :]
        labels = np.argmin(d, axis=1)
        counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)
        sums = np.stack([np.bincount(labels, feats64[:, j], len(centres))
                         for j in range(feats64.shape[1])], 1)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(h, w).astype(np.int32)


def upscale_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour labels at (height, width)."""
    h, w = labels.shape
    rows = np.minimum((np.arange(height) + 0.5) * h / height, h - 1).astype(np.int64)
    cols = np.minimum((np.arange(width) + 0.5) * w / width, w - 1).astype(np.int64)
    return labels[rows[:, None], cols[None, :]]
