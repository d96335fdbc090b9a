"""``datum model run``: a dataset's images through a launcher, predictions as annotations."""
from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Iterator

import numpy as np
from datumaro.components.annotation import AnnotationType
from datumaro.components.dataset import Dataset
from datumaro.components.dataset_base import DatasetItem
from datumaro.components.media import Image

from .base import Launcher
from .standins import real_annotations

__all__ = ["run_model"]


def _image(item: DatasetItem) -> np.ndarray | None:
    from explain_plugin.targets import item_image  # any depth, scaled; one-line errors

    return item_image(item) if isinstance(item.media, Image) else None


def run_model(launcher: Launcher, dataset, batch_size: int | None = None) -> Dataset:
    """A new dataset: the items of ``dataset`` with the launcher's predictions as
    their annotations, and the launcher's categories.

    Images stream through ``launcher.stream`` in batches of ``batch_size``
    (default: the launcher's), so loading the next images overlaps inference.
    Items without an image keep no annotations.
    """
    batch_size = batch_size or launcher.batch_size
    items = iter(dataset)
    out: list[DatasetItem] = []  # in dataset order; predicted items are filled in later
    in_flight: deque[list[int]] = deque()

    def batches() -> Iterator[list[np.ndarray]]:
        while chunk := list(islice(items, batch_size)):
            slots, images = [], []
            for item in chunk:
                image = _image(item)
                if image is not None:
                    slots.append(len(out))
                    images.append(image)
                out.append(item.wrap(annotations=[]))
            if images:
                in_flight.append(slots)
                yield images

    for predictions in launcher.stream(batches()):
        for slot, anns in zip(in_flight.popleft(), predictions):
            # scripts built lightweight stand-ins: the dataset gets Datumaro's own classes
            out[slot] = out[slot].wrap(annotations=real_annotations(anns))

    categories = getattr(launcher, "categories_info", None) or {
        AnnotationType.label: launcher.categories
    }
    media_type = getattr(dataset, "media_type", lambda: Image)()
    return Dataset.from_iterable(out, categories=categories, media_type=media_type)
