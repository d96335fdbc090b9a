"""Native libraries' errors as one line a user can act on; their stderr noise silenced.

OpenVINO raises multi-line C++ messages, OpenCV and libpng print warnings
straight to file descriptor 2, and Datumaro wraps its real reason in generic
"Failed to import" errors: these helpers keep the cause and drop the rest.
"""
from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from typing import Iterator


def root_reason(exc: BaseException) -> str:
    """The most specific message in an exception's cause/context chain, one line."""
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for e in reversed(chain):  # deepest first
        text = first_line(e)
        if text and not text.startswith("Failed to import dataset"):
            return text
    return first_line(chain[0]) or type(chain[0]).__name__


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


_OV_PATTERNS = [  # (regex on OpenVINO's message, what it means for the user), first match wins
    (r"Incorrect weights|weights_range|Empty weights",
     "the .bin does not match the .xml (truncated, empty or from another model): "
     "pass the matching -w file, or re-export the model"),
    (r"pugi|Unable to read the model|tags mismatch|Error parsing|no document element",
     "the .xml is not a readable OpenVINO IR (truncated, empty or not an IR): "
     "re-export it or pass the right -d file"),
    (r"While validating node|Check '.*' failed",
     "the .bin does not match the .xml (its constants break the graph: typically a .bin "
     "from another export): pass the matching -w file, or re-export the model"),
]


def openvino_reason(exc: BaseException, action: str) -> str:
    """OpenVINO's message as a hint (``action``: e.g. "read model 'm.xml'")."""
    text = str(exc)
    for pattern, hint in _OV_PATTERNS:
        if re.search(pattern, text):
            return f"cannot {action}: {hint}"
    detail = next((line.strip() for line in text.splitlines()
                   if line.strip() and not re.search(r"\.(cpp|hpp|h):\d+", line)
                   and not line.strip().startswith(("Exception from", "Check '"))), "")
    return f"cannot {action}: {detail or type(exc).__name__}"


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence what native code (libpng, OpenCV, OpenVINO) writes to fd 2 meanwhile."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. captured): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_opencv() -> None:
    """OpenCV's own logging off (its warnings on corrupt files are ours to report)."""
    import cv2

    try:
        cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
    except Exception:  # very old builds lack it: quiet_stderr still applies
        pass
