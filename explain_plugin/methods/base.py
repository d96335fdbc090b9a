"""What every explanation method shares: its interface, what it yields, its options."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

import click
import numpy as np

from explain_plugin.errors import CliError
from explain_plugin.methods.normalize import normalize_maps  # noqa: F401 - its older home


class NothingToExplain(CliError):
    """The model found no target in an image (e.g. no detections): a dataset run
    records the item and goes on; a single-image run stops with this message."""


@dataclass
class ExplainedTarget:
    """One thing a map explains: a class (classification) or a detected box."""

    label: int
    name: str
    score: float
    box: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2 in image pixels


@dataclass
class Snapshot:
    """Maps after ``masks_used`` samples; the last one a method yields has ``final``."""

    maps: np.ndarray  # float32 [T, h, w] in [0, 1], h x w at the image's aspect ratio
    targets: list[ExplainedTarget]
    masks_used: int
    final: bool = False
    converged: bool = False
    # Unnormalised saliency E[weight | pixel kept] and the mean weight E[weight]
    # (where a method has them): raw - baseline > 0 marks evidence for a target.
    raw: np.ndarray | None = None
    baseline: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Method-neutral fields the run loop reads (it never reads a method's options):
    save: bool = False  # write this intermediate snapshot (e.g. RISE's --progressive)
    show: bool = False  # display it while the maps build (e.g. RISE's --display)
    evaluations: dict[str, int] = field(default_factory=dict)  # model evaluations per purpose
    notes: list[str] = field(default_factory=list)  # one-line remarks for the user
    metrics: list[dict[str, Any]] | None = None  # per target (methods.metrics), when computed


@dataclass
class ItemInfo:
    """What a method may know about the dataset item beside its image."""

    key: str = ""
    boxes: list[tuple[str, tuple[float, float, float, float]]] = field(default_factory=list)
    # ground-truth boxes: (label name, (x1, y1, x2, y2) in image pixels)
    labels: list[str] = field(default_factory=list)  # ground-truth image labels (names)


ProgressFn = Callable[[int, int], None]  # (samples done, samples planned)


class ExplainMethod(ABC):
    """A method: ``datum explain ... NAME [options]``.

    ``options()`` are the method's click options; the CLI passes their values to
    ``__init__`` and never reads them itself (``presentation_options`` and the
    Snapshot fields ``save``/``show``/``notes`` tell it what it needs). ``explain``
    evaluates masks through ``methods.engine`` and yields snapshots, the last one
    final; with ``takes_item`` it also gets ``item=ItemInfo`` (ground truth).
    """

    name: ClassVar[str]
    help: ClassVar[str] = ""
    # Options that change how a run looks or how fast it goes, not its results:
    # left out of the run's identity, so changing them still resumes the run.
    presentation_options: ClassVar[frozenset[str]] = frozenset()
    # Whether ``explain`` takes ``item=ItemInfo`` (ground truth for metrics and targets).
    takes_item: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def options(cls) -> list[click.Parameter]:
        """The method's click options (after the method name on the command line)."""

    def __init__(self, **params: Any):
        self.params = params

    @classmethod
    def with_defaults(cls, **params: Any) -> "ExplainMethod":
        """The method with its command-line defaults, overridden by ``params``
        (for use from Python)."""
        command = click.Command(cls.name, params=cls.options())
        defaults = command.make_context(cls.name, [], resilient_parsing=False).params
        unknown = set(params) - set(defaults)
        if unknown:
            raise TypeError(f"{cls.name}: unknown parameters {sorted(unknown)}")
        return cls(**{**defaults, **params})

    @abstractmethod
    def explain(self, launcher, image: np.ndarray, progress: ProgressFn | None = None
                ) -> Iterator[Snapshot]:
        """Explain one HWC BGR image; yield snapshots, the last with ``final=True``."""

    def write_outputs(self, out_dir, stem: str, image: np.ndarray, snap: Snapshot) -> list[str]:
        """Files of the method's own (beside the maps every method writes), relative to
        ``out_dir``; a method's own ``run.json`` entries go in ``snap.extra["record"]``."""
        return []

