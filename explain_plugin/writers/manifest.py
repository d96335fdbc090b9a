"""``run.json``: what a run was asked, what it produced, and where it can resume."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

from explain_plugin.atomic import atomic_write_text
from explain_plugin.errors import CliError
from explain_plugin.run_lock import RunLock

MANIFEST = "run.json"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("explain-plugin", "datumaro", "openvino", "numpy", "opencv-python-headless"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


class RunFolder:
    """A run folder this process holds: its lock (a second run refuses, naming this
    one's pid), stale temp files removed, and the "N of M items done" a Ctrl-C reports.

    ``done_count`` says how many items are finished, however the run records them.
    """

    def __init__(self, out_dir: Path, total: int | None, done_count: Callable[[], int]):
        self.total, self.done_count = total, done_count
        self._lock: RunLock | None = RunLock(Path(out_dir)).__enter__()
        _ACTIVE.append(self)
        try:
            self._lock.remove_stale_temps()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the folder (idempotent); a folder left empty by a failed run goes."""
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None
        if self in _ACTIVE:
            _ACTIVE.remove(self)


class RunManifest:
    """The manifest of one run; ``identity`` must match for a run to resume."""

    def __init__(self, out_dir: Path, identity: dict[str, Any]):
        self.path = Path(out_dir) / MANIFEST
        self.identity = identity
        self.folder: RunFolder | None = None
        self.data: dict[str, Any] = {
            **identity, "status": "running", "created": _now(), "items": {},
            "versions": package_versions(), "times": {},
        }

    @classmethod
    def open(cls, out_dir: Path, identity: dict[str, Any], restart: bool,
             total: int | None = None) -> "RunManifest":
        """A new manifest, or the one already there when it is the same run.

        Holds the folder's lock (a second run on it refuses, naming this one's pid)
        until ``finish`` or ``close``; half-written temp files a killed run left
        there are removed first.
        """
        manifest = cls(out_dir, identity)
        manifest.folder = RunFolder(out_dir, total, manifest.done_count)
        try:
            manifest._load_previous(out_dir, identity, restart)
        except BaseException:
            manifest.close()
            raise
        return manifest

    def _load_previous(self, out_dir: Path, identity: dict[str, Any], restart: bool) -> None:
        if not self.path.is_file() or restart:
            return
        try:
            old = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        same = isinstance(old, dict) and isinstance(old.get("items"), dict) and all(
            json.dumps(old.get(k), sort_keys=True) == json.dumps(v, sort_keys=True)
            for k, v in identity.items())
        if not same:
            raise CliError(
                f"'{out_dir}' holds another run (different model, target or parameters): "
                "choose another -o or pass --overwrite"
            )
        self.data = old
        self.data["status"] = "running"

    def done_count(self) -> int:
        return sum(1 for entry in self.data["items"].values()
                   if isinstance(entry, dict) and entry.get("status") == "done")

    def close(self) -> None:
        if self.folder is not None:
            self.folder.close()

    def done(self, item_key: str) -> bool:
        return self.data["items"].get(item_key, {}).get("status") == "done"

    def record(self, item_key: str, entry: dict[str, Any]) -> None:
        self.data["items"][item_key] = {**entry, "status": "done"}
        self.save()

    def finish(self, times: dict[str, float]) -> None:
        self.data["times"] = {k: round(v, 4) for k, v in times.items()}
        self.data["status"] = "complete"
        self.data["finished"] = _now()
        self.save()
        self.close()

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=2, default=_jsonable) + "\n")


_ACTIVE: list[RunFolder] = []  # run folders this process holds the lock of


def interrupted_message() -> str | None:
    """What a Ctrl-C during a run tells the user: how far it got, and how to go on."""
    if not _ACTIVE:
        return None
    folder = _ACTIVE[-1]
    total = folder.total if folder.total is not None else "?"
    return (f"interrupted: {folder.done_count()} of {total} items done; "
            "rerun the same command to resume")


def close_all() -> None:
    """Release every run folder this process still holds (after an error or Ctrl-C)."""
    for folder in list(_ACTIVE):
        folder.close()


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
