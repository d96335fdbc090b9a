"""A Datumaro project on disk: its sources, its models, and datasets built from them."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

from explain_plugin.errors import CliError
from explain_plugin.names import check_inside, check_name, remove_tree
from explain_plugin.project import config as cfg


def next_name(taken: Iterable[str], prefix: str, start: int) -> str:
    """``prefix-N`` with the smallest N >= start not taken (Datumaro's naming)."""
    taken = set(taken)
    n = start
    while f"{prefix}-{n}" in taken:
        n += 1
    return f"{prefix}-{n}"


class Project:
    """A project of format v2 (read and written) or v1 (read, models written back as v1)."""

    def __init__(self, root: Path, version: int, config: dict, tree: dict | None):
        self.root = root
        self.version = version
        self._config = config
        self._tree = tree

    # Opening and creating ------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike = ".") -> "Project":
        root = Path(path).resolve()
        version = cfg.detect_version(root)
        if version is None:
            raise CliError(
                f"no Datumaro project at '{path}': pass the project folder with -p DIR, "
                "or create one with 'datum project create'"
            )
        if version == 2:
            config_path = root / cfg.V2_CONFIG
            config = cfg.load_yaml(config_path) if config_path.is_file() else {"format_version": 2}
            tree_path = root / cfg.V2_TREE_CONFIG
            tree = cfg.load_yaml(tree_path) if tree_path.is_file() else cfg.new_v2_tree()
            cfg.check_schema(config, root / cfg.V2_CONFIG, ("models",))
            cfg.check_schema(tree, tree_path, ("sources",))
            cls._check_version(config, root / cfg.V2_CONFIG, 2)
            cls._check_version(tree, tree_path, 2)
        else:
            config = cfg.load_yaml(root / cfg.V1_CONFIG)
            cfg.check_schema(config, root / cfg.V1_CONFIG, ("models", "sources"))
            cls._check_version(config, root / cfg.V1_CONFIG, 1)
            tree = None
        for section in ("models", "sources"):
            holder = config if (section == "models" or version == 1) else tree
            value = holder.get(section)
            if value is None:
                holder[section] = {}
            elif not isinstance(value, dict):
                raise CliError(f"malformed project config in {root}: '{section}' must be a mapping")
        return cls(root, version, config, tree)

    @staticmethod
    def _check_version(data: dict, path: Path, expected: int) -> None:
        found = data.get("format_version", expected)
        if found != expected:
            raise CliError(
                f"unsupported project format_version {found!r} in {path}: "
                f"this file must say format_version: {expected}"
            )

    @classmethod
    def create(cls, path: str | os.PathLike, overwrite: bool = False) -> "Project":
        """Write a new, empty v2 project (no git or dvc, which Datumaro made optional)."""
        root = Path(path).resolve()
        env_dir = root / cfg.ENV_DIR
        if env_dir.exists():
            if not overwrite:
                raise CliError(
                    f"a project already exists at '{path}': use --overwrite to replace it"
                )
            remove_tree(env_dir, root, "project folder")
        root.mkdir(parents=True, exist_ok=True)
        project = cls(root, 2, {"format_version": 2, "models": {}}, cfg.new_v2_tree())
        project.save()
        return project

    def save(self) -> None:
        if self.version == 2:
            cfg.dump_yaml(self.root / cfg.V2_TREE_CONFIG, self._tree)
            cfg.dump_yaml(self.root / cfg.V2_CONFIG, self._config)
        else:
            cfg.dump_yaml(self.root / cfg.V1_CONFIG, self._config)

    @property
    def tree_config(self) -> dict:
        """The v2 working tree config (sources, build_targets), as stored."""
        if self._tree is None:
            raise CliError(f"project at {self.root} is a Datumaro 0.1 (v1) project: convert it "
                           "with 'datum project migrate -o DIR'")
        return self._tree

    # Models --------------------------------------------------------------
    @property
    def models(self) -> dict[str, dict[str, Any]]:
        """name -> {launcher, options}, as stored."""
        return self._config["models"]

    def _config_file(self, section: str) -> Path:
        if self.version == 1:
            return self.root / cfg.V1_CONFIG
        return self.root / (cfg.V2_CONFIG if section == "models" else cfg.V2_TREE_CONFIG)

    def _check_stored_name(self, name: str, what: str) -> str:
        """A name from the command line or the config, before it becomes a path."""
        section = "models" if what == "model" else "sources"
        fix = "use a plain name"
        if name in getattr(self, section):
            fix = f"rename it in {self._config_file(section)}"
        return check_name(name, what, fix)

    def model(self, name: str) -> dict[str, Any]:
        self._check_stored_name(name, "model")
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise CliError(
                f"unknown model '{name}' (models: {known}): add it with 'datum model add'"
            ) from None

    def check_model_options(self, name: str, parser, options: dict) -> None:
        """Stored options of the types the launcher's parser declares (one-line errors)."""
        cfg.check_launcher_options(parser, options, f"models.{name}.options",
                                   self._config_file("models"))

    def model_dir(self, name: str) -> Path:
        """Where ``--copy`` puts a model's files."""
        self._check_stored_name(name, "model")
        return self.root / cfg.MODELS_DIR / name

    def model_base_dir(self, name: str) -> Path:
        """The folder a model's relative paths are resolved against."""
        model_dir = self.model_dir(name)
        return model_dir if model_dir.is_dir() else self.root

    def next_model_name(self) -> str:
        return next_name(self.models, "model", 0)

    def add_model(self, name: str, launcher: str, options: dict[str, Any]) -> None:
        check_name(name, "model")
        if name in self.models:
            raise CliError(f"model '{name}' already exists: choose another name with -n")
        self.models[name] = {"launcher": launcher, "options": options}

    def remove_model(self, name: str) -> None:
        self.model(name)
        del self.models[name]

    def remove_model_files(self, name: str) -> None:
        """Delete a model's copied files (only ever inside .datumaro/models)."""
        remove_tree(self.model_dir(name), self.root / cfg.MODELS_DIR, f"model '{name}' folder")

    # Sources -------------------------------------------------------------
    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        """name -> {format, options, path, url, ...}, as stored."""
        holder = self._tree if self.version == 2 else self._config
        return holder["sources"]

    def source(self, name: str) -> dict[str, Any]:
        self._check_stored_name(name, "source")
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.sources)) or "none"
            raise CliError(
                f"unknown source '{name}' (sources: {known}): "
                "import one with 'datum project import'"
            ) from None

    def source_dir(self, name: str) -> Path:
        """The folder holding a source's data inside the project."""
        self._check_stored_name(name, "source")
        return self.root / name if self.version == 2 else self.root / "sources" / name

    def source_location(self, name: str) -> Path:
        """The file or folder a source's dataset is imported from."""
        source = self.source(name)
        if self.version == 2:
            rel = source.get("path") or ""
            if not isinstance(rel, str):
                raise CliError(f"source '{name}': 'path' must be a string in "
                               f"{self._config_file('sources')}, got {type(rel).__name__}")
            location = self.source_dir(name) / rel
            check_inside(location, self.source_dir(name), f"source '{name}' path")
            return location
        copied = self.source_dir(name)
        if copied.exists():
            return copied
        url = Path(source.get("url") or "")
        if url.is_absolute():
            return url
        return self.root / url if (self.root / url).exists() else Path.cwd() / url

    def next_source_name(self) -> str:
        taken = list(self.sources) + [p.name for p in self.root.iterdir()]
        return next_name(taken, "source", 1)

    def import_source(
        self, path: str | os.PathLike, fmt: str, name: str | None = None,
        options: dict[str, Any] | None = None, rpath: str | None = None, check: bool = True,
    ) -> str:
        """Copy a dataset into the project as a new source; return its name.

        The copy is made in a temporary folder, checked by importing it, and
        renamed into place only then: a failed import leaves the project as it was.
        """
        if self.version != 2:
            raise CliError(
                f"project at {self.root} is a Datumaro 0.1 (v1) project: importing sources "
                "is supported for v2 projects; create one with 'datum project create'"
            )
        src = Path(path).resolve()
        if not src.exists():
            raise CliError(f"dataset path '{path}' does not exist: check the path")
        name = check_name(name, "source") if name is not None else self.next_source_name()
        if name in self.sources or name in ("project", cfg.ENV_DIR):
            raise CliError(f"source '{name}' already exists: choose another name with -n")
        target = self.source_dir(name)
        if target.exists():
            raise CliError(f"'{target}' already exists in the project: choose another name with -n")
        options = dict(options or {})
        if src == self.root or self.root in src.parents:
            raise CliError(f"'{path}' is inside the project: use 'datum project add' for a "
                           "folder in the project root")
        if rpath:
            rpath = _checked_rpath(src, rpath, path)

        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
        try:
            if src.is_dir():
                data_dir = staging / "data"
                shutil.copytree(src, data_dir)
                rel = rpath or ""
            else:
                data_dir = staging / "data"
                data_dir.mkdir()
                shutil.copy2(src, data_dir / src.name)
                rel = src.name
            if check:
                dataset = import_dataset(data_dir / rel, fmt, options, what=f"'{path}'")
                len(dataset)  # force loading: a broken dataset fails here, not later
            os.replace(data_dir, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

        self.sources[name] = {
            "format": fmt, "hash": "", "options": options, "path": rel, "url": str(src),
        }
        self._tree.setdefault("build_targets", {})[name] = cfg.source_build_target()
        self._tree["build_targets"].setdefault("project", {"stages": [cfg.root_stage("project")]})
        return name

    def add_source(self, path: str | os.PathLike, fmt: str, options: dict[str, Any] | None = None,
                   rpath: str | None = None, check: bool = True) -> str:
        """Register a folder already in the project root as a source (1.11's ``add``)."""
        if self.version != 2:
            raise CliError(f"project at {self.root} is a Datumaro 0.1 (v1) project: adding "
                           "sources is supported for v2 projects")
        src = Path(path).resolve()
        if not src.is_dir():
            raise CliError(f"source folder '{path}' does not exist: check the path")
        if src.parent != self.root:
            raise CliError(f"'{path}' is not a folder in the project root {self.root}: "
                           "use 'datum project import' to copy a dataset from elsewhere")
        name = src.name
        if name in self.sources or name.startswith(".") or name == "project":
            raise CliError(f"source '{name}' already exists or is a reserved name")
        rel = _checked_rpath(src, rpath, path) if rpath else ""
        options = dict(options or {})
        if check:
            len(import_dataset(src / rel, fmt, options, what=f"'{path}'"))
        self.sources[name] = {"format": fmt, "hash": "", "options": options, "path": rel,
                              "url": str(src)}
        self._tree.setdefault("build_targets", {})[name] = cfg.source_build_target()
        self._tree["build_targets"].setdefault("project", {"stages": [cfg.root_stage("project")]})
        return name

    def remove_source(self, name: str, keep_data: bool = False, force: bool = False) -> None:
        if force and name not in self.sources:
            return
        self.source(name)
        del self.sources[name]
        if self.version == 2:
            self._tree.get("build_targets", {}).pop(name, None)
        if not keep_data:
            remove_tree(self.source_dir(name), self.root, f"source '{name}' folder")

    # Datasets ------------------------------------------------------------
    def make_dataset(self, target: str = "project"):
        """A ``datumaro.Dataset`` for ``project``, a source name or ``PATH:FORMAT``."""
        if target in self.sources:
            source = self.sources[target]
            return import_dataset(
                self.source_location(target), source.get("format"),
                source.get("options") or {}, what=f"source '{target}'",
            )
        if target == "project":
            from datumaro import Dataset

            if not self.sources:
                raise CliError(
                    f"project at {self.root} has no sources: import one with 'datum project import'"
                )
            parts = [self.make_dataset(name) for name in self.sources]
            return parts[0] if len(parts) == 1 else Dataset.from_extractors(*parts)
        return parse_path_target(target)


def _checked_rpath(src: Path, rpath: str, what) -> str:
    """``rpath`` relative to ``src``, which it must name an existing path inside of."""
    full = (src / rpath).resolve()
    if full != src and src not in full.parents:
        raise CliError(f"-r/--path '{rpath}' is outside the dataset '{what}': give a path "
                       "inside it")
    if not full.exists():
        raise CliError(f"-r/--path '{rpath}' does not exist in '{what}': check the path")
    return full.relative_to(src).as_posix()


def parse_path_target(target: str):
    """A dataset from ``PATH:FORMAT`` (or a bare PATH, format detected)."""
    path, sep, fmt = target.rpartition(":")
    if not sep or not path:
        path, fmt = target, None
    if not Path(path).exists():
        raise CliError(
            f"unknown target '{target}': no such file or folder, and not 'project' or a "
            "source name; pass an image path, 'project', a source name or PATH:FORMAT"
        )
    return import_dataset(Path(path), fmt, {}, what=f"'{path}'")


def import_dataset(path: Path, fmt: str | None, options: dict[str, Any], what: str):
    """``Dataset.import_from`` with user-facing errors."""
    from datumaro import Dataset
    from datumaro.components.environment import Environment

    if fmt is not None and fmt not in Environment().importers:
        raise CliError(
            f"unknown dataset format '{fmt}' for {what}: 'datum format' lists the formats"
        )
    kwargs = {k: v for k, v in options.items() if v is not None}
    from explain_plugin.translate import quiet_stderr, root_reason

    try:
        with quiet_stderr():
            return Dataset.import_from(str(path), fmt, **kwargs)
    except Exception as e:  # datumaro raises many kinds; the user needs one line and the cause
        raise CliError(f"cannot import {what} as '{fmt or 'auto'}' from {path} "
                       f"(Datumaro says: {root_reason(e)}): fix the dataset or pass the right "
                       "format") from e
