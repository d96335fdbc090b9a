"""Where each file of a run lives; item ids and run names made safe as paths.

    <run>/run.json                      identity, status, counts, versions
    <run>/annotations/<subset>.json     Datumaro format (written when the run ends)
    <run>/images/<subset>/<item>/<j>-<label>.png   overlays (the item's media: target 0)
    <run>/heatmaps/<subset>/<item>/<j>-<label>.npy float16 maps in [0, 1]
    <run>/items/<hash>.json             one shard per finished item (what resume trusts)
    <run>/metrics.csv, <run>/report.html
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from explain_plugin.errors import CliError

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_UNSAFE = re.compile(r"[^\w.+-]+")


def check_run_name(name: str) -> str:
    """A run name is one plain path component (no '/', '..', leading dot)."""
    if not RUN_NAME.match(name or "") or name in (".", ".."):
        raise CliError(f"bad run name '{name}': use letters, digits and . _ + - "
                       "(one name, not a path, not starting with '.')")
    return name


def safe_part(text: str) -> str:
    part = _UNSAFE.sub("_", text).lstrip(".") or "_"
    return part[:100]


def item_dir(item_id: str) -> str:
    """A relative path for an item id: its '/' parts made safe; ids changed by that
    (or long) get a short hash, so two ids never share a folder."""
    parts = [safe_part(p) for p in item_id.split("/") if p]
    rel = "/".join(parts) or "_"
    if rel != item_id:
        rel += "-" + hashlib.sha1(item_id.encode()).hexdigest()[:8]
    return rel


def subset_dir(subset: str | None) -> str:
    return safe_part(subset or "default")


def shard_name(subset: str | None, item_id: str) -> str:
    key = f"{subset or 'default'}\0{item_id}"
    return hashlib.sha1(key.encode()).hexdigest()[:20] + ".json"


class RunLayout:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def manifest(self) -> Path:
        return self.root / "run.json"

    @property
    def shards(self) -> Path:
        return self.root / "items"

    @property
    def annotations(self) -> Path:
        return self.root / "annotations"

    def shard(self, subset: str | None, item_id: str) -> Path:
        return self.shards / shard_name(subset, item_id)

    def overlay(self, subset: str | None, item_id: str, j: int, label: str) -> str:
        """Relative to ``images/<subset>/`` (how Datumaro resolves item media)."""
        return f"{item_dir(item_id)}/{j}-{safe_part(label)}.png"

    def heatmap(self, subset: str | None, item_id: str, j: int, label: str) -> str:
        """Relative to the run dir."""
        return f"heatmaps/{subset_dir(subset)}/{item_dir(item_id)}/{j}-{safe_part(label)}.npy"

    def images_dir(self, subset: str | None) -> str:
        return f"images/{subset_dir(subset)}"


def inside(root: Path, path: Path) -> bool:
    root, path = Path(root).resolve(), Path(path).resolve()
    return path != root and root in path.parents
