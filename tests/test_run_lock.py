"""The run-folder lock, in process: refusal naming the pid, release, stale temps."""
from __future__ import annotations

import gc
import os

import pytest

from explain_plugin.errors import CliError
from explain_plugin.run_lock import RunLock


def test_second_holder_refused_with_the_pid_then_released(tmp_path):
    out = tmp_path / "a" / "run"
    first = RunLock(out).__enter__()
    with pytest.raises(CliError, match=f"pid {os.getpid()}"):
        RunLock(out).__enter__()
    del first
    gc.collect()  # a lock dropped without __exit__ is released when collected
    with RunLock(out):
        assert (out / ".lock").read_text().strip() == str(os.getpid())
    assert not (out / ".lock").exists()
    with RunLock(tmp_path / "b" / "run"):
        pass
    assert not (tmp_path / "b").exists()  # folders a lock made and left empty are gone


def test_stale_temps_removed_and_results_kept(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".x.png.ab12.tmp").write_bytes(b"half")
    (tmp_path / "sub" / ".y.npy.cd34.tmp").write_bytes(b"half")
    (tmp_path / "x.png").write_bytes(b"whole")
    with RunLock(tmp_path) as lock:
        assert lock.remove_stale_temps() == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sub", "x.png"]
