"""The version-control tools Datumaro 1.11 projects were built on: git for the
project tree, DVC for source data.

Both run as their own command-line programs (``git``, ``python -m dvc``), so
nothing heavy is imported here. Reading a revision needs no DVC at all: DVC's
cache is content-addressed (``.dvc/cache[/files/md5]/XX/YYYY[.dir]``), and
:func:`materialize_object` reads it directly; writing (``commit``) and
restoring (``checkout``) go through DVC itself, which the ``vcs`` extra installs.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from explain_plugin.errors import CliError

VCS_EXTRA_HINT = "pip install 'explain-plugin[vcs]'"
DIR_SUFFIX = ".dir"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR", "fatal", "error"))]
    return (errors or lines or ["no message"])[0]


class Git:
    """``git`` run as a subprocess in the project root."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def require() -> None:
        if shutil.which("git") is None:
            raise CliError("project history needs git, which is not on PATH: install git "
                           "(e.g. 'apt-get install git') and run the command again")

    def run(self, *args: str, work_tree: Path | None = None, check: bool = True,
            binary: bool = False) -> subprocess.CompletedProcess:
        cmd = ["git", "-C", str(self.root)]
        if work_tree is not None:
            cmd += ["--work-tree", str(work_tree)]
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        result = subprocess.run(cmd + list(args), capture_output=True, env=env,
                                text=not binary)
        if check and result.returncode != 0:
            err = result.stderr.decode(errors="replace") if binary else result.stderr
            sub = next((a for a in args if not a.startswith("-") and "=" not in a), "")
            raise CliError(f"git {sub} failed in {self.root}: {_first_line(err)}")
        return result

    @property
    def initialized(self) -> bool:
        return (self.root / ".git").exists()

    def init(self) -> None:
        self.require()
        self.run("init", "-q")
        # A commit needs an identity; Datumaro set a local one. Keep the user's if set.
        if self.run("config", "user.email", check=False).returncode != 0:
            self.run("config", "user.email", "datum@localhost")
        if self.run("config", "user.name", check=False).returncode != 0:
            self.run("config", "user.name", "User")

    def rev_parse(self, rev: str) -> str | None:
        """The commit hash ``rev`` names, or None."""
        if not self.initialized:
            return None
        result = self.run("rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def resolve(self, rev: str) -> str:
        sha = self.rev_parse(rev)
        if sha is None:
            hint = ("the project has no commits yet: make one with 'datum project commit -m MSG'"
                    if self.rev_parse("HEAD") is None else "'datum project log' lists revisions")
            raise CliError(f"unknown revision '{rev}': {hint}")
        return sha

    @property
    def head(self) -> str | None:
        return self.rev_parse("HEAD")

    @property
    def branch(self) -> str | None:
        result = self.run("symbolic-ref", "-q", "--short", "HEAD", check=False)
        return result.stdout.strip() or None if result.returncode == 0 else None

    def log(self, max_count: int) -> list[tuple[str, str]]:
        if self.head is None:
            return []
        out = self.run("log", f"-n{max_count}", "--format=%H%x00%B%x1e", "HEAD").stdout
        entries = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if record:
                sha, _, message = record.partition("\x00")
                entries.append((sha, message.strip()))
        return entries

    def commit_dir(self, staging: Path, message: str, allow_empty: bool = True) -> str:
        """Commit exactly the files of ``staging`` (the index mirrors it); return the hash."""
        self.run("add", "-A", "-f", ".", work_tree=staging)
        args = ["-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-m", message]
        if allow_empty:
            args.insert(3, "--allow-empty")
        self.run(*args)
        return self.head

    def changed_files(self, staging: Path) -> list[str]:
        """Files of the index that differ in ``staging`` (as paths relative to it)."""
        out = self.run("diff", "--name-only", work_tree=staging).stdout
        return [line for line in out.splitlines() if line]

    def export_tree(self, sha: str, dst: Path) -> None:
        """Write the files of commit ``sha`` into ``dst``."""
        data = self.run("archive", "--format=tar", sha, binary=True).stdout
        dst.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dst, filter="data")

    def move_head(self, rev: str, sha: str) -> None:
        """Point HEAD at ``rev`` (a branch stays attached) and reset the index to it."""
        if self.run("show-ref", "--verify", "-q", f"refs/heads/{rev}", check=False).returncode == 0:
            self.run("symbolic-ref", "HEAD", f"refs/heads/{rev}")
        else:
            self.run("update-ref", "--no-deref", "HEAD", sha)
        self.run("read-tree", sha)


class Dvc:
    """``python -m dvc`` run in the project root (the ``vcs`` extra installs DVC)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("dvc") is not None

    @classmethod
    def require(cls) -> None:
        if not cls.available():
            raise CliError(f"project version control stores source data with DVC, which is "
                           f"not installed: {VCS_EXTRA_HINT}")

    @property
    def initialized(self) -> bool:
        return (self.root / ".dvc").is_dir()

    def run(self, *args: str) -> str:
        self.require()
        env = dict(os.environ, DVC_NO_ANALYTICS="1", DVC_NO_UPDATER="1")
        result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=self.root,
                                capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise CliError(f"dvc {args[0]} failed in {self.root}: "
                           f"{_first_line(result.stderr + result.stdout)}")
        return result.stdout

    def init(self) -> None:
        self.run("init", "-q")

    def add(self, data_dir: Path, dvcfile: Path, no_commit: bool = False) -> str:
        """Hash ``data_dir`` (and store it in DVC's cache unless ``no_commit``);
        move the .dvc file DVC writes to ``dvcfile``; return the data hash."""
        rel = os.path.relpath(data_dir, self.root)
        self.run("add", *(["--no-commit"] if no_commit else []), rel)
        generated = self.root / f"{rel}.dvc"
        dvcfile.parent.mkdir(parents=True, exist_ok=True)
        os.replace(generated, dvcfile)
        return hash_from_dvcfile(dvcfile)

    def checkout(self, dvcfiles: list[Path], tmp_dir: Path) -> None:
        """Restore the data the ``dvcfiles`` name into the project root."""
        import yaml

        if not dvcfiles:
            return
        rewritten = []
        for i, dvcfile in enumerate(dvcfiles):
            conf = yaml.safe_load(dvcfile.read_text(encoding="utf-8")) or {}
            conf["wdir"] = os.path.relpath(self.root, tmp_dir)  # outs are relative to the root
            path = tmp_dir / f"{i}-{dvcfile.parent.name}.dvc"
            path.write_text(yaml.safe_dump(conf, sort_keys=False), encoding="utf-8")
            rewritten.append(os.path.relpath(path, self.root))
        self.run("checkout", "--force", *rewritten)


def hash_from_dvcfile(dvcfile: Path) -> str:
    """The data hash of a .dvc file, without DVC's ``.dir`` suffix (Datumaro's convention)."""
    import yaml

    conf = yaml.safe_load(dvcfile.read_text(encoding="utf-8")) or {}
    outs = conf.get("outs") or [{}]
    md5 = str(outs[0].get("md5") or "")
    return md5[: -len(DIR_SUFFIX)] if md5.endswith(DIR_SUFFIX) else md5


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dir_hash(data_dir: Path) -> str:
    """DVC 3's hash of a directory (what ``dvc add`` records), computed without DVC:
    md5 of the JSON list of ``{md5, relpath}`` entries sorted by path."""
    entries = [
        {"md5": file_md5(p), "relpath": p.relative_to(data_dir).as_posix()}
        for p in data_dir.rglob("*") if p.is_file()
    ]
    entries.sort(key=lambda e: e["relpath"])
    payload = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def _cache_object(root: Path, obj: str) -> Path | None:
    """A DVC cache object by hash: DVC 3 layout first, then DVC 2's."""
    for base in (root / ".dvc" / "cache" / "files" / "md5", root / ".dvc" / "cache"):
        path = base / obj[:2] / obj[2:]
        if path.is_file():
            return path
    return None


def is_cached(root: Path, obj_hash: str) -> bool:
    return _cache_object(root, obj_hash + DIR_SUFFIX) is not None or \
        _cache_object(root, obj_hash) is not None


def materialize_object(root: Path, obj_hash: str, dst: Path) -> Path:
    """Write DVC object ``obj_hash`` (a directory or a file) to ``dst`` by hard
    links (copies across devices), via a temp folder renamed into place."""
    if dst.exists():
        return dst
    manifest = _cache_object(root, obj_hash + DIR_SUFFIX)
    single = None if manifest else _cache_object(root, obj_hash)
    if manifest is None and single is None:
        raise CliError(f"data object {obj_hash} is not in the project's DVC cache "
                       f"({root / '.dvc' / 'cache'}): it was committed with --no-cache "
                       "or the cache was removed")
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        if manifest is not None:
            for entry in json.loads(manifest.read_text(encoding="utf-8")):
                src = _cache_object(root, entry["md5"])
                if src is None:
                    raise CliError(f"file '{entry['relpath']}' of data object {obj_hash} is "
                                   "missing from the DVC cache")
                _link_or_copy(src, staging / entry["relpath"])
        else:
            _link_or_copy(single, staging / "data")
        os.replace(staging, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dst


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
