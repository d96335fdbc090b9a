"""Reading and writing the YAML files of Datumaro projects, v1 and v2.

v2 (Datumaro 0.2 .. 1.11): ``.datumaro/config.yml`` holds the models,
``.datumaro/tree/config.yml`` the sources and build targets; source data lives
in ``<project>/<NAME>/``. v1 (0.1.x): one ``.datumaro/config.yaml`` with
sources and models; copied sources in ``sources/NAME/``.
Unknown keys are kept as they were, so a round trip loses nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from explain_plugin.atomic import atomic_write_text
from explain_plugin.errors import CliError

ENV_DIR = ".datumaro"
V2_CONFIG = Path(ENV_DIR, "config.yml")
V2_TREE_CONFIG = Path(ENV_DIR, "tree", "config.yml")
V1_CONFIG = Path(ENV_DIR, "config.yaml")
MODELS_DIR = Path(ENV_DIR, "models")


def detect_version(root: Path) -> int | None:
    """2 or 1 for a project at ``root``, None where there is none."""
    if (root / V2_CONFIG).is_file() or (root / V2_TREE_CONFIG).is_file():
        return 2  # 1.11 writes config.yml only once a model is added
    if (root / V1_CONFIG).is_file():
        return 1
    return None


def load_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CliError(
            f"malformed YAML in {path}{where}: fix or restore the file "
            "(it is the project's configuration)"
        ) from e
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CliError(f"malformed project config {path}: expected a mapping at the top level")
    return data


def dump_yaml(path: Path, data: dict) -> None:
    import yaml

    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def new_v2_tree() -> dict[str, Any]:
    return {
        "format_version": 2,
        "sources": {},
        "build_targets": {"project": {"stages": [root_stage("project")]}},
    }


def root_stage(kind: str) -> dict[str, Any]:
    return {"name": "root", "type": kind, "kind": "", "hash": "", "params": {}}


def source_build_target() -> dict[str, Any]:
    return {"parents": [], "stages": [root_stage("source")]}
