"""View geometry: an image at the launcher's scale, and maps/boxes back to the image.

Methods perturb images at the size the launcher scales them to (a 4000x3000
photo costs what a 300x225 one does; the launcher has nothing left to resize).
Big 8-bit images are resized before they become float32, so a 10000x10000
photo never exists as a 1.2 GB float32 array.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Below this many bytes of float32 the image is converted, then resized (the
# results of earlier versions, bit for bit); above it is resized as 8-bit first.
EXACT_FLOAT_BYTES = 256 * 2**20


@dataclass
class View:
    """``pixels``: float32 [vh, vw, C] at the launcher's scale, in its input space (BGR
    pixels unless the launcher has its own, see ``Launcher.view_image``); ``image_hw``:
    the original size; ``base``: a background the launcher imposes on occluded pixels."""

    pixels: np.ndarray
    image_hw: tuple[int, int]
    base: np.ndarray | None = None

    @property
    def hw(self) -> tuple[int, int]:
        return self.pixels.shape[:2]

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): view pixel coordinates -> image pixel coordinates."""
        (h0, w0), (vh, vw) = self.image_hw, self.hw
        return w0 / vw, h0 / vh

    def box_to_image(self, box) -> tuple[float, float, float, float]:
        sx, sy = self.scale
        x1, y1, x2, y2 = (float(v) for v in box)
        return x1 * sx, y1 * sy, x2 * sx, y2 * sy

    def box_to_view(self, box) -> tuple[float, float, float, float]:
        sx, sy = self.scale
        x1, y1, x2, y2 = (float(v) for v in box)
        return x1 / sx, y1 / sy, x2 / sx, y2 / sy


def view_of(launcher, image: np.ndarray) -> View:
    """The image at ``launcher.view_size``; float32, resized with INTER_AREA; or the
    launcher's own view of it (``Launcher.view_image``) when it has one."""
    import cv2

    h0, w0 = image.shape[:2]
    own = getattr(launcher, "view_image", None)
    pixels = own(image) if own is not None else None
    if pixels is not None:
        pixels = np.asarray(pixels, np.float32)
        return View(pixels, (h0, w0), launcher.occlusion_base(pixels))
    vh, vw = launcher.view_size((h0, w0))
    if (vh, vw) == (h0, w0):
        return View(image.astype(np.float32), (h0, w0))
    if image.dtype == np.uint8 and image.size * 4 > EXACT_FLOAT_BYTES:
        small = cv2.resize(image, (vw, vh), interpolation=cv2.INTER_AREA)
        return View(small.astype(np.float32), (h0, w0))
    small = cv2.resize(image.astype(np.float32), (vw, vh), interpolation=cv2.INTER_AREA)
    return View(small, (h0, w0))


def upsample(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """[T, h, w] maps -> [T, height, width] float32, bilinear (maps are smooth).

    One ``cv2.resize`` per map: OpenCV takes at most 512 channels at once.
    """
    import cv2

    out = np.empty((maps.shape[0], height, width), np.float32)
    for t, m in enumerate(maps):
        out[t] = cv2.resize(np.asarray(m, np.float32), (width, height),
                            interpolation=cv2.INTER_LINEAR)
    return out
