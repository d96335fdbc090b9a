"""The launcher interface every explanation method sees models through."""
from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Sequence

import numpy as np


class Launcher(ABC):
    """A model that turns batches of images into Datumaro annotations.

    Class side (used by ``datum model add``): ``NAME``, ``build_cmdline_parser``,
    ``parse_cmdline`` and ``copy_model``. Options are stored in the project
    config verbatim and passed back as keyword arguments to ``__init__``.

    Instance side (used by methods and ``datum model run``): ``categories``,
    ``input_size``, ``layout``, ``batch_size`` and ``stream``.
    """

    NAME: ClassVar[str]

    @classmethod
    @abstractmethod
    def build_cmdline_parser(cls, **kwargs: Any) -> argparse.ArgumentParser:
        """The parser of the ``-- ARGS`` that follow ``datum model add -l NAME``."""

    @classmethod
    def parse_cmdline(cls, args: Sequence[str]) -> dict:
        """Parse ``-- ARGS`` into the options dict stored in the project."""
        from explain_plugin.cli_args import parse_plugin_args

        parser = cls.build_cmdline_parser(prog=f"datum model add -l {cls.NAME} --")
        return parse_plugin_args(parser, args, f"launcher '{cls.NAME}'")

    @classmethod
    def copy_model(cls, model_dir: Path, options: dict) -> dict:
        """Copy the model files into ``model_dir``; return options naming the copies."""
        raise NotImplementedError(f"launcher '{cls.NAME}' cannot copy its model files")

    # Instance side ------------------------------------------------------
    categories: Any  # datumaro LabelCategories: label names, index = label id

    @property
    @abstractmethod
    def input_size(self) -> tuple[int, int]:
        """Model input (height, width)."""

    @property
    def layout(self) -> str:
        return "NCHW"

    def view_size(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """The size, at the image's aspect ratio, at which an image still carries
        every pixel the model sees of it (methods mask images at this size).
        Default: scaled so each side covers the input, never above the image."""
        (h, w), (ih, iw) = image_hw, self.input_size
        scale = min(1.0, max(ih / h, iw / w))
        return max(1, round(h * scale)), max(1, round(w * scale))

    def view_image(self, image: np.ndarray) -> np.ndarray:
        """The image as methods perturb it: float32 HWC at ``view_size``, in the
        launcher's own input space (what ``stream_views`` takes back, blended).

        Default: the BGR pixels resized with INTER_AREA (8-bit images far larger
        than the view are resized before the float conversion). Launchers whose
        models see something else (a ReX script's normalised tensor) override it,
        so occlusion happens where their model sees the pixels.
        """
        return resize_view(image, self.view_size(image.shape[:2]))

    def occlusion_base(self, view: np.ndarray) -> np.ndarray | None:
        """A background the launcher imposes on occluded pixels of ``view`` (e.g. a
        ReX script's ``context``), broadcastable to it; None: the method's mask value."""
        return None

    def stream_views(self, batches: Iterable[Sequence[np.ndarray]]) -> Iterator[list[list[Any]]]:
        """``stream`` for arrays in the launcher's view space (``view_image`` and blends
        of it). Default: views are images, so ``stream``."""
        return self.stream(batches)

    def predict_views(self, views: Sequence[np.ndarray]) -> list[list[Any]]:
        """Annotations for one batch of views."""
        return next(iter(self.stream_views([views])))

    @property
    def batch_size(self) -> int:
        """A batch size that keeps the device busy (what methods should feed)."""
        return 1

    @abstractmethod
    def stream(self, batches: Iterable[Sequence[np.ndarray]]) -> Iterator[list[list[Any]]]:
        """Infer batches of HWC BGR images; yield, per batch and in order, one
        list of annotations per image.

        Implementations keep several batches in flight, so a caller that
        generates the next batch while the device works gets overlap for free.
        """

    def predict(self, images: Sequence[np.ndarray]) -> list[list[Any]]:
        """Annotations for one batch of images."""
        return next(iter(self.stream([images])))

    def describe(self) -> dict:
        """Inputs, outputs and categories, for ``datum model info``."""
        return {"labels": [c.name for c in self.categories]}


# Above this many bytes as float32, an 8-bit image is resized before it becomes float.
EXACT_FLOAT_BYTES = 256 * 2**20


def resize_view(image: np.ndarray, view_hw: tuple[int, int]) -> np.ndarray:
    """``image`` as float32 at ``view_hw`` (INTER_AREA); a 10000x10000 8-bit photo
    is resized as 8-bit, never converted to float32 at full size."""
    import cv2

    vh, vw = view_hw
    if image.shape[:2] == (vh, vw):
        return image.astype(np.float32)
    if image.dtype == np.uint8 and image.size * 4 > EXACT_FLOAT_BYTES:
        return cv2.resize(image, (vw, vh), interpolation=cv2.INTER_AREA).astype(np.float32)
    return cv2.resize(image.astype(np.float32), (vw, vh), interpolation=cv2.INTER_AREA)
