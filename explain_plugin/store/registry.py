"""The project's record of its explanation runs: ``.datumaro/explanations.yml``.

Not a section of ``.datumaro/config.yml``: Datumaro's own ProjectConfig (0.1 ..
1.11) refuses unknown keys ("schema mismatch: unknown key"), so a section there
would stop Datumaro from opening the project. A file of its own beside it is
ignored by Datumaro and read here by ``datum project info`` and ``datum explain
--list / --remove``.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from explain_plugin.errors import CliError
from explain_plugin.store.layout import check_run_name, inside

RUNS_DIR = "explanations"
REGISTRY = Path(".datumaro", "explanations.yml")


def default_run_dir(project, name: str) -> Path:
    return project.root / RUNS_DIR / check_run_name(name)


def load_runs(project) -> dict[str, dict[str, Any]]:
    from explain_plugin.project.config import load_yaml

    path = project.root / REGISTRY
    if not path.is_file():
        return {}
    runs = load_yaml(path).get("runs") or {}
    if not isinstance(runs, dict):
        raise CliError(f"malformed {path}: 'runs' must be a mapping; fix or delete the file")
    return runs


def _save_runs(project, runs: dict[str, dict[str, Any]]) -> None:
    from explain_plugin.project.config import dump_yaml

    dump_yaml(project.root / REGISTRY, {"format_version": 1, "runs": runs})


def record_run(project, name: str, run_dir: Path, entry: dict[str, Any]) -> bool:
    """Record (or update) a run kept inside the project; runs written elsewhere with -o
    are not recorded."""
    if not inside(project.root, run_dir):
        return False
    runs = load_runs(project)
    runs[name] = {"path": Path(run_dir).resolve().relative_to(project.root).as_posix(),
                  **entry}
    _save_runs(project, runs)
    return True


def list_runs(project) -> list[str]:
    lines = []
    for name, run in load_runs(project).items():
        run = run if isinstance(run, dict) else {}
        lines.append(f"  '{name}':")
        for key in ("path", "method", "model", "target", "status", "items", "targets",
                    "finished"):
            if run.get(key) is not None:
                lines.append(f"    {key}: {run[key]}")
    return lines


def remove_run(project, name: str) -> Path:
    """Forget a run and delete its folder (only ever under the project's explanations/)."""
    check_run_name(name)
    runs = load_runs(project)
    if name not in runs:
        known = ", ".join(sorted(runs)) or "none"
        raise CliError(f"unknown explanation run '{name}' (runs: {known}): "
                       "'datum explain --list' lists them")
    rel = (runs[name] or {}).get("path") or f"{RUNS_DIR}/{name}"
    path = (project.root / rel).resolve()
    if not inside(project.root / RUNS_DIR, path):
        raise CliError(f"run '{name}' points at '{rel}', outside the project's "
                       f"{RUNS_DIR}/ folder: refusing to delete it; fix {REGISTRY} by hand")
    del runs[name]
    _save_runs(project, runs)
    # Rename first, then delete: an interrupted delete leaves no half-run under the name.
    if path.exists():
        trash = path.with_name(f".{path.name}.removing")
        shutil.rmtree(trash, ignore_errors=True)
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    return path
