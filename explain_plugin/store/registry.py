"""The project's record of its explanation runs (``explanations:`` in its config)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from explain_plugin.errors import CliError
from explain_plugin.store.layout import check_run_name, inside

RUNS_DIR = "explanations"


def default_run_dir(project, name: str) -> Path:
    return project.root / RUNS_DIR / check_run_name(name)


def record_run(project, name: str, run_dir: Path, entry: dict[str, Any]) -> bool:
    """Record a run kept inside the project (runs written elsewhere with -o are not)."""
    if not inside(project.root, run_dir):
        return False
    project.explanations[name] = {"path": Path(run_dir).resolve().relative_to(
        project.root).as_posix(), **entry}
    project.save()
    return True


def list_runs(project) -> list[str]:
    lines = []
    for name, run in project.explanations.items():
        run = run if isinstance(run, dict) else {}
        lines.append(f"  '{name}':")
        for key in ("path", "method", "model", "target", "status", "items", "targets",
                    "finished"):
            if run.get(key) is not None:
                lines.append(f"    {key}: {run[key]}")
    return lines


def remove_run(project, name: str) -> Path:
    """Forget a run and delete its folder (only ever inside the project)."""
    check_run_name(name)
    run = project.explanations.get(name)
    if run is None:
        known = ", ".join(sorted(project.explanations)) or "none"
        raise CliError(f"unknown explanation run '{name}' (runs: {known}): "
                       "'datum explain --list' lists them")
    rel = (run or {}).get("path") or f"{RUNS_DIR}/{name}"
    path = (project.root / rel).resolve()
    if not inside(project.root, path) or path == (project.root / RUNS_DIR).resolve() \
            or path.name.startswith(".datumaro") or ".datumaro" in path.relative_to(
                project.root.resolve()).parts:
        raise CliError(f"run '{name}' points at '{rel}', outside the project's runs: "
                       "refusing to delete it; edit .datumaro/config.yml by hand")
    del project.explanations[name]
    project.save()
    # Rename first, then delete: an interrupted delete leaves no half-run under the name.
    if path.exists():
        trash = path.with_name(f".{path.name}.removing")
        shutil.rmtree(trash, ignore_errors=True)
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    return path
