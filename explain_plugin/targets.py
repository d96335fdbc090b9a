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
    """An item's image as HWC BGR (uint8 where the file was 8-bit); one-line errors."""
    from datumaro.components.media import Image

    media = item.media
    if not isinstance(media, Image):
        raise CliError(f"item '{item.id}' has no image (media: {type(media).__name__})")
    try:
        data = media.data
    except Exception as e:
        raise CliError(f"cannot read the image of item '{item.id}': {e}") from e
    if data is None:
        raise CliError(f"cannot read the image of item '{item.id}': the file is missing or empty")
    from explain_plugin.launchers.preprocess import to_bgr

    try:
        image = to_bgr(np.asarray(data))
    except ValueError as e:
        raise CliError(f"item '{item.id}': {e}") from None
    if image.dtype != np.uint8:  # keep 8-bit images as they are; others as float32 0..255
        image = np.clip(image, 0, 255).astype(np.float32)
    return np.ascontiguousarray(image)
