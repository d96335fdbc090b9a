"""One ``datum explain`` run: project -> model -> launcher -> method -> writer.

A dataset target (the project, a source, ``PATH:FORMAT``) goes to ``dataset_run``;
a single image (``-t image.png``) is explained here into loose files and ``run.json``,
which a rerun of the same command finds done.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from explain_plugin.errors import CliError


def run_explain(method_cls: type, method_params: dict[str, Any], *, project_dir: str,
                model_name: str, target_option: str | None, target: str | None,
                output_dir: str | None, overwrite: bool, subsets=(), filter_expr=None,
                ids=None, limit=None, run_name=None, quiet=False, executor=None, address=None,
                workers=None, cpus_per_worker=None) -> Path:
    from explain_plugin.api import item_info, run_method
    from explain_plugin.models import load_launcher
    from explain_plugin.project import Project
    from explain_plugin.targets import item_image, load_target
    from explain_plugin.writers.images import ImageWriter, map_info
    from explain_plugin.writers.manifest import RunManifest

    if target_option and target and target_option != target:
        raise CliError(f"two targets given ('{target_option}' and '{target}'): give one")
    target_name = target_option or target or "project"
    project = Project.open(project_dir)
    model_entry = project.model(model_name)
    resolved = load_target(project, target_name)
    if resolved.image_path is None:
        from explain_plugin.dataset_run import RunRequest, run_dataset
        from explain_plugin.executors import executor_spec
        from explain_plugin.selection import Selection, parse_ids

        selection = Selection(tuple(subsets or ()), filter_expr, tuple(parse_ids(ids)), limit)
        spec = executor_spec(executor, address, workers, str(project.root.resolve()),
                             cpus_per_worker)
        return run_dataset(RunRequest(method_cls, method_params, model_name, target_name,
                                      selection, run_name, output_dir, overwrite, quiet,
                                      executor=spec),
                           project, resolved.dataset)
    if executor not in (None, "local"):
        raise CliError("--executor applies to dataset runs; explain a single image without it")

    identity = {
        "method": method_cls.name,
        "model": {"name": model_name, **model_entry},
        "target": str(resolved.image_path.resolve()),
        "parameters": {k: v for k, v in sorted(method_params.items())
                       if k not in method_cls.presentation_options},
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    run_id = f"{method_cls.name}-{model_name}-{digest.hexdigest()[:8]}"
    out_dir = Path(output_dir) if output_dir else project.root / "explanations" / run_id
    manifest = RunManifest.open(out_dir, {**identity, "run_id": run_id}, restart=overwrite,
                                total=len(resolved.dataset))

    launcher = load_launcher(project, model_name)
    method = method_cls(**method_params)
    writer = ImageWriter(out_dir)
    display = None
    started = time.perf_counter()
    explained = skipped = 0
    for item in resolved.dataset:
        key = f"{item.subset}/{item.id}" if item.subset and item.subset != "default" else item.id
        if manifest.done(key):
            skipped += 1
            continue
        stem = resolved.image_path.stem
        image = item_image(item)

        def on_snapshot(snap):
            nonlocal display
            if snap.save and not snap.final:
                writer.write_snapshot(stem, image, snap)
            if snap.show:
                display = display or _Display()
                display.show(image, snap)

        with _progress_bar(key) as update:
            result = run_method(method, launcher, image, progress=update,
                                item=item_info(item, resolved.dataset), on_snapshot=on_snapshot)
        files = result.save(out_dir, stem)
        for note in result.notes:
            click.echo(f"{key}: {note}", err=True)
        manifest.record(key, {**result.record(files), "map": map_info(image.shape[:2])})
        explained += 1
    manifest.finish({"seconds": time.perf_counter() - started})
    note = f" ({skipped} already done)" if skipped else ""
    click.echo(f"Explained {explained} item(s){note}; results saved to '{out_dir}'")
    return out_dir


class _progress_bar:
    """Samples done and ETA on a terminal; silent otherwise."""

    def __init__(self, key: str, total: int | None = None):
        self.key, self.total, self.bar = key, total, None

    def __enter__(self):
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=str(self.key), unit="mask", leave=False)

        def update(done: int, total: int) -> None:
            if self.bar is not None:
                self.bar.total = total
                self.bar.update(done - self.bar.n)
        return update

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


class _Display:
    """Shows maps as they build, where OpenCV has a GUI; says so once where it has none."""

    def __init__(self):
        import cv2

        info = cv2.getBuildInformation()
        gui = next((line for line in info.splitlines() if line.strip().startswith("GUI:")), "")
        self.enabled = bool(gui) and "NONE" not in gui.upper()
        if not self.enabled:
            click.echo("--display: this OpenCV build has no GUI support (headless); "
                       "use --progressive to save the intermediate maps instead", err=True)

    def show(self, image, snap) -> None:
        if not self.enabled:
            return
        import cv2

        from explain_plugin.writers.images import overlay, upsample

        sal = upsample(snap.maps[:1], *image.shape[:2])[0]
        cv2.imshow("datum explain", overlay(image, sal, snap.targets[0]))
        cv2.waitKey(1)
