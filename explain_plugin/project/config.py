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


# The parts of the config files this package reads, and their types (other keys are kept).
_TYPE_NAMES = {dict: "a mapping", str: "a string", int: "an integer", list: "a list",
               type(None): "null", float: "a number", bool: "a boolean"}
_ENTRY_SCHEMAS = {
    "models": {"launcher": (str,), "options": (dict, type(None))},
    "sources": {"format": (str,), "options": (dict, type(None)), "path": (str, type(None)),
                "url": (str, type(None))},
}
_REQUIRED = {"models": ("launcher",), "sources": ("format",)}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def check_schema(data: dict, path: Path, sections: tuple[str, ...]) -> None:
    """One-line errors naming the key and the expected type, e.g.
    "models.m.options must be a mapping, got a string"."""
    def fail(key: str, expected: str, value: Any) -> None:
        raise CliError(f"{key} must be {expected}, got {_type_name(value)} (in {path}): "
                       "fix that entry of the file")

    version = data.get("format_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        fail("format_version", "an integer", version)
    for section in sections:
        entries = data.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            fail(section, "a mapping of names to entries", entries)
        for name, entry in entries.items():
            if not isinstance(name, str):
                fail(f"{section} key {name!r}", "a string name", name)
            if not isinstance(entry, dict):
                fail(f"{section}.{name}", "a mapping", entry)
            for key in _REQUIRED[section]:
                if key not in entry:
                    raise CliError(f"{section}.{name} has no '{key}' (in {path}): add it")
            for key, types in _ENTRY_SCHEMAS[section].items():
                if key in entry and not isinstance(entry[key], types):
                    fail(f"{section}.{name}.{key}", " or ".join(_TYPE_NAMES[t] for t in types),
                         entry[key])


def check_launcher_options(parser, options: dict, where: str, path: Path) -> None:
    """Stored launcher options against the types its command line parser declares, e.g.
    "models.m.options.batch_size must be an integer, got a string"."""
    types = {a.dest: a.type for a in parser._actions if a.type in (int, float)}
    for key, value in options.items():
        expected = types.get(key)
        if expected is None or value is None:
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if expected is int:
            ok = ok and float(value).is_integer()
        if not ok:
            kind = "an integer" if expected is int else "a number"
            raise CliError(f"{where}.{key} must be {kind}, got {_type_name(value)} "
                           f"(in {path}): fix that entry of the file")
