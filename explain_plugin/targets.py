"""What a command runs on: one image file, or a dataset (project, source, PATH:FORMAT)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explain_plugin.errors import CliError


@dataclass
class Target:
    """A resolved target: ``dataset`` always; ``image_path`` for a single image."""

    name: str
    dataset: object  # datumaro.Dataset
    image_path: Path | None = None


def is_image_file(path: str) -> bool:
    from datumaro.util.image import IMAGE_EXTENSIONS

    p = Path(path)
    return p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()


def load_target(project, target: str) -> Target:
    """Resolve an image path, ``project``, a source name or ``PATH:FORMAT``."""
    if project is None or target not in project.sources:
        if is_image_file(target):
            return Target(Path(target).stem, _image_dataset(Path(target)), Path(target))
    if project is None:
        raise CliError(f"'{target}' is not an image file: pass an image, or a project with -p")
    return Target(target, project.make_dataset(target))


def _image_dataset(path: Path):
    from datumaro import Dataset
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image

    return Dataset.from_iterable([DatasetItem(id=path.stem, media=Image.from_file(str(path)))])


def item_image(item) -> np.ndarray:
    """An item's image as HWC BGR uint8 0..255, whatever its file's depth; one-line errors.

    Files are read here (not through Datumaro, whose reader wraps 16-bit values
    modulo 256), keeping their depth, then scaled: 16-bit by 255/65535, float
    images in 0..1 by 255; other ranges are refused rather than guessed.
    """
    import os

    from datumaro.components.media import Image

    from explain_plugin.launchers.preprocess import to_bgr

    media = item.media
    what = f"item '{item.id}'"
    if not isinstance(media, Image):
        raise CliError(f"{what} has no image (media: {type(media).__name__})")
    path = getattr(media, "path", None)
    if path and os.path.isfile(path):
        data = read_image_file(path, what)
    else:
        try:
            from explain_plugin.translate import quiet_stderr

            with quiet_stderr():
                data = media.data
        except Exception as e:
            raise CliError(f"cannot read the image of {what}: {e}") from e
        if data is None:
            raise CliError(f"cannot read the image of {what}: the file is missing or empty")
    try:
        image = to_bgr(to_uint8(np.asarray(data), what))
    except ValueError as e:
        raise CliError(f"{what}: {e}") from None
    return np.ascontiguousarray(image)


_JPEG_EOI = b"\xff\xd9"


def read_image_file(path: str | Path, what: str) -> np.ndarray:
    """A file's pixels at their own depth (grey or BGR), or a one-line error saying why not."""
    import cv2

    from explain_plugin.translate import quiet_opencv, quiet_stderr

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise CliError(f"{what}: the image file '{path}' is empty: replace it")
    quiet_opencv()
    with quiet_stderr():  # libpng / libjpeg print their complaints to fd 2 themselves
        image = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if image is None or _jpeg_truncated(path, size):
        raise CliError(f"{what}: the image file '{path}' is truncated or corrupt (or not an "
                       "image OpenCV reads): replace or re-export it")
    return image


def _jpeg_truncated(path: Path, size: int) -> bool:
    """A JPEG without its end marker (libjpeg decodes it anyway, grey at the bottom)."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False
        f.seek(max(0, size - 4096))
        return _JPEG_EOI not in f.read()


def to_uint8(image: np.ndarray, what: str) -> np.ndarray:
    """Scale an image of any depth to uint8 0..255 without wrapping around."""
    import cv2

    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:  # the full 16-bit range, as 16-bit PNG/TIFF define it
        return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    if image.dtype.kind not in "iuf":
        raise CliError(f"{what}: images of type {image.dtype} are not supported: save it as "
                       "an 8- or 16-bit PNG")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise CliError(f"{what}: the image holds NaN or infinite pixel values: fix the file")
    lo, hi = float(image.min()), float(image.max())
    if image.dtype.kind == "f" and lo >= 0 and hi <= 1.0:
        return cv2.convertScaleAbs(image, alpha=255.0)
    if lo >= 0 and hi <= 255:
        return cv2.convertScaleAbs(image.astype(np.float32) if image.dtype.kind == "i"
                                   else image, alpha=1.0)
    raise CliError(f"{what}: {image.dtype} pixel values span [{lo:g}, {hi:g}], not 0..1 or "
                   "0..255: scale the image to 8 or 16 bits first")
