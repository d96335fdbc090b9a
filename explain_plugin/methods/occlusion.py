"""Occlusion: what a masked-out pixel becomes, and the blend ``base + mask * (image - base)``.

Every perturbation method (RISE's soft masks, ReX's boxes, the metrics' pixel
ranks) shows the model images made by one ``Occlusion``: mask 1 keeps a pixel,
0 replaces it by the base (0, the image's mean colour, or a Gaussian blur).
"""
from __future__ import annotations

import numpy as np

MASK_VALUES = ("0", "mean", "blur")


def mask_base(image: np.ndarray, value: str, cell: float = 8.0) -> np.ndarray:
    """The occlusion base of a float32 HWC image: ``0`` and ``mean`` give [1, 1, C]
    (broadcast), ``blur`` a Gaussian blur of sigma ``cell / 2`` (at least 1 px)."""
    import cv2

    if value == "0":
        return np.zeros((1, 1, image.shape[2]), dtype=np.float32)
    if value == "mean":
        return image.reshape(-1, image.shape[2]).mean(axis=0).reshape(1, 1, -1).astype(np.float32)
    if value == "blur":
        return cv2.GaussianBlur(image, (0, 0), sigmaX=max(1.0, cell / 2))
    raise ValueError(f"mask value must be one of {', '.join(MASK_VALUES)}, got {value!r}")


class Occlusion:
    """Masked images ``base + mask * (image - base)`` of one float32 HWC image.

    Written plane by plane: broadcasting a (1, 1, 3) base would make numpy loop
    over 3-value chunks. Masks are float32 in [0, 1] or bool, [K, h, w].
    """

    def __init__(self, image: np.ndarray, base: np.ndarray):
        image = np.asarray(image, dtype=np.float32)
        self.shape = image.shape
        if np.ndim(base) == image.ndim - 1:  # cv2 drops the axis of a 1-channel image
            base = np.asarray(base)[..., None]
        delta = image - base
        self.planes = [np.ascontiguousarray(delta[..., c]) for c in range(image.shape[2])]
        self.base = None if not np.any(base) else np.ascontiguousarray(
            np.broadcast_to(base, image.shape), dtype=np.float32)

    @classmethod
    def of(cls, image, value: str, cell: float = 8.0) -> "Occlusion":
        """For an HWC image, or a ``view.View``: then a background its launcher
        imposes (``View.base``) replaces ``value``."""
        base = getattr(image, "base", None)
        image = getattr(image, "pixels", image)
        return cls(image, mask_base(image, value, cell) if base is None else base)

    def __call__(self, masks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """float32 [K, h, w, C] images for masks [K, h, w] (written into ``out`` if given)."""
        import cv2

        if masks.dtype != np.float32:
            masks = masks.astype(np.float32)
        if out is None:
            out = np.empty((*masks.shape, len(self.planes)), dtype=np.float32)
        if len(self.planes) > 4:  # beyond what cv2.merge interleaves in one call
            for c, plane in enumerate(self.planes):
                np.multiply(masks, plane, out=out[..., c])
        else:  # contiguous products, interleaved by OpenCV: ~2x numpy's strided writes
            for k, mask in enumerate(masks):
                cv2.merge([cv2.multiply(mask, plane) for plane in self.planes], dst=out[k])
        if self.base is not None:
            out += self.base
        return out
