"""Lightweight stand-ins for the Datumaro annotations interpreter scripts build.

A script written the way Datumaro documents it returns one ``Label`` per class
for every image: 1000 attrs-validated objects per image cost more than the
inference itself (~10 us each). While a script runs, the names it bound to
Datumaro's ``Label`` and ``Bbox`` resolve to these subclasses instead: same
constructor signature, same fields and conversions, same ``type``, ``wrap``,
``==`` and repr, built by a plain ``__init__``. Being subclasses, they pass
every ``isinstance`` check the real classes pass. ``to_real`` turns them back
into Datumaro's own classes where a dataset is written (``datum model run``).

``Bbox`` keeps the (x, y, w, h) it was given and computes Datumaro's rounded
``points`` only when read, so whole batches of boxes convert in one array op
(``predictions.detections_from_annotations``).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from datumaro.components import annotation as _dm

__all__ = ["Label", "Bbox", "STANDINS", "is_standin", "to_real", "real_annotations"]

_RealLabel, _RealBbox = _dm.Label, _dm.Bbox
ROUND = _dm.COORDINATE_ROUNDING_DIGITS


def _int_field(value: Any, default: int) -> int:
    """Datumaro's ``default_if_none(int)`` validator."""
    if value is None:
        return default
    return value if isinstance(value, int) else int(value)


def _attributes(value: Any) -> dict:
    """Datumaro's ``default_if_none(dict)`` validator on ``attributes``."""
    if value is None:
        return {}
    return value if isinstance(value, dict) else dict(value)


def _same(a, b) -> bool:
    return all(getattr(a, f.name) == getattr(b, f.name) for f in a.__attrs_attrs__)


def _set_ids(ann, id, group, object_id) -> None:
    """The id fields as Datumaro's converters make them (a fast path for plain ints)."""
    if id.__class__ is int is group.__class__ is object_id.__class__:
        ann.id, ann.group, ann.object_id = id, group, object_id
    else:
        ann.id = _int_field(id, 0)
        ann.group = _int_field(group, 0)
        ann.object_id = _int_field(object_id, -1)


class Label(_RealLabel):
    """``datumaro.components.annotation.Label`` without the attrs validators."""

    __slots__ = ()

    def __init__(self, label, *, id=0, attributes=None, group=0, object_id=-1):
        # ``_set_ids``' fast path inlined, ``__class__`` reads instead of calls: a documented
        # script builds 1000 Labels per image, and every call here costs ~0.1 us.
        self.label = label if label.__class__ is int else int(label)
        self.attributes = attributes if attributes.__class__ is dict else _attributes(attributes)
        if id.__class__ is int is group.__class__ is object_id.__class__:
            self.id, self.group, self.object_id = id, group, object_id
        else:
            _set_ids(self, id, group, object_id)

    def __eq__(self, other):
        if not isinstance(other, _RealLabel) or type(other).__eq__ not in (_RealLabel.__eq__, Label.__eq__):
            return NotImplemented
        return _same(self, other)

    __hash__ = None


class Bbox(_RealBbox):
    """``datumaro.components.annotation.Bbox`` with lazily rounded ``points``."""

    __slots__ = ("_xywh",)

    def __init__(self, x, y, w, h, *, label=None, z_order=0, id=0, attributes=None, group=0,
                 object_id=-1, points=None):  # points: passed (and ignored) by wrap()
        self._xywh = (x, y, w, h)
        self.label = None if label is None else int(label)
        self.z_order = z_order if type(z_order) is int else _int_field(z_order, 0)
        self.attributes = attributes if attributes.__class__ is dict else _attributes(attributes)
        _set_ids(self, id, group, object_id)

    @property
    def points(self) -> list[float]:
        x, y, w, h = self._xywh
        return np.array([x, y, x + w, y + h], dtype=np.float32).round(ROUND).tolist()

    @points.setter
    def points(self, value) -> None:
        p = np.array(value, dtype=np.float32).round(ROUND).tolist()
        self._xywh = (p[0], p[1], p[2] - p[0], p[3] - p[1])

    def __eq__(self, other):
        if not isinstance(other, _RealBbox) or type(other).__eq__ not in (_RealBbox.__eq__, Bbox.__eq__):
            return NotImplemented
        return _same(self, other)

    __hash__ = None

    def __getstate__(self):
        return {"xywh": self._xywh, **{f.name: getattr(self, f.name) for f in self.__attrs_attrs__
                                       if f.name != "points"}}

    def __setstate__(self, state):
        state = dict(state)
        self._xywh = state.pop("xywh")
        for name, value in state.items():
            object.__setattr__(self, name, value)


for _cls, _real in ((Label, _RealLabel), (Bbox, _RealBbox)):
    _cls.__doc__ = f"{_cls.__doc__}\n\n{_real.__doc__ or ''}"

STANDINS = {_RealLabel: Label, _RealBbox: Bbox}
_STANDIN_TYPES = (Label, Bbox)


def is_standin(ann: Any) -> bool:
    return type(ann) in _STANDIN_TYPES


def to_real(ann: Any) -> Any:
    """The Datumaro annotation a stand-in stands for (anything else as it is)."""
    kind = type(ann)
    if kind is Label:
        return _RealLabel(ann.label, id=ann.id, attributes=ann.attributes, group=ann.group,
                          object_id=ann.object_id)
    if kind is Bbox:
        return _RealBbox(*ann._xywh, label=ann.label, z_order=ann.z_order, id=ann.id,
                         attributes=ann.attributes, group=ann.group, object_id=ann.object_id)
    return ann


def real_annotations(anns: Iterable[Any]) -> list:
    return [to_real(a) for a in anns]
