"""The ReX-script launcher: a model brought as a ReX (``rex-xai``) script, as it is.

A ReX script defines ``preprocess(path, shape, device, mode) -> Data``,
``prediction_function(mutants, target=None, raw=False, binary_threshold=None)``
and ``model_shape`` (``["N", 3, 224, 224]``: "N" a free batch, a number a fixed
one; channels first or last). The launcher runs ``preprocess`` once per image
(on a lossless PNG copy, since scripts open paths) and ``prediction_function``
with ``raw=True`` on batches of mutants in the layout the script declares.

View space: ``view_image`` is the script's own model input (``Data.data``) as
HWC float32, so methods occlude where the model sees the pixels, as ReX does
(mask value 0 is ReX's default 0 in model space; a ``Data.context`` or numeric
``Data.mask_value`` set by the script, or ``--context IMAGE``, is the background).
Maps come back at the model's size and are stretched onto the image, which is
exact for scripts that resize (not crop) the image.

Scores: ``raw=True`` answers are read as probabilities when they are (rows of
non-negative values summing to 1; one column: a probability in [0, 1]) and
softmaxed (sigmoid for one column) otherwise, decided once on a probe image
(``--scores`` overrides), so probabilities never get a second softmax. A
one-column (binary) model gives rows [1 - p, p]; with ``--binary-threshold T``
p is rescaled piecewise-linearly so that T sits at 0.5, so "still the model's
answer" means p >= T, as in ReX.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import itertools
import shutil
import sys
import tempfile
import weakref
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from explain_plugin.errors import CliError

from .base import Launcher, Pending
from .rex_compat import missing_package_error, rex_imports, rex_installed, to_numpy

__all__ = ["RexScriptLauncher"]

DEFAULT_BATCH = 16
SCORE_KINDS = ("auto", "probabilities", "logits")
_counter = itertools.count()


def _resolve(path: str | Path, base_dir: str | Path | None, what: str) -> Path:
    p = Path(path)
    candidates = [p] if p.is_absolute() else ([Path(base_dir) / p] if base_dir else []) + [Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c
    raise CliError(f"{what} '{path}' not found (looked in "
                   f"{' or '.join(str(c.parent) for c in candidates)})")


def _free_batch(dim: Any) -> bool:
    return dim is None or isinstance(dim, str) or (isinstance(dim, int) and dim <= 0)


class RexScriptLauncher(Launcher):
    """A ReX script: ``preprocess``, ``prediction_function`` and ``model_shape``."""

    NAME = "rex-script"
    concurrent_submits = True  # every call goes through one worker thread

    @classmethod
    def build_cmdline_parser(cls, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("prog", f"datum model add -l {cls.NAME} --")
        kwargs.setdefault("description", "A model as a ReX (rex-xai) script.")
        parser = argparse.ArgumentParser(**kwargs)
        parser.add_argument("-s", "--script", required=True,
                            help="ReX script (.py) with preprocess(), prediction_function() "
                                 "and model_shape")
        parser.add_argument("--device", default="cpu",
                            help="Device passed to preprocess() (default: %(default)s)")
        new = dict(default=argparse.SUPPRESS)
        parser.add_argument("--batch-size", type=int, **new,
                            help=f"Mutants per prediction_function() call for an 'N' batch "
                                 f"(default: {DEFAULT_BATCH}); a fixed batch is always honoured")
        parser.add_argument("--labels", **new,
                            help="Class names: a text file (one per line) or a comma list")
        parser.add_argument("--context", **new,
                            help="Background image for occluded pixels (ReX's context), "
                                 "preprocessed by the script")
        parser.add_argument("--binary-threshold", type=float, **new,
                            help="One-output models: class 1 when p >= this (default 0.5)")
        parser.add_argument("--scores", choices=SCORE_KINDS, **new,
                            help="What prediction_function(raw=True) returns (default: auto)")
        return parser

    @classmethod
    def copy_model(cls, model_dir: Path, options: dict) -> dict:
        """Copy the script (and the labels file and context image, when files)."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        options = dict(options)
        for key in ("script", "labels", "context"):
            value = options.get(key)
            if not value or (key == "labels" and not Path(value).is_file()):
                continue
            src = _resolve(value, None, key)
            shutil.copy2(src, model_dir / src.name)
            options[key] = src.name
        return options

    def __init__(self, *, base_dir: str | Path | None = None, script: str, device: str = "cpu",
                 batch_size: int | None = None, labels: str | None = None,
                 context: str | None = None, binary_threshold: float | None = None,
                 scores: str = "auto", **unknown: Any):
        if unknown:
            raise CliError(f"unknown {self.NAME} launcher option(s): {', '.join(sorted(unknown))}")
        if batch_size is not None and batch_size < 1:
            raise CliError(f"--batch-size must be at least 1, got {batch_size}")
        if binary_threshold is not None and not 0 < binary_threshold < 1:
            raise CliError(f"--binary-threshold must be within (0, 1), got {binary_threshold}")
        if scores not in SCORE_KINDS:
            raise CliError(f"--scores must be one of {', '.join(SCORE_KINDS)}, got {scores!r}")
        self.script_path = _resolve(script, base_dir, "ReX script")
        self.name = self.script_path.name
        self.device = device or "cpu"
        self.binary_threshold = binary_threshold
        self._module = self._load()
        for fn in ("preprocess", "prediction_function"):
            if not callable(getattr(self._module, fn, None)):
                raise CliError(f"{self.name}: no {fn}() function (a ReX script defines "
                               "preprocess, prediction_function and model_shape)")
        self._shape = self._model_shape()
        b, a, h, w = self._shape
        self.order = "first" if a in (1, 3, 4) else "last"
        self._hw = (h, w) if self.order == "first" else (a, h)
        self.channels = a if self.order == "first" else w
        self.fixed_batch = None if _free_batch(b) else int(b)
        self._batch = self.fixed_batch or batch_size or DEFAULT_BATCH
        self._predict_kwargs = self._accepted_kwargs()

        self._tmp = tempfile.mkdtemp(prefix="rex-script-")
        weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rex-script")
        weakref.finalize(self, self._executor.shutdown, False)
        self._bases: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._torch_device = None  # set when the script's data is a torch tensor
        self._dtype = np.float32
        self.mode = None
        self.kind = "probabilities"
        self.context_view = None
        self.context_path = None

        # Probe: a mid-grey image through preprocess and the model, once.
        probe = self.view_image(np.full((*self._hw, 3), 128, np.uint8))
        raw = self._call_predict(np.repeat(probe[None], self.fixed_batch or 1, axis=0))
        self.num_classes = raw.shape[1]
        self.binary = self.num_classes == 1
        self.kind = self._score_kind(raw[:1]) if scores == "auto" else scores
        if context:
            self.context_path = _resolve(context, base_dir, "context image")
            self.context_view = self._context_from_image(self.context_path)

        from datumaro.components.annotation import AnnotationType, LabelCategories

        names = self._label_names(labels, base_dir)
        self.categories = LabelCategories.from_iterable(names)
        self.categories_info = {AnnotationType.label: self.categories}

    # Script ------------------------------------------------------------------
    def _load(self):
        name = f"_rex_script_{next(_counter)}_{self.script_path.stem}"
        spec = importlib.util.spec_from_file_location(name, self.script_path)
        if spec is None or spec.loader is None:
            raise CliError(f"{self.name}: cannot load the ReX script (not a Python file?)")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        folder = str(self.script_path.parent)
        added = folder not in sys.path
        if added:  # helper modules next to the script import as under `python script.py`
            sys.path.insert(0, folder)
        try:
            with self._calling("loading the script"):
                spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            if added and folder in sys.path:
                sys.path.remove(folder)
        return module

    def _calling(self, what: str):
        return _Calling(self.name, what)

    def _model_shape(self) -> list:
        shape = getattr(self._module, "model_shape", None)
        if shape is None:
            raise CliError(f"{self.name}: no model_shape (e.g. def model_shape(): "
                           "return ['N', 3, 224, 224])")
        if callable(shape):
            with self._calling("model_shape"):
                shape = shape()
        shape = list(shape) if isinstance(shape, (list, tuple)) else None
        if (shape is None or len(shape) != 4
                or not all(isinstance(d, int) and d > 0 for d in shape[1:])):
            raise CliError(f"{self.name}: model_shape must be [batch, C, H, W] or [batch, H, W, C] "
                           f"with numbers for C, H and W (batch a number or 'N'), got {shape!r}")
        return shape

    def _accepted_kwargs(self) -> set[str]:
        try:
            params = inspect.signature(self._module.prediction_function).parameters
        except (TypeError, ValueError):
            return {"raw", "binary_threshold"}
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return {"raw", "binary_threshold"}
        if "raw" not in params:
            raise CliError(f"{self.name}: prediction_function() takes no 'raw' argument; "
                           "ReX scripts return the class probabilities when raw=True")
        return {k for k in ("raw", "binary_threshold") if k in params}

    def _preprocess(self, path: Path):
        fn = self._module.preprocess
        try:
            n = len([p for p in inspect.signature(fn).parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        except (TypeError, ValueError):
            n = 4
        args = [str(path), list(self._shape), self.device, "RGB"][: max(3, min(n, 4))]
        with self._calling("preprocess"):
            data = fn(*args)
        if getattr(data, "data", None) is None:
            raise CliError(f"{self.name}: preprocess() must return a Data whose .data holds the "
                           f"model input, got {type(data).__name__} without it")
        return data

    def _to_view(self, array: Any, what: str) -> np.ndarray:
        """[1, C, H, W] / [1, H, W, C] (or without the batch axis) -> [H, W, C] float32."""
        x = to_numpy(array)
        if x.ndim == 3:
            x = x[None]
        h, w = self._hw
        want = (1, self.channels, h, w) if self.order == "first" else (1, h, w, self.channels)
        if x.shape != want:
            raise CliError(f"{self.name}: {what} has shape {list(x.shape)}, expected {list(want)} "
                           f"from model_shape {self._shape}")
        hwc = x[0].transpose(1, 2, 0) if self.order == "first" else x[0]
        return np.ascontiguousarray(hwc, dtype=np.float32)

    def _to_model(self, views: np.ndarray) -> Any:
        x = views.transpose(0, 3, 1, 2) if self.order == "first" else views
        x = np.ascontiguousarray(x, dtype=self._dtype)
        if self._torch_device is not None:
            import torch

            x = torch.from_numpy(x).to(self._torch_device)
        return x

    def _write_png(self, image: np.ndarray) -> Path:
        import cv2

        from .preprocess import to_bgr

        image = to_bgr(image)
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        elif image.dtype != np.uint8:
            image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        path = Path(self._tmp) / f"image-{next(_counter)}.png"
        if not cv2.imwrite(str(path), image):
            raise CliError(f"cannot write a temporary image for {self.name} in {self._tmp}")
        return path

    def _context_from_image(self, path: Path) -> np.ndarray:
        import cv2

        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise CliError(f"context image '{path}' cannot be read")
        return self._to_view(self._preprocess(self._write_png(image)).data, "the context's data")

    def _label_names(self, labels: str | None, base_dir) -> list[str]:
        c = 2 if self.binary else self.num_classes
        names = None
        if labels:
            p = Path(labels)
            if p.suffix or p.is_file() or (base_dir and (Path(base_dir) / p).is_file()):
                text = _resolve(labels, base_dir, "labels file").read_text(encoding="utf-8")
                names = [line.strip() for line in text.splitlines() if line.strip()]
            else:
                names = [s.strip() for s in labels.split(",") if s.strip()]
        else:
            for attr in ("labels", "classes", "CLASSES", "LABELS"):
                value = getattr(self._module, attr, None)
                if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                    names = list(value)
                    break
        if names is None:
            return [str(i) for i in range(c)]
        if len(names) != c:
            raise CliError(f"{self.name}: {len(names)} class names given, the model scores {c} "
                           "classes: give one name per class")
        return names

    # Scores -------------------------------------------------------------------
    def _call_predict(self, views: np.ndarray) -> np.ndarray:
        """Raw [n, C] float64 answers of the script for ``views`` [n, H, W, C]."""
        n = len(views)
        kwargs = {"raw": True}
        if "binary_threshold" in self._predict_kwargs:
            kwargs["binary_threshold"] = self.binary_threshold
        with self._calling("prediction_function"):
            out = self._module.prediction_function(self._to_model(views), None, **kwargs)
        if isinstance(out, (list, tuple)) and out and hasattr(out[0], "classification"):
            raise CliError(f"{self.name}: prediction_function(raw=True) returned Prediction "
                           "objects; with raw=True a ReX script returns the scores of every "
                           "class, e.g. F.softmax(model(mutants), dim=1)")
        try:
            x = to_numpy(out).astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise CliError(f"{self.name}: prediction_function(raw=True) returned "
                           f"{type(out).__name__}, not scores: {exc}") from None
        if x.ndim == 1:  # one value per mutant (binary), or one row
            x = x.reshape(-1, 1) if x.size == n else x.reshape(1, -1)
        else:
            x = x.reshape(x.shape[0] if x.ndim else 1, -1)
        if x.shape[0] != n:
            raise CliError(f"{self.name}: prediction_function() answered {x.shape[0]} rows "
                           f"for {n} mutants")
        if not np.isfinite(x).all():
            raise CliError(f"{self.name}: prediction_function() returned NaN or infinite scores")
        return x

    def _score_kind(self, row: np.ndarray) -> str:
        if row.shape[1] == 1:
            return "probabilities" if 0 <= row[0, 0] <= 1 else "logits"
        is_probs = (row >= 0).all() and abs(row.sum() - 1) < 1e-3
        return "probabilities" if is_probs else "logits"

    def class_scores(self, raw: np.ndarray) -> np.ndarray:
        """[n, C] float32 class probabilities from the script's raw answers."""
        if self.binary:
            p = raw[:, 0]
            if self.kind == "logits":
                p = 1 / (1 + np.exp(-p))
            t = 0.5 if self.binary_threshold is None else self.binary_threshold
            # t -> 0.5, and p >= t strictly above it: class 1 wins exactly when p >= t
            q = p if t == 0.5 else np.where(p < t, p * (0.5 / t), 0.5 + (p - t) * (0.5 / (1 - t)))
            p = np.where(p >= t, np.maximum(q, np.nextafter(0.5, 1)), q)
            return np.stack([1 - p, p], axis=1).astype(np.float32)
        if self.kind == "logits":
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            raw = e / e.sum(axis=1, keepdims=True)
        return raw.astype(np.float32)

    def _annotations(self, views: np.ndarray) -> list[list[Any]]:
        from datumaro.components.annotation import Label

        n, b = len(views), self._batch
        rows = []
        for start in range(0, n, b):
            chunk = views[start:start + b]
            if self.fixed_batch and len(chunk) < b:  # pad to the script's fixed batch
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - len(chunk), axis=0)])
            rows.append(self._call_predict(chunk)[: min(b, n - start)])
        scores = self.class_scores(np.concatenate(rows)) if rows else np.zeros((0, 1), np.float32)
        top = scores.argmax(axis=1)
        return [[Label(int(c), attributes={"score": float(row[c]), "scores": row.tolist()})]
                for c, row in zip(top, scores)]

    # Launcher interface --------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        return self._hw

    @property
    def layout(self) -> str:
        return "NCHW" if self.order == "first" else "NHWC"

    @property
    def batch_size(self) -> int:
        return self._batch

    def view_size(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        return self._hw

    def view_image(self, image: np.ndarray) -> np.ndarray:
        """The script's ``preprocess`` output for ``image`` as HWC float32: methods
        occlude in the script's model-input space, as ReX does."""
        data = self._preprocess(self._write_png(image))
        self.mode = getattr(data, "mode", None) or self.mode
        if hasattr(data.data, "detach"):
            self._torch_device = data.data.device
        x = to_numpy(data.data)
        self._dtype = x.dtype if x.dtype.kind == "f" else np.float32
        view = self._to_view(data.data, "preprocess()'s Data.data")
        base = None
        if getattr(data, "context", None) is not None:
            base = self._to_view(data.context, "Data.context")
        elif isinstance(getattr(data, "mask_value", None), (int, float)):
            base = np.full((1, 1, view.shape[2]), float(data.mask_value), np.float32)
        if base is not None:
            self._bases[id(view)] = (view, base)
            while len(self._bases) > 8:
                self._bases.popitem(last=False)
        return view

    def occlusion_base(self, view: np.ndarray) -> np.ndarray | None:
        entry = self._bases.get(id(view))
        if entry is not None and entry[0] is view:
            return entry[1]
        return self.context_view

    @property
    def requests(self) -> int:
        return 1  # scripts are called one batch at a time (their models need not be thread-safe)

    def submit(self, views: Sequence[np.ndarray]) -> Pending:
        """Start one batch of views (``view_image``'s space, blended) on the script's
        worker thread; the caller prepares the next batch meanwhile."""
        stacked = views if isinstance(views, np.ndarray) else np.stack(views) if len(views) \
            else np.zeros((0, *self._hw, self.channels), np.float32)
        return _FuturePending(self._executor.submit(self._annotations, stacked))

    def padding(self, count: int) -> int:
        return (-count) % self.fixed_batch if self.fixed_batch else 0

    def predict_views(self, views: Sequence[np.ndarray]) -> list[list[Any]]:
        return self.submit(views).result()

    def stream(self, batches: Iterable[Sequence[np.ndarray]]) -> Iterator[list[list[Any]]]:
        """Images: each through ``preprocess`` once, then through the model; the next
        batch is preprocessed while the model works on one."""
        pending: deque[Pending] = deque()
        for batch in batches:
            pending.append(self.submit([self.view_image(im) for im in batch]))
            while len(pending) > 1 or (pending and pending[0].ready()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def describe(self) -> dict:
        h, w = self._hw
        scores = self.kind
        if self.binary:
            scores = f"one output read as p(class 1), {self.kind}"
        elif self.kind == "logits":
            scores = "logits (softmax applied once)"
        return {
            "launcher": self.NAME,
            "script": str(self.script_path),
            "model_shape": list(self._shape),
            "order": f"{self.order} ({self.layout})",
            "mode": self.mode,
            "input": f"{h}x{w}, {self.channels} channel(s)",
            "batch": (f"fixed {self.fixed_batch}" if self.fixed_batch
                      else f"N (free), {self._batch} mutants per call"),
            "device": self.device,
            "scores": scores,
            "binary_threshold": (self.binary_threshold if self.binary_threshold is not None
                                 else 0.5) if self.binary else "n/a",
            "classes": len(self.categories),
            "labels": [c.name for c in self.categories],
            "context": str(self.context_path) if self.context_path else "none",
            "rex_xai": "installed" if rex_installed() else "not installed (explain-plugin's stand-ins)",
        }


class _FuturePending(Pending):
    def __init__(self, future: Future):
        self._future = future

    def ready(self) -> bool:
        return self._future.done()

    def wait(self) -> None:
        self._future.exception()  # waits; the error, if any, comes with result()

    def result(self) -> list[list[Any]]:
        return self._future.result()


class _Calling:
    """Run script code: rex_xai stand-ins in place, failures as one-line CliErrors."""

    def __init__(self, script: str, what: str):
        self.script, self.what = script, what
        self._ctx = None

    def __enter__(self):
        self._ctx = rex_imports()
        self._ctx.__enter__()
        return self

    def __exit__(self, kind, exc, tb):
        self._ctx.__exit__(kind, exc, tb)
        if exc is None or isinstance(exc, CliError) or not isinstance(exc, Exception):
            return False
        if isinstance(exc, ModuleNotFoundError):
            error = missing_package_error(self.script, exc)
            if error is not None:
                raise error from None
        if isinstance(exc, SyntaxError):
            raise CliError(f"{self.script}: syntax error on line {exc.lineno}: {exc.msg}") from None
        if isinstance(exc, ImportError) and "rex_xai" in str(exc) and not rex_installed():
            raise CliError(f"{self.script}: {exc}; explain-plugin's stand-ins provide Data, "
                           "Prediction and from_pytorch_tensor: pip install rex-xai for the rest"
                           ) from None
        step = self.what if self.what.startswith("loading") else f"{self.what}() failed"
        raise CliError(f"{self.script}: {step}: {type(exc).__name__}: {exc}") from exc
