"""Modules that interpreter scripts of older Datumaro versions import.

Datumaro 1.13 lacks ``datumaro.components.extractor`` (0.x) and
``datumaro.components.abstracts.model_interpreter`` (1.x), and its ``softmax``
overflows to NaN for logits above ~88. ``compat_imports()`` installs stand-ins
in ``sys.modules`` only while a script loads or runs, so datumaro itself is
never patched for other code.
"""
from __future__ import annotations

import types
from abc import ABC
from functools import lru_cache
from typing import Dict, List, Tuple, TypeVar, Union

import numpy as np

import datumaro.components.abstracts as _abstracts
import datumaro.components.annotation as _annotation
import datumaro.components.dataset_base as _dataset_base
import datumaro.components.importer as _importer
import datumaro.components.media as _media
import datumaro.components.transformer as _transformer
import datumaro.util.annotation_util as _annotation_util
from datumaro.components.annotation import Annotation
from datumaro.components.dataset_base import DatasetItem
from datumaro.util.definitions import DEFAULT_SUBSET_NAME

from explain_plugin.launchers.served_modules import ServedModules

__all__ = [
    "IModelInterpreter",
    "LauncherInputType",
    "ModelPred",
    "PrepInfo",
    "compat_imports",
    "stable_softmax",
]

EXTRACTOR = "datumaro.components.extractor"
ABSTRACTS = "datumaro.components.abstracts"
MODEL_INTERPRETER = "datumaro.components.abstracts.model_interpreter"
ANNOTATION_UTIL = "datumaro.util.annotation_util"


def stable_softmax(x):
    """Datumaro's ``softmax`` (normalised over axis 0, as its builtin ``sum`` did),
    shifted by the maximum so large logits do not overflow."""
    x = np.asarray(x)
    e = np.exp(x - np.max(x, axis=0))
    return e / e.sum(axis=0)


# Datumaro 1.x interpreter API ----------------------------------------------
PrepInfo = TypeVar("PrepInfo")
ModelPred = Union[Dict[str, np.ndarray], List[Dict[str, np.ndarray]]]
LauncherInputType = Union[np.ndarray, Dict[str, np.ndarray]]


class IModelInterpreter(ABC):
    """Base of Datumaro 1.x interpreter classes, all three generations.

    No abstract methods: a 1.0-1.3 class defines ``process_outputs`` (and maybe
    ``get_categories``, ``normalize``, ``resize``); a 1.4+ class defines
    ``preprocess``/``postprocess``/``get_categories``. The loader picks the
    protocol from what the subclass defines.
    """


def _module(name: str, doc: str, namespace: dict) -> types.ModuleType:
    module = types.ModuleType(name, doc)
    module.__dict__.update(namespace)
    module.__all__ = [k for k in namespace if not k.startswith("_")]
    return module


@lru_cache(maxsize=None)
def _stand_ins() -> dict[str, types.ModuleType]:
    def public(mod) -> dict:
        names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        return {n: getattr(mod, n) for n in names if hasattr(mod, n)}

    extractor_ns = {}
    for mod in (_annotation, _media):
        extractor_ns.update(
            {
                n: v
                for n, v in public(mod).items()
                if getattr(v, "__module__", None) == mod.__name__
                or (n.isupper() and n != "TYPE_CHECKING")
            }
        )
    extractor_ns.update(
        DatasetItem=DatasetItem,
        CategoriesInfo=_dataset_base.CategoriesInfo,
        DEFAULT_SUBSET_NAME=DEFAULT_SUBSET_NAME,
        # 0.x names of what 1.x renamed
        IExtractor=_dataset_base.IDataset,
        Extractor=_dataset_base.DatasetBase,
        SourceExtractor=_dataset_base.SubsetBase,
        DatasetBase=_dataset_base.DatasetBase,
        SubsetBase=_dataset_base.SubsetBase,
        Importer=_importer.Importer,
        Transform=_transformer.Transform,
        ItemTransform=_transformer.ItemTransform,
    )
    extractor = _module(EXTRACTOR, "Datumaro 0.x extractor names (compatibility).", extractor_ns)

    model_interpreter = _module(
        MODEL_INTERPRETER,
        "Datumaro 1.x interpreter base (compatibility).",
        dict(
            IModelInterpreter=IModelInterpreter,
            PrepInfo=PrepInfo,
            ModelPred=ModelPred,
            LauncherInputType=LauncherInputType,
            Annotation=Annotation,
            DatasetItem=DatasetItem,
            Dict=Dict, List=List, Tuple=Tuple, TypeVar=TypeVar, Union=Union,
        ),
    )
    model_interpreter.__all__ = ["IModelInterpreter", "PrepInfo", "ModelPred", "LauncherInputType"]

    # The real package plus the interpreter names it exported in 1.x.
    abstracts = types.ModuleType(ABSTRACTS, _abstracts.__doc__)
    abstracts.__dict__.update({k: v for k, v in vars(_abstracts).items() if k != "__all__"})
    abstracts.IModelInterpreter = IModelInterpreter
    abstracts.model_interpreter = model_interpreter
    abstracts.__all__ = list(getattr(_abstracts, "__all__", [])) + ["IModelInterpreter"]

    annotation_util = types.ModuleType(ANNOTATION_UTIL, _annotation_util.__doc__)
    annotation_util.__dict__.update(vars(_annotation_util))
    annotation_util.softmax = stable_softmax

    return {
        EXTRACTOR: extractor,
        MODEL_INTERPRETER: model_interpreter,
        ABSTRACTS: abstracts,
        ANNOTATION_UTIL: annotation_util,
    }


_served = ServedModules(lambda: _stand_ins())


def compat_imports():
    """Serve the stand-in modules from ``sys.modules`` for the duration (re-entrant)."""
    return _served.serve()


def patch_namespace(namespace: dict) -> None:
    """Point a loaded script's references to datumaro's softmax (or to its module)
    at the stable versions; the script's own module only."""
    stand_in = _stand_ins()[ANNOTATION_UTIL]
    for name, value in list(namespace.items()):
        if value is _annotation_util.softmax:
            namespace[name] = stable_softmax
        elif value is _annotation_util:
            namespace[name] = stand_in
