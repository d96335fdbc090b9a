"""Which classes or boxes to explain: ``--targets top:K | all | NAME,ID,...``."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from explain_plugin.errors import CliError


def parse_targets(spec: str | None, labels: Sequence[str]) -> tuple[str, object]:
    """``("default", None)``, ``("top", K)``, ``("all", None)`` or ``("labels", [ids])``.

    The default is the top-1 class for a classifier and every box for a detector.
    """
    spec = (spec or "").strip()
    if not spec:
        return "default", None
    if spec == "all":
        return "all", None
    if spec.startswith("top"):
        _, _, k = spec.partition(":")
        try:
            count = int(k or 1)
        except ValueError:
            count = 0
        if count < 1:
            raise CliError(f"bad --targets '{spec}': write top:K with K >= 1, e.g. top:3")
        return "top", count
    ids = []
    for token in filter(None, (t.strip() for t in spec.split(","))):
        if token in labels:
            ids.append(list(labels).index(token))
        elif token.isdigit() and int(token) < len(labels):
            ids.append(int(token))
        else:
            raise CliError(
                f"bad --targets: '{token}' is not a label of the model: use top:K, all, "
                f"or names/ids among {', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''}"
            )
    if not ids:
        raise CliError("bad --targets: empty list: use top:K, all, or label names/ids")
    return "labels", ids


def select_classes(scores: np.ndarray, spec: tuple[str, object]) -> np.ndarray:
    """Class ids to explain, given the clean image's scores [C]."""
    kind, value = spec
    if kind == "all":
        return np.arange(scores.shape[0])
    if kind in ("top", "default"):
        return np.argsort(-scores, kind="stable")[: int(value or 1)]
    return np.asarray(value, dtype=np.int64)


def select_boxes(labels: np.ndarray, scores: np.ndarray, spec: tuple[str, object]) -> np.ndarray:
    """Indices of detections to explain (default: all of them)."""
    kind, value = spec
    order = np.argsort(-scores, kind="stable")
    if kind == "labels":
        return order[np.isin(labels[order], value)]
    if kind == "top":
        return order[: int(value)]
    return order  # default and all: every detected box, as D-RISE does
