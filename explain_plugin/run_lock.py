"""One run per output folder at a time, and what a killed run left behind.

The lock is ``fcntl.flock`` on ``<out_dir>/.lock`` (released by the kernel when
the process dies, even by kill -9); the file holds the owner's pid so a second
run can say who is busy. With the lock held no one else writes in the folder,
so any ``.NAME.*.tmp`` there is a killed run's half-written file.
"""
from __future__ import annotations

import os
import weakref
from pathlib import Path

from explain_plugin.errors import CliError

LOCK_NAME = ".lock"


class RunLock:
    """``with RunLock(out_dir):`` holds the folder; a second holder gets a one-line CliError.

    The folder is created when missing; on exit, a folder this lock created and left
    empty is removed again, so a run refused before any result leaves no trace.
    """

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_NAME
        self._fd: int | None = None
        self._created: list[Path] = []

    def __enter__(self) -> "RunLock":
        import fcntl

        missing = [p for p in (self.out_dir, *self.out_dir.parents) if not p.exists()]
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise CliError(f"cannot write to the output folder '{self.out_dir}': "
                           f"{e.strerror or e}; choose another -o") from None
        os.close(fd)
        self._created = missing  # deepest first
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise CliError(
                    f"another run (pid {owner}) is writing to '{self.out_dir}': wait for it "
                    "to finish, or choose another -o"
                ) from None
            try:  # the file we locked may have been unlinked by its last owner meanwhile
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        # A lock dropped without __exit__ (Python API users) is released when collected.
        self._release = weakref.finalize(self, os.close, fd)
        return self

    def __exit__(self, *exc) -> None:
        try:
            os.unlink(self.path)  # unlinked while still held: see the inode check above
        except FileNotFoundError:
            pass
        self._release()
        for folder in self._created:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break

    def remove_stale_temps(self) -> int:
        """Delete half-written ``.NAME.*.tmp`` files a killed run left; return how many."""
        count = 0
        for tmp in self.out_dir.rglob(".*.tmp"):
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
                count += 1
        return count
