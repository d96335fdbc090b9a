"""What ReX scripts import, for machines without ``rex_xai`` (and without torch).

ReX (PyPI ``rex-xai``) scripts build a ``Data`` in ``preprocess`` and return
``Prediction`` objects, often through ``from_pytorch_tensor``. When ``rex_xai``
is installed the scripts get the real modules; otherwise ``rex_imports()``
serves numpy stand-ins with the same fields under both the 0.4 module paths
(``rex_xai.input.input_data``, ``rex_xai.responsibility.prediction``) and the
older flat ones (``rex_xai.input_data``, ``rex_xai.prediction``), only while a
script loads or runs, as ``compat.compat_imports`` does for Datumaro.

A script that imports a package that is not installed fails with a one-line
``CliError`` naming the package and the ``pip install`` that provides it.
"""
from __future__ import annotations

import importlib.util
import types
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator, Optional

import numpy as np

from explain_plugin.errors import CliError
from explain_plugin.launchers.served_modules import ServedModules

__all__ = ["Data", "Prediction", "from_pytorch_tensor", "rex_installed", "rex_imports",
           "missing_package_error", "to_numpy"]

# import name -> what pip installs it as
PIP_NAMES = {
    "torch": "torch", "torchvision": "torchvision", "onnxruntime": "onnxruntime",
    "PIL": "pillow", "timm": "timm", "monai": "monai", "skimage": "scikit-image",
    "sklearn": "scikit-learn", "tensorflow": "tensorflow", "keras": "keras",
    "onnx": "onnx", "scipy": "scipy", "transformers": "transformers", "rex_xai": "rex-xai",
}


def to_numpy(x: Any) -> np.ndarray:
    """A numpy array from a numpy array, a torch tensor (any device) or a list."""
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class Prediction:
    """``rex_xai``'s model answer for one input: the top class and its confidence,
    and (when a target is given) the target's class and confidence."""

    def __init__(self, pred=None, conf=None, box=None, target=None, target_confidence=None):
        self.classification: Optional[int] = pred
        self.confidence: Optional[float] = conf
        self.bounding_box = box
        # As in rex_xai: ``target`` is the target's Prediction; its class is kept.
        self.target: Optional[int] = None if target is None else getattr(
            target, "classification", target)
        self.target_confidence: Optional[float] = target_confidence

    def __repr__(self) -> str:
        return (f"Prediction(class={self.classification}, conf={self.confidence}, "
                f"target={self.target}, target_conf={self.target_confidence}, "
                f"box={self.bounding_box})")

    def get_class(self):
        return self.classification

    def is_empty(self) -> bool:
        return self.classification is None or self.confidence is None

    def is_passing(self) -> bool:
        return self.target == self.classification


def from_pytorch_tensor(tensor, target=None) -> list[Prediction]:
    """Top-1 ``Prediction``s of a [B, C] score tensor or array, after a softmax over C
    (as rex_xai does: give it logits)."""
    probs = _softmax(to_numpy(tensor).astype(np.float64).reshape(len(tensor), -1))
    out = []
    for row in probs:
        top = int(row.argmax())
        p = Prediction(top, float(row[top]))
        if target is not None:
            p.target = getattr(target, "classification", target)
            p.target_confidence = float(row[p.target])
        out.append(p)
    return out


def default_prediction_function(model):
    """``prediction_function`` of a callable model returning [B, C] logits."""

    def inner(mutants, target=None, raw=False, binary_threshold=None):
        scores = model(mutants)
        if raw:
            return _softmax(to_numpy(scores).astype(np.float32))
        return from_pytorch_tensor(scores, target=target)

    return inner


class Data:
    """``rex_xai``'s input record: the raw ``input``, the model-ready ``data`` and
    the model's geometry (``model_shape``, ``model_height``/``width``/``channels``,
    ``model_order`` 'first' (NCHW) or 'last' (NHWC), ``transposed``), plus
    ``mask_value`` and ``context`` (an occlusion background in the data's shape)."""

    def __init__(self, input, model_shape, device="cpu", mode=None, process=False) -> None:
        self.input = input
        self.data: Any = None
        self.device = device
        self.mode = mode if mode is not None else getattr(input, "mode", None) or (
            "spectral" if getattr(input, "ndim", 0) in (1, 2, 3) else None)
        self.process = process
        self.target = None
        self.setup = None
        self.transposed = False
        self.model_shape = list(model_shape)
        h, w, c, order = self._shape()
        self.model_height, self.model_width = h, w
        self.model_channels = c if c is not None else 1
        self.model_depth = None
        self.model_order = order
        self.mask_value = None
        self.background = None
        self.context = None
        self.context_noise = 0.4
        if process and self.mode == "RGB" and order == "first":
            self.transposed = True

    def _shape(self):
        """(height, width, channels, order) from ``model_shape``, as rex_xai reads it."""
        shape = self.model_shape
        if len(shape) == 4:
            _, a, b, c = shape
            if a in (1, 3, 4):
                return b, c, a, "first"
            return a, b, c, "last"
        if len(shape) == 3:
            return shape[1], shape[2], 1, None
        return None, None, None, None

    def __repr__(self) -> str:
        return (f"Data: {self.mode}, {self.model_shape}, {self.model_height}, "
                f"{self.model_width}, {self.model_channels}, {self.model_order}")

    def set_height(self, h: int) -> None:
        self.model_height = h

    def set_width(self, w: int) -> None:
        self.model_width = w

    def set_channels(self, c=None) -> None:
        self.model_channels = c

    def set_classification(self, cl) -> None:
        self.classification = cl

    def set_mask_value(self, m) -> None:
        if isinstance(m, (int, float)):
            self.mask_value = m
        elif m == "min":
            self.mask_value = float(to_numpy(self.data).min())
        elif m == "mean":
            self.mask_value = float(to_numpy(self.data).mean())
        else:
            self.mask_value = m

    def try_unsqueeze(self):
        """``data`` with a leading batch axis (and channel axis for 2-D data)."""
        out = np.asarray(self.data)
        axis = 0 if self.model_order == "first" else -1
        for _ in range(len(self.model_shape) - out.ndim - 1):
            out = np.expand_dims(out, axis)
        return np.expand_dims(out, 0)

    def match_data_to_model_shape(self) -> None:
        if self.mode == "RGB" and self.model_order == "first":
            self.data = np.asarray(self.data).transpose(2, 0, 1)
            self.transposed = True
        self.data = self.try_unsqueeze()

    def load_data(self, astype="float32") -> None:
        img = self.input.resize((self.model_width, self.model_height))  # PIL: (w, h)
        self.data = np.array(img).astype(astype)
        self.match_data_to_model_shape()

    def generic_image_preprocess(self, means=None, stds=None, astype="float32", norm=255.0):
        """Resize to the model, scale by ``norm``, subtract ``means``, divide by ``stds``."""
        self.load_data(astype=astype)
        data = self.data
        if norm is not None:
            data /= norm
        axis = 1 if self.model_order == "first" else -1
        shape = [1] * data.ndim
        shape[axis] = -1
        if means is not None:
            data -= np.asarray(means, data.dtype).reshape(shape)
        if stds is not None:
            data /= np.asarray(stds, data.dtype).reshape(shape)
        self.data = data


class ReXScriptError(Exception):
    pass


class ReXDataError(Exception):
    pass


def rex_installed() -> bool:
    return importlib.util.find_spec("rex_xai") is not None


def _module(name: str, **namespace) -> types.ModuleType:
    module = types.ModuleType(name, "explain-plugin stand-in for rex_xai (not installed)")
    module.__dict__.update(namespace)
    module.__path__ = []  # a package, so submodules resolve through sys.modules
    return module


@lru_cache(maxsize=None)
def _stand_ins() -> dict[str, types.ModuleType]:
    prediction = dict(Prediction=Prediction, from_pytorch_tensor=from_pytorch_tensor,
                      default_prediction_function=default_prediction_function)
    input_data = dict(Data=Data, Prediction=Prediction)
    utils = dict(ReXDataError=ReXDataError, ReXScriptError=ReXScriptError)
    mods = {
        "rex_xai.input.input_data": _module("rex_xai.input.input_data", **input_data),
        "rex_xai.input_data": _module("rex_xai.input_data", **input_data),
        "rex_xai.responsibility.prediction": _module("rex_xai.responsibility.prediction",
                                                     **prediction),
        "rex_xai.prediction": _module("rex_xai.prediction", **prediction),
        "rex_xai.utils._utils": _module("rex_xai.utils._utils", **utils),
        "rex_xai._utils": _module("rex_xai._utils", **utils),
    }
    mods["rex_xai.input"] = _module("rex_xai.input", input_data=mods["rex_xai.input.input_data"])
    mods["rex_xai.responsibility"] = _module(
        "rex_xai.responsibility", prediction=mods["rex_xai.responsibility.prediction"])
    mods["rex_xai.utils"] = _module("rex_xai.utils", _utils=mods["rex_xai.utils._utils"])
    mods["rex_xai"] = _module(
        "rex_xai", input=mods["rex_xai.input"], responsibility=mods["rex_xai.responsibility"],
        utils=mods["rex_xai.utils"], input_data=mods["rex_xai.input_data"],
        prediction=mods["rex_xai.prediction"], _utils=mods["rex_xai._utils"])
    return mods


_served = ServedModules(lambda: _stand_ins())


@contextmanager
def rex_imports() -> Iterator[None]:
    """Serve the stand-ins from ``sys.modules`` for the duration (re-entrant); a
    no-op when ``rex_xai`` is installed."""
    if rex_installed():
        yield
        return
    with _served.serve():
        yield


def missing_package_error(script: str, exc: ModuleNotFoundError) -> CliError | None:
    """A one-line error for a script importing a package that is not installed."""
    name = (exc.name or "").split(".")[0]
    if not name:
        return None
    pip = PIP_NAMES.get(name, name)
    return CliError(f"{script} needs the Python package '{name}', which is not installed: "
                    f"pip install {pip} (into the environment that runs datum)")
