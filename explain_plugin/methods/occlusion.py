"""Occlusion: what a masked-out pixel becomes, and the blend ``base + mask * (image - base)``.

Every perturbation method (RISE's soft masks, ReX's boxes, the metrics' pixel
ranks) shows the model images made by one ``Occlusion``: mask 1 keeps a pixel,
0 replaces it by the base (0, the image's mean colour, or a Gaussian blur).

Launchers that read images as 8-bit anyway (``Launcher.masked_dtype``: a Datumaro
1.5+ script's ``DatasetItem`` media) get the blend as uint8, converted the way
Datumaro's ``ImageFromNumpy`` does (clip to 0..255, truncate) plane by plane.
"""
from __future__ import annotations

import numpy as np

MASK_VALUES = ("0", "mean", "blur")
# Masks this far outside [0, 1] (float rounding of interpolated masks) keep a blend of
# 0..255 pixels within (-1, 256), where truncation to uint8 equals clip-then-truncate.
_MASK_SLACK = 1 / 512


def _within(values, lo: float, hi: float) -> bool:
    """Whether every value is in [lo, hi] (False with NaN)."""
    values = np.asarray(values)
    return values.size == 0 or bool(values.min() >= lo and values.max() <= hi)


def _unit_masks(masks: np.ndarray) -> bool:
    return masks.dtype == np.bool_ or _within(masks, -_MASK_SLACK, 1 + _MASK_SLACK)


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
        # checked once per image: then 8-bit blends need no clip (see ``_MASK_SLACK``)
        self.in_range = _within(image, 0.0, 255.0) and _within(base, 0.0, 255.0)
        self._base_planes = None

    @classmethod
    def of(cls, image, value: str, cell: float = 8.0) -> "Occlusion":
        """For an HWC image, or a ``view.View``: then a background its launcher
        imposes (``View.base``) replaces ``value``."""
        base = getattr(image, "base", None)
        image = getattr(image, "pixels", image)
        return cls(image, mask_base(image, value, cell) if base is None else base)

    def window(self, rows: slice, cols: slice) -> "Occlusion":
        """The same blend of ``image[rows, cols]`` only (for masks cut to that window)."""
        sub = object.__new__(Occlusion)
        sub.planes = [np.ascontiguousarray(p[rows, cols]) for p in self.planes]
        sub.base = None if self.base is None else np.ascontiguousarray(self.base[rows, cols])
        sub.shape = (*sub.planes[0].shape, len(sub.planes))
        sub.in_range, sub._base_planes = self.in_range, None
        return sub

    def __call__(self, masks: np.ndarray, out: np.ndarray | None = None,
                 channels_first: bool = False) -> np.ndarray:
        """float32 [K, h, w, C] images for masks [K, h, w] (written into ``out`` if given);
        [K, C, h, w] with ``channels_first`` (contiguous planes: the faster write).
        A uint8 ``out`` gets the blend as Datumaro reads float pixels: clipped to 0..255
        and truncated (the clip skipped where it cannot change a value)."""
        import cv2

        if out is not None and out.dtype == np.uint8:
            return self._uint8(masks, out, channels_first)
        if masks.dtype != np.float32:
            masks = masks.astype(np.float32)
        if out is None:
            shape = (masks.shape[0], len(self.planes), *masks.shape[1:]) if channels_first \
                else (*masks.shape, len(self.planes))
            out = np.empty(shape, dtype=np.float32)
        if channels_first:  # 2-D products: numpy is ~2x slower on a window's strided masks
            for k, mask in enumerate(masks):
                for c, plane in enumerate(self.planes):
                    cv2.multiply(mask, plane, dst=out[k, c])
        elif len(self.planes) > 4:  # beyond what cv2.merge interleaves in one call
            for c, plane in enumerate(self.planes):
                np.multiply(masks, plane, out=out[..., c])
        else:  # contiguous products, interleaved by OpenCV: ~2x numpy's strided writes
            for k, mask in enumerate(masks):
                cv2.merge([cv2.multiply(mask, plane) for plane in self.planes], dst=out[k])
        if self.base is not None:
            out += self.base.transpose(2, 0, 1) if channels_first else self.base
        return out

    def _uint8(self, masks: np.ndarray, out: np.ndarray, channels_first: bool) -> np.ndarray:
        """The float32 blend, clipped to 0..255 unless the image, the base and the masks
        keep it within (-1, 256), and truncated into ``out``; contiguous planes
        converted, then interleaved as 8-bit (a quarter of the float traffic)."""
        import cv2

        clip = not (self.in_range and _unit_masks(masks))
        if channels_first or len(self.planes) > 4:
            blend = self(masks, channels_first=channels_first)
            if clip:
                np.clip(blend, 0.0, 255.0, out=blend)
            np.copyto(out, blend, casting="unsafe")
            return out
        if masks.dtype != np.float32:
            masks = masks.astype(np.float32)
        if self.base is not None and self._base_planes is None:
            self._base_planes = [np.ascontiguousarray(self.base[..., c]) for c in range(len(self.planes))]
        for k, mask in enumerate(masks):
            planes = [cv2.multiply(mask, plane) for plane in self.planes]
            for c, plane in enumerate(planes):
                if self._base_planes is not None:
                    plane += self._base_planes[c]
                if clip:
                    np.clip(plane, 0.0, 255.0, out=plane)
                planes[c] = plane.astype(np.uint8)
            cv2.merge(planes, dst=out[k])
        return out
