"""``run.json``: what a run was asked, what it produced, and where it can resume."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from explain_plugin.atomic import atomic_write_text
from explain_plugin.errors import CliError

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


class RunManifest:
    """The manifest of one run; ``identity`` must match for a run to resume."""

    def __init__(self, out_dir: Path, identity: dict[str, Any]):
        self.path = Path(out_dir) / MANIFEST
        self.identity = identity
        self.data: dict[str, Any] = {
            **identity, "status": "running", "created": _now(), "items": {},
            "versions": package_versions(), "times": {},
        }

    @classmethod
    def open(cls, out_dir: Path, identity: dict[str, Any], restart: bool) -> "RunManifest":
        """A new manifest, or the one already there when it is the same run."""
        manifest = cls(out_dir, identity)
        if manifest.path.is_file() and not restart:
            try:
                old = json.loads(manifest.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            same = isinstance(old, dict) and all(
                json.dumps(old.get(k), sort_keys=True) == json.dumps(v, sort_keys=True)
                for k, v in identity.items())
            if not same:
                raise CliError(
                    f"'{out_dir}' holds another run (different model, target or parameters): "
                    "choose another -o or pass --overwrite"
                )
            manifest.data = old
            manifest.data["status"] = "running"
        return manifest

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

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=2, default=_jsonable) + "\n")


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
