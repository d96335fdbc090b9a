"""Load an interpreter script of any Datumaro generation behind one adapter.

Kinds (``Interpreter.kind``):

- ``"0.x"``: module-level ``process_outputs(inputs, outputs)``, optional
  ``get_categories()`` and ``normalize(inputs)``.
- ``"1.0"``: one ``IModelInterpreter`` subclass with ``process_outputs``
  (optionally ``get_categories``, ``normalize``, ``resize``).
- ``"1.4"``: a subclass with ``preprocess(img: np.ndarray)`` and ``postprocess``.
- ``"1.5"``: a subclass with ``preprocess(inp: DatasetItem)`` and ``postprocess``.

The first two are *batch* interpreters (the launcher resizes, the script sees
the whole batch); the last two are *item* interpreters (the script prepares and
reads each image). Scripts load and run with the ``compat`` modules in place;
every failure becomes a one-line ``CliError`` naming the script and function.

Interpretation paths (``Interpreter.path``): a script whose source uses the
Datumaro ``Label``/``Bbox`` it imported only by calling them gets them as
``standins`` while it runs (``"fast"``: same constructor and fields, no attrs
validators; ``"rows"`` when, in addition, its one-Label-per-class comprehensions
are read as score rows: ``score_rows``); a script that subclasses, compares types with, rebinds or
otherwise inspects them keeps Datumaro's own classes (``"exact"``, with
``path_reason`` saying why). Either way it returns the same annotations.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import itertools
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from datumaro.components.annotation import Annotation, Annotations, AnnotationType, Label, LabelCategories
from datumaro.components.dataset_base import DatasetItem
from datumaro.util.definitions import DEFAULT_SUBSET_NAME
from datumaro.components.media import Image

from explain_plugin.errors import CliError

from . import score_rows, standins
from .compat import IModelInterpreter, compat_imports, patch_namespace

__all__ = [
    "Interpreter",
    "BatchInterpreter",
    "ItemInterpreter",
    "load_interpreter",
    "builtin_interpreter",
]

_counter = itertools.count()


class Interpreter:
    """Common side of both interpreter protocols.

    ``timing = True`` makes ``script_cpu`` add up the CPU time (``time.thread_time``)
    spent inside the script's ``preprocess``/``postprocess``/``process_outputs``/
    ``normalize``/``resize`` calls: the user's own code, apart from ours (benches).
    """

    kind: str
    path_taken: str = "exact"  # "rows", "fast" (stand-in annotations), "exact" or "builtin"
    path_reason: str = ""
    timing: bool = False
    script_cpu: float = 0.0

    def __init__(self, path: Path, obj: Any):
        self.path = Path(path)
        self.name = self.path.name
        self._obj = obj

    def _run(self, fn, *args):
        """``fn(*args)``, its thread CPU time added to ``script_cpu`` when ``timing``
        (never for the builtin interpreter: no user code)."""
        if not self.timing or self.kind == "builtin":
            return fn(*args)
        start = time.thread_time()
        try:
            return fn(*args)
        finally:
            self.script_cpu += time.thread_time() - start

    @contextmanager
    def calling(self, func: str) -> Iterator[None]:
        """Run script code: compat modules in place, errors as one-line CliErrors."""
        try:
            with compat_imports():
                yield
        except CliError:
            raise
        except Exception as exc:  # user code: anything can happen
            raise CliError(f"{self.name}: {func}() failed: {type(exc).__name__}: {exc}") from exc

    def has(self, name: str) -> bool:
        """Whether the script defines the hook ``name``."""
        return self._fn(name) is not None

    def _fn(self, name: str):
        fn = getattr(self._obj, name, None)
        return fn if callable(fn) else None

    def get_categories(self) -> dict:
        """The script's categories (``{AnnotationType: Categories}``), {} when none."""
        fn = self._fn("get_categories")
        if fn is None:
            return {}
        with self.calling("get_categories"):
            cats = fn()
        if cats is None:
            return {}
        if isinstance(cats, LabelCategories):
            return {AnnotationType.label: cats}
        if not isinstance(cats, dict):
            raise CliError(
                f"{self.name}: get_categories() must return {{AnnotationType.label: "
                f"LabelCategories}}, got {type(cats).__name__}"
            )
        return cats

    def check_item(self, anns: Any, func: str) -> list[Annotation]:
        """One image's result must be a list of annotations."""
        if type(anns) is list and set(map(type, anns)) <= _KNOWN_TYPES:
            return anns
        if type(anns) is score_rows.ScoreLabels:  # Labels by construction
            return anns
        if not isinstance(anns, (list, tuple)) or not all(isinstance(a, Annotation) for a in anns):
            got = type(anns).__name__
            if isinstance(anns, (list, tuple)):
                got = f"a list holding {type(next(a for a in anns if not isinstance(a, Annotation))).__name__}"
            raise CliError(f"{self.name}: {func}() must return a list of annotations per image, got {got}")
        return list(anns)


class BatchInterpreter(Interpreter):
    """Datumaro 0.x / 1.0-1.3 protocol: the launcher resizes, the script reads a batch."""

    def __init__(self, path: Path, obj: Any, kind: str):
        super().__init__(path, obj)
        self.kind = kind
        if self._fn("process_outputs") is None:
            raise CliError(f"{self.name}: no process_outputs(inputs, outputs) function")

    def resize(self, nhwc: np.ndarray) -> np.ndarray:
        """1.0-1.3 ``resize(inputs)`` hook on the NHWC batch (identity when absent)."""
        fn = self._fn("resize")
        if fn is None:
            return nhwc
        with self.calling("resize"):
            out = self._run(fn, nhwc)
        return nhwc if out is None else np.asarray(out)

    def normalize(self, batch: np.ndarray) -> np.ndarray:
        """``normalize(inputs)`` on the model-layout batch (identity when absent;
        a script returning None normalised in place)."""
        fn = self._fn("normalize")
        if fn is None:
            return batch
        with self.calling("normalize"):
            out = self._run(fn, batch)
        return batch if out is None else np.asarray(out)

    def process_outputs(self, inputs: Any, outputs: Any, count: int) -> list[list[Annotation]]:
        """Call ``process_outputs`` and check it gave one annotation list per image."""
        with self.calling("process_outputs"):
            results = self._run(self._obj.process_outputs, inputs, outputs)
        if not isinstance(results, (list, tuple)):
            raise CliError(
                f"{self.name}: process_outputs() must return a list with one list of annotations "
                f"per image ({count}), got {type(results).__name__}"
            )
        if results and all(isinstance(r, Annotation) for r in results):
            raise CliError(
                f"{self.name}: process_outputs() must return one list of annotations per image "
                f"({count}), got a flat list of {len(results)} annotations"
            )
        if len(results) != count:
            raise CliError(
                f"{self.name}: process_outputs() must return one list of annotations per image: "
                f"expected {count}, got {len(results)}"
            )
        return [self.check_item(r, "process_outputs") for r in results]


class ItemInterpreter(Interpreter):
    """Datumaro 1.4-1.11 protocol: ``preprocess`` and ``postprocess`` per image."""

    def __init__(self, path: Path, obj: Any, takes_item: bool):
        super().__init__(path, obj)
        self.takes_item = takes_item
        self.kind = "1.5" if takes_item else "1.4"

    def item_images(self, images: list[np.ndarray], stacked: np.ndarray | None = None) -> list[np.ndarray]:
        """The images as a DatasetItem's ``media.data`` gives them to the script (uint8,
        clipped to 0..255: Datumaro converts on every read), converted once per batch
        in one array op; unchanged for 1.4 scripts, which take the array itself."""
        if not self.takes_item:
            return images
        if stacked is not None and stacked.dtype != np.uint8:
            return list(np.clip(stacked, 0.0, 255.0).astype(np.uint8))
        return [im if im.dtype == np.uint8 else np.clip(im, 0.0, 255.0).astype(np.uint8)
                for im in images]

    def preprocess(self, image: np.ndarray, index: int = 0) -> tuple[Any, Any]:
        """``(input, info)`` for one HWC BGR image."""
        return self.preprocess_all([image], index)[0]

    def preprocess_all(self, images: list[np.ndarray], first: int = 0) -> list[tuple[Any, Any]]:
        """``(input, info)`` per HWC BGR image (items numbered from ``first``)."""
        fn = self._obj.preprocess
        args = [_item(str(first + i), image) for i, image in enumerate(images)] \
            if self.takes_item else images
        outs = []
        with self.calling("preprocess"):  # once per batch: the compat modules stay in place
            for arg in args:
                out = self._run(fn, arg)
                if not isinstance(out, tuple) or len(out) != 2:
                    raise CliError(f"{self.name}: preprocess() must return a tuple (input, info), "
                                   f"got {type(out).__name__}")
                outs.append(out)
        return outs

    def postprocess(self, pred: dict, info: Any) -> list[Annotation]:
        return self.postprocess_all([pred], [info])[0]

    def postprocess_all(self, preds: list[dict], infos: list[Any]) -> list[list[Annotation]]:
        """One list of annotations per ``(pred, info)``."""
        fn = self._obj.postprocess
        with self.calling("postprocess"):
            return [self.check_item(self._run(fn, pred, info), "postprocess")
                    for pred, info in zip(preds, infos)]


_ITEM_FIELDS = ("id", "subset", "media", "annotations", "attributes")
_FAST_ITEMS = tuple(getattr(f, "name", None) for f in getattr(DatasetItem, "__attrs_attrs__", ())) == _ITEM_FIELDS


def _item(item_id: str, image: np.ndarray) -> DatasetItem:
    """``DatasetItem(id=item_id, media=Image.from_numpy(data=image))``, Datumaro's own class
    with the same fields, without re-running its validators (~20 us a call) on values
    known to pass them: a plain digit id, the default subset, no annotations."""
    media = Image.from_numpy(data=image)
    if not _FAST_ITEMS:  # another Datumaro's fields: the validated constructor
        return DatasetItem(id=item_id, media=media)
    item = object.__new__(DatasetItem)
    for name, value in zip(_ITEM_FIELDS, (item_id, DEFAULT_SUBSET_NAME, media, Annotations(), {})):
        object.__setattr__(item, name, value)
    return item


def _takes_item(method) -> bool:
    """Whether ``preprocess`` wants a DatasetItem (1.5+) or an ndarray (1.4)."""
    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return True
    if not params:
        return True
    param = params[0]
    hint = param.annotation
    text = hint if isinstance(hint, str) else getattr(hint, "__name__", repr(hint))
    if hint is not inspect.Parameter.empty:
        if "DatasetItem" in text:
            return True
        if "ndarray" in text or "array" in text.lower():
            return False
    # Datumaro named it ``img`` in 1.4 and ``inp`` in 1.5+; default to the latest.
    return param.name.lower() not in {"img", "image", "im", "x", "array"}


_KNOWN_TYPES = {standins.Label, standins.Bbox, Label}
FAST_PATH = True  # False: every script keeps Datumaro's own classes (tests compare both)

# Names whose use marks a script as inspecting types: exact path.
_INSPECTING_NAMES = {"type", "globals", "vars", "eval", "exec", "locals", "__import__"}
_INSPECTING_ATTRS = {"__class__", "__dict__", "__globals__", "__module__", "__qualname__", "__mro__",
                     "__subclasses__", "__bases__"}


def _annotation_positions(tree: ast.AST) -> set[int]:
    """ids of the nodes inside type hints (where naming a class inspects nothing)."""
    hints = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            hints.append(node.returns)
            args = node.args
            for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if a is not None:
                    hints.append(a.annotation)
        elif isinstance(node, ast.AnnAssign):
            hints.append(node.annotation)
    return {id(n) for hint in hints if hint is not None for n in ast.walk(hint)}


def fast_path_blocker(source: str, names: set[str]) -> str:
    """Why the annotation classes bound to ``names`` must stay Datumaro's own in this
    script ('' when every use of them is a plain call, so stand-ins behave the same)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "its source could not be parsed"
    hints = _annotation_positions(tree)
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    in_functions = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for stmt in f.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in names and id(node) not in calls and id(node) not in hints:
                use = "rebinds" if not isinstance(node.ctx, ast.Load) else "uses"
                return f"it {use} '{node.id}' other than by calling it (line {node.lineno})"
            if node.id in _INSPECTING_NAMES and id(node) not in hints:
                return f"it calls {node.id}() (line {node.lineno})"
        elif isinstance(node, ast.Attribute) and node.attr in _INSPECTING_ATTRS:
            return f"it reads .{node.attr} (line {node.lineno})"
        elif isinstance(node, (ast.Global, ast.Nonlocal)) and names & set(node.names):
            return f"it rebinds {', '.join(sorted(names & set(node.names)))} (line {node.lineno})"
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) in in_functions:
            imported = {a.asname or a.name for a in node.names}
            if "*" in imported or any(a.name in ("Label", "Bbox") for a in node.names) \
                    or "datumaro" in imported:
                return f"it imports Datumaro names inside a function (line {node.lineno})"
    return ""


def _use_standins(module, path: Path) -> tuple[str, str]:
    """Point the script's names for Datumaro's Label/Bbox at the stand-ins when its
    source shows nothing they could change; returns (path, reason)."""
    if not FAST_PATH:
        return "exact", "the fast path is switched off"
    namespace = vars(module)
    bound = {name: value for name, value in namespace.items()
             if isinstance(value, type) and value in standins.STANDINS}
    if not bound:
        return "exact", "it builds no Datumaro Label or Bbox by name"
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "exact", "its source could not be read"
    reason = fast_path_blocker(source, set(bound))
    if reason:
        return "exact", reason
    for name, value in bound.items():
        namespace[name] = standins.STANDINS[value]
    reason = f"{', '.join(sorted(bound))} built as lightweight stand-ins"
    rows = getattr(module, "__explain_rows__", 0)
    if rows and any(standins.STANDINS[v] is standins.Label for v in bound.values()):
        return "rows", (f"{reason}; {rows} one-Label-per-class list(s) read as score rows "
                        "(the Labels are built only when read)")
    return "fast", reason


def _rows_code(path: Path, module) -> Any:
    """The script compiled with its documented one-Label-per-class comprehensions as
    ``score_rows`` calls (None when it has none, or cannot be read or parsed: then
    it loads as usual and any error is reported from there)."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    count = score_rows.rewrite(tree, score_rows.label_names(tree))
    if not count:
        return None
    module.__explain_rows__ = count
    vars(module)[score_rows.HELPER] = score_rows.score_labels
    return compile(tree, str(path), "exec")


def _load_module(path: Path):
    name = f"_explain_interpreter_{next(_counter)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"{path.name}: cannot load the interpreter script (not a Python file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling in scripts look their module up
    code = _rows_code(path, module) if FAST_PATH else None
    try:
        with compat_imports():
            if code is None:
                spec.loader.exec_module(module)
            else:
                exec(code, vars(module))
    except SyntaxError as exc:
        raise CliError(f"{path.name}: syntax error on line {exc.lineno}: {exc.msg}") from exc
    except Exception as exc:
        raise CliError(
            f"{path.name}: loading the interpreter script failed: {type(exc).__name__}: {exc}"
        ) from exc
    patch_namespace(vars(module))
    module.__explain_path__ = _use_standins(module, path)
    return module


def _taking(interp: Interpreter, module) -> Interpreter:
    interp.path_taken, interp.path_reason = module.__explain_path__
    return interp


def load_interpreter(path: str | Path) -> Interpreter:
    """Load ``path`` and wrap it in the adapter of its Datumaro generation."""
    path = Path(path)
    if not path.is_file():
        raise CliError(f"interpreter script '{path}' not found")
    module = _load_module(path)

    classes = {
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, IModelInterpreter) and obj is not IModelInterpreter
    }
    if len(classes) > 1:
        names = ", ".join(sorted(c.__name__ for c in classes))
        raise CliError(
            f"{path.name}: expected exactly one IModelInterpreter subclass, found {len(classes)} ({names})"
        )
    if not classes:
        if not callable(getattr(module, "process_outputs", None)):
            raise CliError(
                f"{path.name}: expected a process_outputs(inputs, outputs) function "
                "or one IModelInterpreter subclass, found neither"
            )
        return _taking(BatchInterpreter(path, module, "0.x"), module)

    (cls,) = classes
    try:
        with compat_imports():
            obj = cls()
    except Exception as exc:
        raise CliError(
            f"{path.name}: {cls.__name__}() failed: {type(exc).__name__}: {exc}"
        ) from exc
    has = {n for n in ("preprocess", "postprocess", "process_outputs") if callable(getattr(obj, n, None))}
    if {"preprocess", "postprocess"} <= has:
        return _taking(ItemInterpreter(path, obj, _takes_item(obj.preprocess)), module)
    if "process_outputs" in has:
        return _taking(BatchInterpreter(path, obj, "1.0"), module)
    raise CliError(
        f"{path.name}: {cls.__name__} must define preprocess() and postprocess() "
        "(Datumaro 1.4+) or process_outputs() (Datumaro 1.0-1.3)"
    )


class _ClassScores:
    """No script given: a single [N,C] output read as class scores."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.fast = FAST_PATH

    def get_categories(self) -> dict:
        return {AnnotationType.label: LabelCategories.from_iterable(map(str, range(self.num_classes)))}

    def process_outputs(self, inputs, outputs):
        x = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
        # Probabilities pass through; anything else (logits) goes through a softmax.
        if not ((x >= 0).all() and np.abs(x.sum(axis=1) - 1).max() < 1e-3):
            x = np.exp(x - x.max(axis=1, keepdims=True))
            x /= x.sum(axis=1, keepdims=True)
        # One Label per image (the top class) carrying every class's score: building
        # C Label objects per image would cost more than the inference itself.
        if self.fast:  # built when read; read as scores straight from x
            return [score_rows.ScoreLabels(row, standins.Label, top=True) for row in x]
        top = x.argmax(axis=1)
        return [[Label(int(c), attributes={"score": float(row[c]),
                                           "scores": row.astype(np.float32).tolist()})]
                for c, row in zip(top, x)]


def builtin_interpreter(model) -> BatchInterpreter:
    """The interpreter used without ``-i``, for models with a single [N,C] output:
    the top class as a Label whose ``scores`` attribute holds every class's score;
    other models need a script."""
    outputs = model.outputs
    shape = outputs[0].get_partial_shape() if len(outputs) == 1 else None
    if shape is None or not shape.rank.is_static or len(shape) != 2 or not shape[1].is_static:
        raise CliError(
            "no interpreter script given (-i) and the model's output is not one [N, C] "
            "class-score tensor: pass an interpreter script"
        )
    interp = BatchInterpreter(Path("<no interpreter: class scores>"),
                              _ClassScores(shape[1].get_length()), "builtin")
    interp.path_taken, interp.path_reason = (
        ("builtin", "no script: the output read as class scores") if FAST_PATH
        else ("exact", "the fast path is switched off"))
    return interp
