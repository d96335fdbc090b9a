"""The real ``datum`` in a subprocess, stopped as users stop it: Ctrl-C, kill -9, and a
second run started on the same output folder while the first is busy."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from explain_plugin.samples import known_answer

DATUM = Path(sys.executable).parent / "datum"
ITEMS = 4
SAMPLES = "8000"  # a fraction of a second an item (scripts run fast now): time to stop a run between items


@pytest.fixture(scope="module")
def project(tmp_path_factory, known_models) -> Path:
    from explain_plugin.cli import main

    root = tmp_path_factory.mktemp("interrupts")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(ITEMS):
        cv2.imwrite(str(images / f"im{i}.png"), rng.integers(0, 256, (48, 64, 3), np.uint8))
    proj = root / "proj"
    xml = known_models["classifier"]
    script = Path(known_answer.__file__).parent / "interpreters" / "known_classifier_0x.py"
    for args in (["project", "create", "-o", proj],
                 ["project", "import", "-p", proj, "-n", "images", "-f", "image_dir", images],
                 ["model", "add", "-p", proj, "-n", "clf", "-l", "openvino", "--", "-d", xml,
                  "-w", xml.with_suffix(".bin"), "-i", script]):
        assert main([str(a) for a in args]) == 0
    return proj


def start(project: Path, out: Path, samples: str = SAMPLES) -> subprocess.Popen:
    return subprocess.Popen(
        [str(DATUM), "explain", "-p", str(project), "-m", "clf", "-o", str(out), "images",
         "rise", "-s", samples],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def done_items(out: Path) -> int:
    """Finished items: a dataset run writes one shard per item, last, atomically."""
    return len(list(out.glob("items/*.json")))


def wait_until(condition, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def rerun_finishes(project: Path, out: Path) -> str:
    proc = start(project, out)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["items"]) == ITEMS
    assert not list(out.rglob("*.tmp")), list(out.rglob("*.tmp"))
    assert not (out / ".lock").exists()
    return stdout


def test_ctrl_c_exits_130_with_items_done_and_the_rerun_resumes(project, tmp_path):
    out = tmp_path / "out"
    proc = start(project, out)
    wait_until(lambda: done_items(out) >= 1, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    done = done_items(out)
    assert 1 <= done < ITEMS
    assert lines[0] == (f"interrupted: {done} of {ITEMS} items done; "
                        "rerun the same command to resume")
    stdout = rerun_finishes(project, out)
    assert f"({done} already done)" in stdout


def test_kill_9_mid_run_then_the_rerun_finishes_and_cleans_temp_files(project, tmp_path):
    out = tmp_path / "out"
    proc = start(project, out)
    wait_until(lambda: done_items(out) >= 2, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # What a kill during a write leaves: a half-written temp beside a result file.
    stale = out / "images" / "default" / "im0" / ".0-top_left.png.k9x2a1.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"\x89PNG half")
    rerun_finishes(project, out)
    overlays = [f for f in json.loads((out / "run.json").read_text())["items"]["im0"]["files"]
                if f.endswith(".png")]
    assert overlays and all(cv2.imread(str(out / f)) is not None for f in overlays)


def test_a_second_run_on_the_same_folder_refuses_naming_the_first(project, tmp_path):
    out = tmp_path / "out"
    first = start(project, out, samples="100000")  # busy long after the second has started
    try:
        wait_until(lambda: (out / ".lock").is_file() and (out / ".lock").read_text().strip(),
                   first)
        second = start(project, out, samples="100000")
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 1, stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"pid {first.pid}" in lines[0], stderr
        assert first.poll() is None  # the first run was not disturbed
    finally:
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stderr
    assert not (out / ".lock").exists()


@pytest.mark.parametrize("name, cut", [("cut.png", 300), ("cut.jpg", 700)])
def test_native_library_warnings_never_reach_the_terminal(project, tmp_path, name, cut):
    """libpng and libjpeg print to file descriptor 2 themselves: only a real process sees it."""
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    path = tmp_path / name
    path.write_bytes(cv2.imencode(Path(name).suffix, image)[1].tobytes()[:cut])
    proc = subprocess.run([str(DATUM), "explain", "-p", str(project), "-m", "clf", "-o",
                           str(tmp_path / "out"), "-t", str(path), "rise", "-s", "8"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "truncated or corrupt" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
