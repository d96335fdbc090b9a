"""Names that become paths: one check for all of them, and removal only inside a root.

A model, source or run name is one path component; a dataset item id may hold
'/' (sub-folders) but always maps to a path inside the output folder. Every
write or delete is checked again on the resolved path, so a symlink cannot
lead outside either.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from explain_plugin.errors import CliError

_BAD_CHARS = re.compile(r"[/\\\x00-\x1f]")


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a single file name, or None where it can."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not a string"
    if not name.strip():
        return "it is empty"
    if name in (".", ".."):
        return f"'{name}' is not a name"
    if ".." in name.split("/") or ".." in name.split("\\"):
        return "it must not contain '..'"
    if os.path.isabs(name) or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "it must not be an absolute path"
    if _BAD_CHARS.search(name):
        return "it must not contain '/', '\\' or control characters"
    return None


def check_name(name: object, what: str, fix: str = "choose a plain name with -n") -> str:
    """``name`` if it is one plain path component; else a one-line CliError."""
    problem = name_problem(name)
    if problem:
        raise CliError(f"{what} name {name!r} is not allowed: {problem}; {fix}")
    return name  # type: ignore[return-value]


def check_inside(path: Path, root: Path, what: str) -> Path:
    """``path`` resolved, if it lies inside ``root`` (resolved); else a CliError."""
    real, base = Path(path).resolve(), Path(root).resolve()
    if real != base and base not in real.parents:
        raise CliError(f"{what} '{path}' resolves to '{real}', outside '{base}': refusing to "
                       "write or delete there; check the name and any symlinks")
    return real


def remove_tree(path: Path, root: Path, what: str) -> None:
    """Delete ``path`` (a folder or a symlink to one) only when it is strictly inside ``root``."""
    path = Path(path)
    if path.is_symlink():  # remove the link, never what it points at
        check_inside(path.parent, root, what)
        path.unlink()
        return
    if not path.exists():
        return
    real = check_inside(path, root, what)
    if real == Path(root).resolve():
        raise CliError(f"{what} '{path}' is the folder '{root}' itself: refusing to delete it")
    shutil.rmtree(real)
