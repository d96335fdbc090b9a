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
    ``input_size``, ``layout``, ``batch_size``, ``requests``, ``stream`` (batches
    pulled ahead from a generator) and ``submit`` (one batch, answered later: what
    the evaluation engine drives).
    """

    NAME: ClassVar[str]
    # Whether two threads may ``submit``/``predict`` at once (a dataset run then keeps
    # two items in flight on one model). Off unless a launcher says so.
    concurrent_submits: ClassVar[bool] = False

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

    def view_image(self, image: np.ndarray) -> np.ndarray | None:
        """The image as methods perturb it, in the launcher's own input space: float32
        [vh, vw, C], what ``submit`` takes back (blended). Launchers whose models see
        something other than the pixels (a ReX script's normalised tensor) return it,
        so occlusion happens where their model sees the image.

        Default None: the view is the BGR image itself, resized to ``view_size`` by
        ``methods.view.view_of`` (8-bit images resized before the float conversion).
        """
        return None

    def occlusion_base(self, view: np.ndarray) -> np.ndarray | None:
        """A background the launcher imposes on occluded pixels of ``view`` (e.g. a
        ReX script's ``context``), broadcastable to it; None: the method's mask value."""
        return None

    @property
    def masked_dtype(self) -> np.dtype:
        """The dtype of the masked views methods ``submit``: float32, or uint8 for a
        launcher that reads them as 8-bit anyway (clipped to 0..255 and truncated, as
        Datumaro's ``ImageFromNumpy`` does): the blend then writes them directly."""
        return np.dtype(np.float32)

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

    @property
    def requests(self) -> int:
        """Batches the device works on at once (the engine keeps one more queued)."""
        return 1

    def submit(self, images: Sequence[np.ndarray]) -> "Pending":
        """Start inferring one batch of views (``view_image``'s space, i.e. images for
        launchers without their own); ``Pending.result()`` gives its annotations.

        For callers that decide the next batch from answers (the evaluation
        engine). Default: inferred at once through ``stream``; launchers that
        run asynchronously return before the device is done.
        """
        return Done(self.predict(images))

    def padding(self, count: int) -> int:
        """Copies inferred only to fill a static batch when ``count`` images are
        submitted together (the engine reports them apart from the masks)."""
        return 0

    def predict(self, images: Sequence[np.ndarray]) -> list[list[Any]]:
        """Annotations for one batch of images."""
        return next(iter(self.stream([images])))

    def predict_views(self, views: Sequence[np.ndarray]) -> list[list[Any]]:
        """Annotations for one batch of views (``view_image``'s space). Default: views
        are images."""
        return self.predict(views)

    def describe(self) -> dict:
        """Inputs, outputs and categories, for ``datum model info``."""
        return {"labels": [c.name for c in self.categories]}


class Pending(ABC):
    """A batch submitted with ``Launcher.submit``."""

    @abstractmethod
    def ready(self) -> bool:
        """Whether ``result()`` would return without waiting for the device."""

    @abstractmethod
    def wait(self) -> None:
        """Wait until the device is done with the batch (its inputs may then be freed)."""

    @abstractmethod
    def result(self) -> list[list[Any]]:
        """One list of annotations per image, in order (waits if needed; once)."""


class Done(Pending):
    """A batch already inferred."""

    def __init__(self, annotations: list[list[Any]]):
        self._annotations = annotations

    def ready(self) -> bool:
        return True

    def wait(self) -> None:
        pass

    def result(self) -> list[list[Any]]:
        return self._annotations

