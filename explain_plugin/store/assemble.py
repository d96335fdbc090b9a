"""When a run ends: its shards become the Datumaro dataset, metrics.csv and report.html.

One streaming pass per output: memory holds one shard at a time, whatever the
dataset size. Every output is written to a temp file and renamed into place.
"""
from __future__ import annotations

import csv
import json
from typing import Any, Iterable, Iterator

from explain_plugin.atomic import atomic_open
from explain_plugin.store.layout import RunLayout

DM_FORMAT_VERSION = "1.0"  # Datumaro's own format, as 1.13 writes and reads it
MEDIA_TYPE_IMAGE = 2
ITEM_COLUMNS = ["subset", "id", "gt", "pred", "correct", "target", "role", "score"]


def iter_shards(layout: RunLayout, keys: Iterable[tuple[str, str]]) -> Iterator[dict]:
    for subset, item_id in keys:
        path = layout.shard(subset, item_id)
        try:
            yield json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue


def label_categories(labels: list[str]) -> dict:
    return {"label": {"labels": [{"name": n, "parent": "", "attributes": []} for n in labels],
                      "label_groups": [], "attributes": []}}


def write_dataset(layout: RunLayout, keys: list[tuple[str, str]], labels: list[str],
                  infos: dict[str, Any]) -> dict[str, int]:
    """``annotations/<subset>.json`` for every subset; returns items per subset."""
    subsets = sorted({s for s, _ in keys})
    counts = dict.fromkeys(subsets, 0)
    head = (f'{{"dm_format_version": "{DM_FORMAT_VERSION}", "media_type": {MEDIA_TYPE_IMAGE}, '
            f'"infos": {json.dumps(infos, default=str)}, '
            f'"categories": {json.dumps(label_categories(labels))}, "items": [\n')
    for subset in subsets:  # one file at a time keeps a single file handle open
        with atomic_open(layout.annotations / f"{subset}.json", "w", encoding="utf-8") as f:
            f.write(head)
            for shard in iter_shards(layout, ((s, i) for s, i in keys if s == subset)):
                desc = {"id": shard["id"], "annotations": shard.get("annotations", []),
                        "attr": {k: shard[k] for k in ("gt", "pred", "correct", "note")
                                 if shard.get(k) is not None}}
                if shard.get("image"):
                    desc["image"] = {"path": shard["image"], "size": shard["size"]}
                f.write(("" if not counts[subset] else ",\n") + json.dumps(desc))
                counts[subset] += 1
            f.write("\n]}\n")
    stale = {p.stem for p in layout.annotations.glob("*.json")} - set(subsets)
    for name in stale:  # subsets of an older selection no longer in this run
        (layout.annotations / f"{name}.json").unlink(missing_ok=True)
    return counts


def metric_names(layout: RunLayout, keys: list[tuple[str, str]]) -> list[str]:
    skip = {"label", "role", "score", "heatmap", "overlay"}
    names: dict[str, None] = {}
    for shard in iter_shards(layout, keys):
        for t in shard.get("targets", []):
            names.update(dict.fromkeys(k for k in t if k not in skip))
    return list(names)


def write_metrics_csv(layout: RunLayout, keys: list[tuple[str, str]], metrics: list[str]) -> int:
    """One row per explained target (an item with none gets one row with a note)."""
    rows = 0
    with atomic_open(layout.root / "metrics.csv", "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(ITEM_COLUMNS + metrics + ["heatmap", "overlay", "note"])
        for shard in iter_shards(layout, keys):
            base = [shard["subset"], shard["id"], "|".join(shard.get("gt") or []),
                    shard.get("pred") or "", _tri(shard.get("correct"))]
            targets = shard.get("targets") or [{}]
            for t in targets:
                out.writerow(base + [t.get("label", ""), t.get("role", ""),
                                     _num(t.get("score"))]
                             + [_num(t.get(m)) for m in metrics]
                             + [t.get("heatmap", ""), t.get("overlay", ""),
                                shard.get("note") or ""])
                rows += 1
    return rows


def _tri(value) -> str:
    return "" if value is None else str(bool(value)).lower()


def _num(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
