"""1.11's ``filter -p`` / ``transform -p`` on a project's working tree: each source's
data is rewritten in place (in its own format) and the step is recorded as a
build stage of the source, so ``project info``/``commit`` see it."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from explain_plugin.errors import CliError


def targets_of(project, target: str) -> list[str]:
    """The sources a working-tree target stands for ('project': all of them)."""
    if target == "project":
        if not project.sources:
            raise CliError(f"project at {project.root} has no sources: "
                           "import one with 'datum project import'")
        return list(project.sources)
    project.source(target)
    return [target]


def next_stage_name(stages: list[dict]) -> str:
    taken = {s.get("name") for s in stages}
    n = 1
    while f"stage-{n}" in taken:
        n += 1
    return f"stage-{n}"


def add_stage(project, source: str, stage_type: str, kind: str, params: dict) -> str:
    from explain_plugin.project import config as cfg

    target = project.tree_config.setdefault("build_targets", {}).setdefault(
        source, cfg.source_build_target())
    stages = target.setdefault("stages", [cfg.root_stage("source")])
    name = next_stage_name(stages)
    stages.append({"name": name, "type": stage_type, "kind": kind, "hash": "",
                   "params": _plain(params)})
    return name


def _plain(value):
    """YAML-safe copy of parsed plugin arguments (tuples, enums and paths as plain data)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "name", None) or str(value)


def rewrite_source(project, source: str, change: Callable) -> None:
    """Apply ``change(dataset) -> dataset`` to a source and save the result over its data
    in the source's format, with its media: written aside, then swapped in."""
    from datumaro.components.environment import Environment

    conf = project.source(source)
    fmt = conf.get("format")
    exporters = Environment().exporters
    if fmt not in exporters:
        raise CliError(f"source '{source}' is in format '{fmt}', which datumaro cannot write: "
                       "use -o DIR to save the result elsewhere")
    dataset = change(project.make_dataset(source))
    data_dir = project.source_dir(source)
    staging = Path(tempfile.mkdtemp(prefix=f".{source}.", dir=project.root))
    try:
        out = staging / "data"
        dataset.export(str(out), exporters[fmt], save_media=True)
        if data_dir.exists():
            os.replace(data_dir, staging / "old")
        os.replace(out, data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _rewrite_in_place(project, target: str, op, kind: str, name: str, params: dict,
                      stage: bool, apply: bool) -> list[str]:
    """Apply ``op`` to each target source's data and/or record it as a build stage."""
    names = targets_of(project, target)
    for source in names:
        if apply:
            rewrite_source(project, source, op)
        if stage:
            add_stage(project, source, kind, name, params)
    project.save()
    return names


def filter_in_place(project, target: str, expr: str, filter_args: dict,
                    stage: bool = True, apply: bool = True) -> list[str]:
    return _rewrite_in_place(project, target, lambda ds: ds.filter(expr, **filter_args),
                             "filter", "", {"expr_or_filter_func": expr, **filter_args},
                             stage, apply)


def transform_in_place(project, target: str, transform: str, params: dict,
                       stage: bool = True, apply: bool = True) -> list[str]:
    return _rewrite_in_place(project, target, lambda ds: ds.transform(transform, **params),
                             "transform", transform, params, stage, apply)
