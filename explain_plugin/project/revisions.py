"""Project history as Datumaro 1.11 kept it: git commits of the project tree,
DVC objects for source data.

Layout (1.11's): the working tree config is ``.datumaro/tree/config.yml`` and a
committed source's DVC file is ``.datumaro/tree/sources/NAME/source.dvc``. A
commit holds that tree at its top level plus DVC's and git's own small files
(:data:`EXTRA_FILES`); models (``.datumaro/config.yml``) are not versioned.
Revision trees are materialized in ``.datumaro/cache/XX/YYYY``, source data at
a revision in ``.datumaro/cache/<md5 XX>/<md5 rest>``, both read-only copies.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from explain_plugin.errors import CliError
from explain_plugin.project import config as cfg
from explain_plugin.project.vcs import Dvc, Git, dir_hash, materialize_object

TREE_DIR = Path(cfg.ENV_DIR, "tree")
CACHE_DIR = Path(cfg.ENV_DIR, "cache")
TMP_DIR = Path(cfg.ENV_DIR, "tmp")
EXTRA_FILES = (".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore",
               ".datumaro/.gitignore")
MAIN_TARGET = "project"


def source_dvcfile(tree_dir: Path, name: str) -> Path:
    return tree_dir / "sources" / name / "source.dvc"


def head_hash(tree: dict, source: str) -> str:
    """The data hash of a source's last stage (Datumaro kept it there)."""
    stages = ((tree.get("build_targets") or {}).get(source) or {}).get("stages") or []
    if stages:
        return str(stages[-1].get("hash") or "")
    return str(((tree.get("sources") or {}).get(source) or {}).get("hash") or "")


def diff_trees(old: dict, new: dict) -> dict[str, str]:
    """{target: added|removed|modified} between two tree configs."""
    old_t = old.get("build_targets") or {}
    new_t = new.get("build_targets") or {}
    changes = {}
    for name in sorted(set(old_t) | set(new_t)):
        if name == MAIN_TARGET:
            continue
        if name not in old_t:
            changes[name] = "added"
        elif name not in new_t:
            changes[name] = "removed"
        elif old_t[name] != new_t[name]:
            changes[name] = "modified"
    return changes


def _ignore(path: Path, entries: list[str]) -> None:
    """Add lines to an ignore file (kept once each)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    for entry in entries:
        if entry not in lines:
            lines.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


class History:
    """Commits, checkouts and revisions of one project."""

    def __init__(self, project):
        if project.version != 2:
            raise CliError(f"project at {project.root} is a Datumaro 0.1 (v1) project, which has "
                           "no history: convert it with 'datum project migrate -o DIR'")
        self.project = project
        self.root: Path = project.root
        self.git = Git(self.root)
        self.dvc = Dvc(self.root)

    # Setting up ------------------------------------------------------------
    def init_git(self) -> None:
        """git repository, ignore files and an initial commit, as 1.11's create made."""
        if self.git.initialized:
            return
        self.git.init()
        _ignore(self.root / cfg.ENV_DIR / ".gitignore", ["/cache/", "/tmp/"])
        _ignore(self.root / ".gitignore", [])
        self._commit_tree("Initial commit")

    def _ready_to_commit(self) -> None:
        Dvc.require()
        Git.require()
        if self.git.rev_parse("HEAD") is None and not self.git.initialized:
            self.init_git()
        if not self.dvc.initialized:
            self.dvc.init()
            _ignore(self.root / ".dvcignore",
                    [f"/{CACHE_DIR.as_posix()}", f"/{TREE_DIR.as_posix()}"])
            _ignore(self.root / ".dvc" / ".gitignore", ["/plots"])

    @contextmanager
    def _tmp_dir(self) -> Iterator[Path]:
        base = self.root / TMP_DIR
        base.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(dir=base))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    # Revisions ---------------------------------------------------------------
    def require_history(self) -> None:
        if not self.git.initialized or self.git.head is None:
            raise CliError(f"project at {self.root} has no history yet: "
                           "make a revision with 'datum project commit -m MESSAGE'")

    def resolve(self, rev: str) -> str:
        self.require_history()
        return self.git.resolve(rev)

    def tree_dir(self, sha: str) -> Path:
        """The files of commit ``sha`` (a cached copy, written once)."""
        path = self.root / CACHE_DIR / sha[:2] / sha[2:]
        if not path.is_dir():
            with self._tmp_dir() as tmp:
                self.git.export_tree(sha, tmp / "tree")
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / "tree", path)
        return path

    def tree_at(self, rev: str) -> dict:
        """The tree config (sources, build targets) of revision ``rev``."""
        conf = self.tree_dir(self.resolve(rev)) / "config.yml"
        tree = cfg.load_yaml(conf) if conf.is_file() else cfg.new_v2_tree()
        tree.setdefault("sources", {})
        tree.setdefault("build_targets", {})
        return tree

    def source_data_at(self, tree: dict, source: str, rev: str) -> Path:
        """Where a source's data of a revision can be read (materialized from DVC's cache)."""
        obj = head_hash(tree, source)
        if not obj:
            raise CliError(f"source '{source}' has no saved data in revision '{rev}' "
                           "(it was not committed)")
        if len(obj) != 32 or any(c not in "0123456789abcdef" for c in obj):
            raise CliError(f"source '{source}' of revision '{rev}' has a malformed data hash "
                           f"'{obj}' (expected 32 hex digits)")
        return materialize_object(self.root, obj, self.root / CACHE_DIR / obj[:2] / obj[2:])

    def dataset_at(self, rev: str, target: str = MAIN_TARGET):
        """A datumaro Dataset of ``target`` (a source or 'project') at revision ``rev``."""
        from explain_plugin.project.project import import_dataset

        tree = self.tree_at(rev)
        sources = tree["sources"]
        if target == MAIN_TARGET:
            names = list(sources)
            if not names:
                raise CliError(f"revision '{rev}' of the project has no sources")
        elif target in sources:
            names = [target]
        else:
            known = ", ".join(sorted(sources)) or "none"
            raise CliError(f"unknown source '{target}' in revision '{rev}' (sources: {known})")
        parts = []
        for name in names:
            source = sources[name]
            location = self.source_data_at(tree, name, rev) / (source.get("path") or "")
            parts.append(import_dataset(location, source.get("format"),
                                        source.get("options") or {},
                                        what=f"source '{name}' at revision '{rev}'"))
        if len(parts) == 1:
            return parts[0]
        from datumaro import Dataset

        return Dataset.from_extractors(*parts)

    # Status, commit -------------------------------------------------------
    def working_tree(self) -> dict:
        return self.project.tree_config

    def head_tree(self) -> dict:
        if not self.git.initialized or self.git.head is None:
            return {"sources": {}, "build_targets": {}}
        return self.tree_at("HEAD")

    def status(self) -> dict[str, str]:
        """{target: status} of the working tree against HEAD, with 1.11's status names."""
        wd = self.working_tree()
        changes: dict[str, str] = {}
        for name in wd.get("sources") or {}:
            data_dir = self.project.source_dir(name)
            recorded = head_hash(wd, name)
            if recorded and data_dir.is_dir() and dir_hash(data_dir) != recorded:
                changes[name] = "foreign_modified"
        for name, status in diff_trees(self.head_tree(), wd).items():
            changes.setdefault(name, status)
        for name in wd.get("sources") or {}:
            if name not in changes and not self.project.source_dir(name).is_dir():
                changes[name] = "missing"
        return changes

    def commit(self, message: str, allow_empty: bool = False, allow_foreign: bool = False,
               no_cache: bool = False) -> tuple[str, dict[str, str]]:
        """Save the working tree (data into DVC, tree into git); return (hash, changes)."""
        self._ready_to_commit()
        statuses = self.status()
        if not statuses and not allow_empty:
            raise CliError("nothing to commit: the working tree matches HEAD "
                           "(pass --allow-empty to commit anyway)")
        foreign = [t for t, s in statuses.items() if s == "foreign_modified"]
        if foreign and not allow_foreign:
            raise CliError(f"source(s) {', '.join(foreign)} changed outside datum: restore them "
                           "with 'datum project checkout -- NAME' or pass --allow-foreign")
        old_tree = self.head_tree()
        wd = self.working_tree()
        tree_dir = self.root / TREE_DIR
        for name in wd.get("sources") or {}:
            data_dir = self.project.source_dir(name)
            if not data_dir.is_dir():
                continue
            obj = self.dvc.add(data_dir, source_dvcfile(tree_dir, name), no_commit=no_cache)
            stages = wd["build_targets"].setdefault(name, cfg.source_build_target())["stages"]
            stages[-1]["hash"] = obj
            if len(stages) == 1:
                wd["sources"][name]["hash"] = obj
        # DVC files of removed sources go with them
        sources_dir = tree_dir / "sources"
        if sources_dir.is_dir():
            for path in sources_dir.iterdir():
                if path.name not in (wd.get("sources") or {}):
                    shutil.rmtree(path, ignore_errors=True)
        self.project.save()
        sha = self._commit_tree(message)
        return sha, diff_trees(old_tree, wd)

    def _commit_tree(self, message: str) -> str:
        with self._tmp_dir() as staging:
            self._stage_files(staging)
            sha = self.git.commit_dir(staging, message)
            cached = self.root / CACHE_DIR / sha[:2] / sha[2:]
            if not cached.exists():
                cached.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging, cached)
                staging.mkdir()
        return sha

    def _stage_files(self, staging: Path) -> None:
        """Lay out what a commit holds: the tree at the top, plus the extra files."""
        tree_dir = self.root / TREE_DIR
        if tree_dir.is_dir():
            shutil.copytree(tree_dir, staging, dirs_exist_ok=True)
        for rel in EXTRA_FILES:
            src = self.root / rel
            if src.is_file():
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, staging / rel)

    # Checkout ---------------------------------------------------------------
    def checkout(self, rev: str | None = None, sources: list[str] | None = None,
                 force: bool = False) -> None:
        """1.11's checkout: a whole revision (moves HEAD), or some sources' data only."""
        Dvc.require()
        rev = rev or "HEAD"
        sha = self.resolve(rev)
        rev_dir = self.tree_dir(sha)
        rev_tree = self.tree_at(sha)
        if sources:
            wd = self.working_tree()
            for name in sources:
                if name not in rev_tree["sources"]:
                    known = ", ".join(sorted(rev_tree["sources"])) or "none"
                    raise CliError(f"unknown source '{name}' in revision '{rev}' "
                                   f"(sources: {known})")
            self._restore_data(rev_dir, sources)
            for name in sources:
                wd["sources"][name] = rev_tree["sources"][name]
                wd.setdefault("build_targets", {})[name] = rev_tree["build_targets"].get(
                    name, cfg.source_build_target())
            self.project.save()
            return

        if not force:
            with self._tmp_dir() as staging:
                self._stage_files(staging)
                changed = self.git.changed_files(staging)
            if changed:
                raise CliError(f"unsaved changes in {', '.join(changed)}: commit them with "
                               "'datum project commit' or pass -f/--force to discard them")
        self._restore_data(rev_dir, list(rev_tree["sources"]))
        with self._tmp_dir() as tmp:
            new_tree = tmp / "tree"
            shutil.copytree(rev_dir, new_tree)
            for rel in EXTRA_FILES:
                src = new_tree / rel
                if src.is_file():
                    (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, self.root / rel)
            shutil.rmtree(new_tree / ".dvc", ignore_errors=True)
            shutil.rmtree(new_tree / cfg.ENV_DIR, ignore_errors=True)
            old_tree = tmp / "old"
            tree_dir = self.root / TREE_DIR
            if tree_dir.exists():
                os.replace(tree_dir, old_tree)
            os.replace(new_tree, tree_dir)
        self.git.move_head(rev, sha)

    def _check_restorable(self, dvcfile: Path) -> None:
        """A revision may come from anywhere: its data must land in a folder of the root."""
        import yaml

        name = dvcfile.parent.name
        outs = (yaml.safe_load(dvcfile.read_text(encoding="utf-8")) or {}).get("outs") or []
        paths = [str(o.get("path", "")) for o in outs]
        if (paths != [name] or name in ("", ".", "..") or "/" in name or "\\" in name
                or (self.root / name).resolve().parent != self.root):
            raise CliError(f"refusing to restore {dvcfile}: its data path {paths} is not the "
                           f"folder '{name}' in the project root")

    def _restore_data(self, tree_dir: Path, names: list[str]) -> None:
        dvcfiles = [source_dvcfile(tree_dir, n) for n in names
                    if source_dvcfile(tree_dir, n).is_file()]
        for dvcfile in dvcfiles:
            self._check_restorable(dvcfile)
        if not dvcfiles:
            return
        # DVC refuses .dvc files in git-ignored folders such as .datumaro/tmp
        tmp = Path(tempfile.mkdtemp(prefix=".datum-checkout-", dir=self.root))
        try:
            self.dvc.checkout(dvcfiles, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _ignore(self.root / ".gitignore", [f"/{n}" for n in names])



def init_history(project) -> None:
    """What 1.11's ``project create`` did for history, minus DVC (set up at the first
    commit, so projects need the ``vcs`` extra only once they are committed)."""
    import logging
    import shutil as _shutil

    if project.version != 2 or _shutil.which("git") is None:
        logging.getLogger(__name__).debug("git not found: project created without history")
        return
    if (project.root / ".git").exists():
        return  # a repository is there already: leave it as it is
    History(project).init_git()


def describe_revision(project, rev: str) -> list[str]:
    """1.11's ``project info REVISION``: the revision's sources and their build stages."""
    history = History(project)
    sha = history.resolve(rev)
    tree = history.tree_at(sha)
    lines = ["Project:", f"  location: {project.root}", f"  revision: {sha}", "Models:"]
    for name, model in project.models.items():
        lines += [f"  model '{name}':", f"    type: {model.get('launcher')}"]
    lines.append("Sources:")
    for name, source in tree["sources"].items():
        lines += [
            f"  '{name}':",
            f"    format: {source.get('format')}",
            f"    url: {source.get('url') or ''}",
            f"    location: {project.source_dir(name) / (source.get('path') or '')}",
            f"    options: {source.get('options') or {}}",
            "    stages:",
        ]
        stages = (tree["build_targets"].get(name) or {}).get("stages") or []
        for stage in stages:
            obj = stage.get("hash") or ""
            from explain_plugin.project.vcs import is_cached

            lines += [f"      '{stage.get('name')}':", f"        type: {stage.get('type')}",
                      f"        hash: {obj}",
                      f"        cached: {is_cached(project.root, obj) if obj else 'n/a'}"]
            if stage.get("kind"):
                lines.append(f"        kind: {stage['kind']}")
            if stage.get("params"):
                lines.append(f"        parameters: {stage['params']}")
    return lines
