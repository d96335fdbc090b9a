"""Score rows straight from a script's one-Label-per-class list.

Datumaro documents classifier scripts that end in
``[Label(i, attributes={"score": p}) for i, p in enumerate(probs)]``: 1000 objects
per image, which RISE only reads back into one row of scores. When a script's
source holds that comprehension where its value can only leave the script
(``return [...]``, ``results.append([...])`` of a list the function only
returns, or the rows of a returned comprehension), the comprehension is compiled
as a call to ``score_labels`` instead. That keeps a copy of ``probs`` in a
``ScoreLabels``: a list that builds exactly the Labels the comprehension would
have built the first time anything reads it, while the launcher reads the scores
from the array without building any (``rows``). Anything else (``probs`` not a
1-D float array, the script's ``Label`` being Datumaro's own class) runs the
comprehension itself.
"""
from __future__ import annotations

import ast
from typing import Any, Callable

import numpy as np

from . import standins

__all__ = ["ScoreLabels", "score_labels", "rewrite", "HELPER"]

HELPER = "__explain_score_labels__"
_FLOATS = (np.float16, np.float32, np.float64)


class ScoreLabels(list):
    """``[make(i, attributes={"score": conv(p)}) for i, p in enumerate(values)]``,
    built on first use (every list operation builds it first). ``top``: instead the
    built-in interpreter's one Label, the top class carrying every class's score.
    Read as scores, both are the row max(0, float32(values))."""

    __slots__ = ("values", "_make", "_to_float", "top")

    def __init__(self, values: np.ndarray, make: Callable, to_float: bool = False, top: bool = False):
        super().__init__()
        self.values, self._make, self._to_float, self.top = values, make, to_float, top

    @property
    def pending(self) -> bool:
        """True while the Labels are not built (``values`` is what they would hold)."""
        return self.values is not None

    def build(self) -> "ScoreLabels":
        if self.values is not None:
            values, self.values = self.values, None
            make = self._make
            if self.top:
                c = int(values.argmax())
                labels = [make(c, attributes={"score": float(values[c]),
                                              "scores": values.astype(np.float32).tolist()})]
            elif self._to_float:
                labels = [make(i, attributes={"score": float(p)}) for i, p in enumerate(values)]
            else:
                labels = [make(i, attributes={"score": p}) for i, p in enumerate(values)]
            list.extend(self, labels)
        return self


def _building(name: str):
    method = getattr(list, name)

    def wrapper(self, *args, **kwargs):
        self.build()
        for arg in args:  # list's C code reads another list's storage directly
            if type(arg) is ScoreLabels:
                arg.build()
        return method(self, *args, **kwargs)

    wrapper.__name__ = name
    return wrapper


for _name in ("__iter__", "__len__", "__getitem__", "__setitem__", "__delitem__", "__contains__",
              "__reversed__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__add__",
              "__iadd__", "__mul__", "__rmul__", "__imul__", "__repr__", "__sizeof__", "append", "extend", "insert", "pop", "remove", "index",
              "count", "sort", "reverse", "clear", "copy"):
    setattr(ScoreLabels, _name, _building(_name))


def _radd(self, other):
    self.build()
    return list.__add__(list(other), self) if isinstance(other, list) else NotImplemented


def _reduce_ex(self, protocol):  # copies and pickles are the plain list it stands for
    return list, (list(self.build()),)


ScoreLabels.__radd__ = _radd
ScoreLabels.__reduce_ex__ = _reduce_ex
ScoreLabels.__hash__ = None


def score_labels(values: Any, make: Callable, to_float: Any = None) -> list:
    """What the rewritten comprehension evaluates to. ``to_float``: the script's
    name ``float`` when the comprehension wrote ``float(p)``, else None."""
    conv = to_float is not None
    if (make is standins.Label and (not conv or to_float is float)
            and type(values) is np.ndarray and values.ndim == 1 and values.dtype.type in _FLOATS):
        return ScoreLabels(values.copy(), make, conv)
    if conv:
        return [make(i, attributes={"score": to_float(p)}) for i, p in enumerate(values)]
    return [make(i, attributes={"score": p}) for i, p in enumerate(values)]


# Source rewriting -------------------------------------------------------------
def _match(node: ast.AST, names: set[str]) -> tuple[ast.expr, str, bool] | None:
    """(iterable, Label name, float(p)?) when ``node`` is
    ``[L(i, attributes={"score": p | float(p)}) for i, p in enumerate(E)]``."""
    if not isinstance(node, ast.ListComp) or len(node.generators) != 1:
        return None
    gen, elt = node.generators[0], node.elt
    if gen.ifs or gen.is_async or not isinstance(gen.target, ast.Tuple) or len(gen.target.elts) != 2:
        return None
    i, p = gen.target.elts
    it = gen.iter
    if not (isinstance(i, ast.Name) and isinstance(p, ast.Name) and i.id != p.id
            and isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
            and it.func.id == "enumerate" and len(it.args) == 1 and not it.keywords
            and not isinstance(it.args[0], ast.Starred)):
        return None
    if not (isinstance(elt, ast.Call) and isinstance(elt.func, ast.Name) and elt.func.id in names
            and len(elt.args) == 1 and isinstance(elt.args[0], ast.Name) and elt.args[0].id == i.id
            and len(elt.keywords) == 1 and elt.keywords[0].arg == "attributes"):
        return None
    attrs = elt.keywords[0].value
    if not (isinstance(attrs, ast.Dict) and len(attrs.keys) == 1
            and isinstance(attrs.keys[0], ast.Constant) and attrs.keys[0].value == "score"):
        return None
    value = attrs.values[0]
    if isinstance(value, ast.Name) and value.id == p.id:
        return it.args[0], elt.func.id, False
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "float"
            and len(value.args) == 1 and not value.keywords
            and isinstance(value.args[0], ast.Name) and value.args[0].id == p.id):
        return it.args[0], elt.func.id, True
    return None


def _only_collects(func: ast.AST, name: str) -> bool:
    """Whether ``func`` uses local ``name`` only as ``name = []``, ``name.append(x)``
    statements and ``return name``."""
    uses = [n for n in ast.walk(func) if isinstance(n, ast.Name) and n.id == name]
    allowed = set()
    for node in ast.walk(func):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name
                and isinstance(node.value, ast.List) and not node.value.elts):
            allowed.add(id(node.targets[0]))
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Name) and node.value.id == name:
            allowed.add(id(node.value))
        elif isinstance(node, ast.Expr) and _append_of(node.value) == name:
            allowed.add(id(node.value.func.value))
    return all(id(n) in allowed for n in uses)


def _append_of(node: ast.AST) -> str | None:
    """``x`` when ``node`` is ``x.append(<one argument>)``."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "append" and isinstance(node.func.value, ast.Name)
            and len(node.args) == 1 and not node.keywords):
        return node.func.value.id
    return None


def _sites(tree: ast.Module, names: set[str]) -> list[tuple[ast.AST, str, ast.ListComp]]:
    """(parent, field, comprehension) of every comprehension whose value can only be
    returned by its function."""
    sites, seen = [], set()
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Return) and node.value is not None:
                if _match(node.value, names):
                    sites.append((node, "value", node.value))
                elif isinstance(node.value, ast.ListComp) and _match(node.value.elt, names):
                    sites.append((node.value, "elt", node.value.elt))
            elif isinstance(node, ast.Expr) and _append_of(node.value) and \
                    _match(node.value.args[0], names) and _only_collects(func, _append_of(node.value)):
                sites.append((node.value, "args", node.value.args[0]))
    return [s for s in sites if id(s[2]) not in seen and not seen.add(id(s[2]))]


def label_names(tree: ast.Module) -> set[str]:
    """The names a script may call Datumaro's Label by: ``Label`` (star or plain
    imports) and any ``import ... Label as X`` alias."""
    names = {"Label"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname for a in node.names if a.name == "Label" and a.asname}
    return names


def rewrite(tree: ast.Module, names: set[str]) -> int:
    """Compile the documented comprehensions of ``tree`` (Label called by one of
    ``names``) as ``score_labels`` calls; returns how many were rewritten."""
    sites = _sites(tree, names)
    for parent, field, comp in sites:
        iterable, label, conv = _match(comp, names)
        args = [iterable, ast.Name(label, ast.Load())]
        if conv:
            args.append(ast.Name("float", ast.Load()))
        call = ast.copy_location(ast.Call(ast.Name(HELPER, ast.Load()), args, []), comp)
        if field == "args":
            parent.args[0] = call
        else:
            setattr(parent, field, call)
    ast.fix_missing_locations(tree)
    return len(sites)
