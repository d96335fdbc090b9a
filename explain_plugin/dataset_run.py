"""A dataset-wide explanation run, saved into the project as a Datumaro dataset.

The run's identity, folder, lock and manifest are set up here; the items go
through ``item_pipeline.ItemPipeline`` (or an executor's pipeline), each leaving
one shard; at the end the shards become ``annotations/*.json``, ``metrics.csv``
and ``report.html``, and the project's registry records the run.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from explain_plugin.errors import CliError
from explain_plugin.item_pipeline import ItemPipeline
from explain_plugin.selection import Selection, SelectionStats, select_items


@dataclass
class RunRequest:
    method_cls: type
    method_params: dict[str, Any]
    model_name: str
    target_name: str
    selection: Selection
    run_name: str | None = None
    output_dir: str | None = None
    overwrite: bool = False
    quiet: bool = False
    executor: Any = None  # explain_plugin.executors.ExecutorSpec; None: this process


def params_identity(req: RunRequest, model_entry: dict) -> dict[str, Any]:
    return {
        "method": req.method_cls.name,
        "model": {"name": req.model_name, **model_entry},
        "target": req.target_name,
        "parameters": {k: v for k, v in sorted(req.method_params.items())
                       if k not in req.method_cls.presentation_options},
    }


def run_dataset(req: RunRequest, project, dataset) -> Path:
    from explain_plugin.item_targets import dataset_label_names, parse_target_spec
    from explain_plugin.store import registry
    from explain_plugin.store.item_writer import ItemWriter
    from explain_plugin.store.layout import RunLayout, check_run_name
    from explain_plugin.writers.manifest import RunFolder

    identity = params_identity(req, project.model(req.model_name))
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()
                            ).hexdigest()[:16]
    name = check_run_name(req.run_name or f"{req.method_cls.name}-{req.model_name}-{digest[:8]}")
    out_dir = Path(req.output_dir) if req.output_dir else registry.default_run_dir(project, name)
    spec = parse_target_spec(req.method_params.get("targets"))
    layout = RunLayout(out_dir)
    done: set[tuple[str, str]] = set()
    work: ItemPipeline | None = None
    # The folder's lock before anything is read or cleared: a second run refuses at once.
    # On an error or Ctrl-C it stays held until the CLI has said how far the run got
    # (``writers.manifest.close_all``).
    folder = RunFolder(out_dir, None, lambda: len(done) + (work.written if work else 0))
    manifest = _open_manifest(layout, {**identity, "digest": digest}, req.overwrite)
    writer = ItemWriter(layout, req.method_cls.name, digest)

    # One pass over the selection: how many items, and which are done already.
    stats = SelectionStats()
    keys: list[tuple[str, str]] = []
    for item in select_items(dataset, req.selection, stats):
        keys.append((item.subset or "default", item.id))
        if writer.finished(*keys[-1]):
            done.add(keys[-1])
    folder.total = len(keys)
    manifest.update(name=name, selection=req.selection.describe(), status="running",
                    items_selected=len(keys), skipped_no_image=stats.skipped_no_image)
    manifest.save()
    entry = {"method": req.method_cls.name, "model": req.model_name,
             "target": req.target_name, "items": len(keys)}
    registry.record_run(project, name, out_dir, {**entry, "status": "running"})
    if stats.skipped_no_image:
        example = ", ".join(stats.skipped_ids)
        click.echo(f"Skipping {stats.skipped_no_image} item(s) without an image "
                   f"(e.g. {example})", err=True)

    launcher = None
    if len(done) < len(keys) or not manifest.get("labels"):
        from explain_plugin.models import load_launcher

        launcher = load_launcher(project, req.model_name)
        manifest["labels"] = [c.name for c in launcher.categories]
        manifest.save()
    labels = manifest["labels"]
    started = time.perf_counter()
    make = req.executor.pipeline if req.executor is not None else ItemPipeline
    work = make(req, launcher, writer, spec, dataset_label_names(dataset), labels)
    explained = work.run(dataset, done, total=len(keys))
    seconds = time.perf_counter() - started

    summary = _assemble(layout, keys, labels, manifest, req, name, stats)
    status = "incomplete" if work.unreadable else "complete"
    manifest.update(status=status, finished=_now(),
                    times={"seconds": round(seconds, 3),
                           "items_per_s": round(explained / seconds, 3) if seconds else None},
                    counts={"explained": explained, "reused": len(done),
                            "unreadable": len(work.unreadable), **summary["counts"]},
                    items=summary["items"])
    manifest.save()
    registry.record_run(project, name, out_dir, {
        **entry, "status": status, "items": summary["counts"]["items"],
        "targets": summary["counts"]["targets"], "finished": manifest["finished"]})
    folder.close()
    note = f" ({len(done)} already done)" if done else ""
    click.echo(f"Explained {explained} item(s){note}; run '{name}' saved to '{out_dir}'")
    if work.unreadable:
        raise CliError(
            f"{len(work.unreadable)} item(s) not explained: {work.unreadable[0]}; then rerun "
            f"the same command to finish run '{name}' (the other items are saved)")
    return out_dir


class _Manifest(dict):
    def __init__(self, path: Path, data: dict):
        super().__init__(data)
        self.path = path

    def save(self) -> None:
        from explain_plugin.atomic import atomic_write_text

        atomic_write_text(self.path, json.dumps(self, indent=2, default=str) + "\n")


def _open_manifest(layout, identity: dict, overwrite: bool) -> _Manifest:
    from explain_plugin.writers.manifest import package_versions

    old = None
    if layout.manifest.is_file():
        try:
            old = json.loads(layout.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
    from explain_plugin.run_lock import LOCK_NAME

    ours = layout.root.exists() and any(p.name != LOCK_NAME for p in layout.root.iterdir())
    if ours and not overwrite:
        if not isinstance(old, dict) or old.get("digest") != identity["digest"]:
            raise CliError(f"'{layout.root}' holds another run (different model, target or "
                           "parameters): choose another --name / -o, or pass --overwrite")
    if overwrite and old is not None:  # our run (it has run.json): clear what we wrote
        import shutil

        for sub in ("items", "annotations", "images", "heatmaps", "outputs"):
            shutil.rmtree(layout.root / sub, ignore_errors=True)
        for name in ("metrics.csv", "report.html"):
            (layout.root / name).unlink(missing_ok=True)
        old = None
    data = old if isinstance(old, dict) else {**identity, "created": _now()}
    data["versions"] = package_versions()
    layout.root.mkdir(parents=True, exist_ok=True)
    return _Manifest(layout.manifest, data)


def _assemble(layout, keys, labels, manifest, req: RunRequest, name: str,
              stats: SelectionStats) -> dict[str, Any]:
    from explain_plugin.store.assemble import (
        iter_shards, metric_names, write_dataset, write_metrics_csv,
    )
    from explain_plugin.store.report import write_report

    metrics = metric_names(layout, keys)
    infos = {"explanation_run": name, "method": req.method_cls.name, "model": req.model_name,
             "target": req.target_name}
    per_subset = write_dataset(layout, keys, labels, infos)
    write_metrics_csv(layout, keys, metrics)
    n_targets = correct = judged = 0
    items: dict[str, Any] = {}
    for shard in iter_shards(layout, keys):
        n_targets += len(shard.get("targets") or [])
        items[shard["key"]] = shard.get("record") or {}
        if shard.get("correct") is not None:
            judged += 1
            correct += bool(shard["correct"])
    summary = {"method": req.method_cls.name, "model": req.model_name,
               "target": req.target_name, "run": name, "skipped": stats.skipped_no_image,
               "accuracy": (correct / judged) if judged else None}
    write_report(layout.root / "report.html", f"Explanations: {name}", summary, metrics,
                 iter_shards(layout, keys))
    return {"counts": {"items": sum(per_subset.values()), "targets": n_targets,
                       "subsets": per_subset, "skipped_no_image": stats.skipped_no_image},
            "items": items}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
