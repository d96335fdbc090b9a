"""Dataset runs over Ray (``--executor ray``) on a local two-CPU cluster started here:
same maps as a local run, resume across executors, a killed worker's item retried,
and no Ray import (or a one-line error) where Ray is not asked for or not installed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from explain_plugin.samples import known_answer
from conftest import lit_quadrant, quads_project

LABELS = known_answer.CLASSIFIER_LABELS
H, W = 64, 96
ITEMS = {f"q{i}": i % 4 for i in range(6)}  # item -> lit quadrant (= the model's answer)
RISE = ["rise", "-s", "120", "--seed", "3"]


def quadrant_image(k: int) -> np.ndarray:
    return lit_quadrant(k, H, W)


@pytest.fixture(scope="module")
def base_project(tmp_path_factory, known_models):
    from datumaro import Dataset
    from datumaro.components.annotation import AnnotationType, Label, LabelCategories
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image

    root = tmp_path_factory.mktemp("ray")
    items = [DatasetItem(id=i, subset="val", annotations=[Label(k)],
                         media=Image.from_numpy(quadrant_image(k))) for i, k in ITEMS.items()]
    Dataset.from_iterable(items, categories={
        AnnotationType.label: LabelCategories.from_iterable(LABELS)}
    ).export(str(root / "data"), "datumaro", save_media=True)
    return quads_project(root / "proj", root / "data", known_models)


@pytest.fixture
def project(base_project, tmp_path):
    proj = tmp_path / "proj"
    shutil.copytree(base_project, proj)
    return proj


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance (2 CPUs) for the module: start-up costs seconds."""
    try:
        import ray
    except ImportError:
        pytest.skip("Ray is not installed: pip install explain-plugin[ray] (or '.[test,ray]')")
    import logging

    # The test methods and workers live in this (non-importable) module.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(base_project, tmp_path_factory):
    """The reference: the same run by the local executor."""
    from explain_plugin.cli import main

    proj = tmp_path_factory.mktemp("local") / "proj"
    shutil.copytree(base_project, proj)
    assert main(["explain", "-p", str(proj), "-m", "cls", "quads", "-n", "r", "-q",
                 *RISE]) == 0
    return proj / "explanations" / "r"


def shards(run: Path) -> dict[str, dict]:
    out = {}
    for path in run.glob("items/*.json"):
        shard = json.loads(path.read_text())
        out[shard["id"]] = shard
    return out


def heatmaps(run: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(run)): np.load(p) for p in sorted(run.glob("heatmaps/**/*.npy"))}


def assert_same_results(run: Path, reference: Path) -> None:
    got, want = shards(run), shards(reference)
    assert sorted(got) == sorted(ITEMS)
    for item_id, shard in want.items():
        assert got[item_id]["targets"] == shard["targets"]
        assert got[item_id]["annotations"] == shard["annotations"]
    got_maps, want_maps = heatmaps(run), heatmaps(reference)
    assert sorted(got_maps) == sorted(want_maps) and len(want_maps) == len(ITEMS)
    for name, heat in want_maps.items():
        np.testing.assert_array_equal(got_maps[name], heat)


def assert_same_maps(run: Path, reference: Path) -> None:
    """Same scores and maps per item as the reference (a method of another name)."""
    got, want = shards(run), shards(reference)
    assert sorted(got) == sorted(ITEMS)
    for item_id in ITEMS:
        a, b = got[item_id]["targets"], want[item_id]["targets"]
        assert [t["score"] for t in a] == [t["score"] for t in b] and len(a) >= 1
        for ta, tb in zip(a, b):
            np.testing.assert_array_equal(np.load(run / ta["heatmap"]),
                                          np.load(reference / tb["heatmap"]))


class Bar:
    """A run-level progress bar stand-in (tqdm's interface) that counts."""

    made: list["Bar"] = []

    def __init__(self, total, initial, quiet):
        self.total, self.n, self.closed = total, initial, False
        Bar.made.append(self)

    def update(self, n=1):
        self.n += n

    def close(self):
        self.closed = True


def test_ray_run_resumes_a_local_run_with_the_same_maps(cluster, project, local_run, datum,
                                                         monkeypatch):
    base = ["explain", "-p", project, "-m", "cls", "quads", "-n", "r", "-q"]
    assert datum(*base, "--ids", "val/q0,val/q1", *RISE).code == 0  # partial, local
    run = project / "explanations" / "r"
    stamps = {p: p.stat().st_mtime_ns for p in run.glob("items/*.json")}
    assert len(stamps) == 2
    monkeypatch.setattr("explain_plugin.item_pipeline.progress_bar", Bar)
    result = datum(*base, "--executor", "ray", "--workers", "2", "--cpus-per-worker", "0.5",
                   *RISE)
    assert result.code == 0, result.err
    bar, = Bar.made  # one bar for the run, counting items across both workers
    assert (bar.total, bar.n, bar.closed) == (len(ITEMS), len(ITEMS), True)
    monkeypatch.undo()
    assert f"Explained {len(ITEMS) - 2} item(s) (2 already done)" in result.out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # not recomputed
    assert_same_results(run, local_run)  # bit for bit, whichever process explained
    for item_id, k in ITEMS.items():  # a known answer: the lit quadrant is explained
        shard = shards(run)[item_id]
        assert shard["pred"] == LABELS[k]
        heat = np.load(run / shard["targets"][0]["heatmap"]).astype(np.float32)
        region = known_answer.classifier_region_masks(*heat.shape)[k]
        assert heat[region].mean() > heat[~region].mean() + 0.2
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["explained"] == len(ITEMS) - 2
    from datumaro import Dataset

    assert len(Dataset.import_from(str(run), "datumaro")) == len(ITEMS)
    again = datum(*base, *RISE)  # and a local rerun trusts what the Ray workers wrote
    assert again.code == 0 and f"Explained 0 item(s) ({len(ITEMS)} already done)" in again.out


class Marks:
    """Where the test methods log (pid, lit) per item; carried to the workers by value."""

    marker_dir = ""


def faulty_rise_class(name: str, fault):
    """RISE that calls ``fault()`` the first time it meets item ``q2`` (its worker
    process dies, or the item hangs)."""
    from explain_plugin.methods.rise import Rise

    class Faulty(Rise):
        marker_dir = Marks.marker_dir

        def explain(self, launcher, image, progress=None, item=None):
            marks = Path(self.marker_dir)
            q2 = bool(image[H - 4, 4, 0] == 230)  # bottom-left lit: only q2
            with open(marks / "log", "a") as log:
                log.write(f"{os.getpid()} {int(q2)}\n")
            if q2 and not (marks / "seen").exists():  # the first time only
                (marks / "seen").touch()
                fault()
            yield from super().explain(launcher, image, progress, item=item)

    Faulty.name = name
    return Faulty


def run_with_method(project, datum, method, *args):
    from explain_plugin.hookspecs import hookimpl
    from explain_plugin.plugins import make_plugin_manager

    class Plugin:
        @hookimpl
        def register_explain_methods(self, register):
            register(method)

    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(Plugin())
    return datum("explain", "-p", project, "-m", "cls", "quads", "-n", "r", "-q",
                 "--executor", "ray", "--workers", "2", method.name, *args, pm=pm)


def log_lines(marks: Path) -> list[list[str]]:
    return [line.split() for line in (marks / "log").read_text().splitlines()]


@pytest.fixture
def no_tail_copies(monkeypatch):
    """Counts of item runs exact: no copies of items slowed down by a loaded machine."""
    monkeypatch.setattr("explain_plugin.executors.ray_executor.STRAGGLER_AFTER", 1e9)


def test_a_killed_workers_item_is_retried_and_the_run_completes(cluster, project, local_run,
                                                                 datum, tmp_path,
                                                                 no_tail_copies):
    marks = tmp_path / "marks"
    marks.mkdir()
    Marks.marker_dir = str(marks)
    result = run_with_method(project, datum, faulty_rise_class("dying", lambda: os._exit(1)),
                             *RISE[1:])
    assert result.code == 0, result.err
    assert "1 worker(s) lost; their items were retried" in result.err
    assert f"Explained {len(ITEMS)} item(s)" in result.out
    lines = log_lines(marks)
    twice = [pid for pid, lit in lines if lit == "1"]  # items lit bottom-left: q2 only
    assert len(twice) == 2 and twice[0] != twice[1]  # retried by another process
    # Only the killed worker's items in progress ran again (q2 and the one beside it).
    assert len(ITEMS) + 1 <= len(lines) <= len(ITEMS) + 2
    assert_same_maps(project / "explanations" / "r", local_run)


def test_a_straggler_does_not_hold_the_run(cluster, project, local_run, datum, tmp_path):
    import time

    marks = tmp_path / "marks"
    marks.mkdir()
    Marks.marker_dir = str(marks)
    hang = 600  # seconds q2 takes on the first worker that meets it
    started = time.monotonic()
    result = run_with_method(project, datum,
                             faulty_rise_class("slow", lambda: time.sleep(hang)), *RISE[1:])
    assert result.code == 0, result.err
    assert time.monotonic() - started < hang / 2  # the hung copy was not waited for
    lines = log_lines(marks)
    twice = [pid for pid, lit in lines if lit == "1"]
    assert len(twice) == 2 and twice[0] != twice[1]  # copied to the other worker
    assert len(lines) >= len(ITEMS) + 1  # (more: other items copied on a loaded machine)
    run = project / "explanations" / "r"
    assert_same_maps(run, local_run)
    assert not list(run.rglob("*.tmp"))
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def cursed():
    from explain_plugin.errors import CliError

    raise CliError("q2 is cursed")


def test_an_item_error_stops_the_run_once_the_items_in_progress_are_saved(
        cluster, project, local_run, datum, tmp_path, no_tail_copies):
    marks = tmp_path / "marks"
    marks.mkdir()
    Marks.marker_dir = str(marks)
    result = run_with_method(project, datum, faulty_rise_class("failing", cursed), *RISE[1:])
    assert result.code == 1 and result.err.strip() == "Error: q2 is cursed", result.err
    # Two workers x two items: q0, q1 and q3 were in progress beside q2; they are saved,
    # nothing after them is started, and the rerun finishes the run.
    run = project / "explanations" / "r"
    assert sorted(shards(run)) == ["q0", "q1", "q3"]
    assert len(log_lines(marks)) == 4
    again = run_with_method(project, datum, faulty_rise_class("failing", cursed), *RISE[1:])
    assert again.code == 0 and "(3 already done)" in again.out, again.err
    assert_same_maps(run, local_run)


def blind_worker_class():
    """A worker on a node without the run directory: it must send its results back."""
    from explain_plugin.executors.ray_executor import ItemWorker

    class Blind(ItemWorker):
        def __init__(self, req, project_dir, run_root, *args):
            super().__init__(req, project_dir, run_root + "-not-mounted", *args)

        def explain(self, *args):
            assert not self.direct
            return super().explain(*args)

    return Blind


def test_workers_that_cannot_see_the_run_send_results_the_driver_writes(
        cluster, project, local_run, datum, monkeypatch):
    monkeypatch.setattr("explain_plugin.executors.ray_executor.ItemWorker",
                        blind_worker_class())  # shipped by value, like the module
    from explain_plugin.item_pipeline import ItemPipeline as _Pipeline

    written_here = []
    real_write = _Pipeline._write

    def write(self, k, *args):  # the driver's writes (actors import their own class)
        written_here.append(k)
        return real_write(self, k, *args)

    monkeypatch.setattr(_Pipeline, "_write", write)
    result = datum("explain", "-p", project, "-m", "cls", "quads", "-n", "r", "-q",
                   "--executor", "ray", "--workers", "2", *RISE)
    assert result.code == 0, result.err
    run = project / "explanations" / "r"
    assert sorted(written_here) == sorted(("val", i) for i in ITEMS)
    assert not Path(str(run.resolve()) + "-not-mounted").exists()
    assert_same_results(run, local_run)
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["items"]) == len(ITEMS)


def test_missing_ray_is_one_line(project, datum, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = datum("explain", "-p", project, "-m", "cls", "quads", "-q", "--executor", "ray",
                   *RISE)
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "pip install explain-plugin[ray]" in lines[0], result.err
    assert "Traceback" not in result.err


def test_bad_executor_use_is_one_line(project, datum):
    result = datum("explain", "-p", project, "-m", "cls", "quads", "--address", "auto", *RISE)
    assert result.code != 0 and result.err.strip().count("\n") == 0
    assert "--address needs --executor ray" in result.err
    result = datum("explain", "-p", project, "-m", "cls", "quads", "--cpus-per-worker", "2",
                   *RISE)
    assert result.code != 0 and "--cpus-per-worker needs --executor ray" in result.err


def test_local_runs_never_import_ray(base_project, tmp_path):
    proj = tmp_path / "proj"
    shutil.copytree(base_project, proj)
    code = textwrap.dedent(f"""
        import sys
        from explain_plugin.cli import main
        code = main(["explain", "-p", {str(proj)!r}, "-m", "cls", "quads", "-q", "--ids",
                     "val/q0", "rise", "-s", "20"])
        assert code == 0, code
        print("ray" in sys.modules, any(m.startswith("ray.") for m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].split() == ["False", "False"]


def test_a_worker_that_cannot_open_the_project_is_one_error(cluster, tmp_path):
    from explain_plugin.errors import CliError
    from explain_plugin.executors.ray_executor import ItemWorker, RayPipeline
    from explain_plugin.methods.rise import Rise
    from types import SimpleNamespace

    req = SimpleNamespace(method_cls=Rise, model_name="cls")
    actor = cluster.remote(num_cpus=0.5, max_restarts=0)(ItemWorker).remote(
        req, str(tmp_path / "elsewhere"), str(tmp_path / "run"), "digest", None, [], [])
    with pytest.raises(CliError, match=r"^no Datumaro project at .*elsewhere"):
        RayPipeline._check_started(None, cluster, [actor])


def test_ctrl_c_stops_the_workers_and_the_rerun_resumes(cluster, project, datum):
    """Ctrl-C in a terminal (SIGINT to the whole process group, Ray's processes too)."""
    import re
    import signal
    import time

    run = project / "explanations" / "r"
    cmd = [str(Path(sys.executable).parent / "datum"), "explain", "-p", str(project), "-m",
           "cls", "quads", "-n", "r", "--executor", "ray", "--workers", "2", "rise", "-s",
           "4000", "--seed", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    end = time.monotonic() + 120
    while not list(run.glob("items/*.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    said = re.fullmatch(rf"interrupted: (\d+) of {len(ITEMS)} items done; rerun the same "
                        "command to resume", lines[0])
    on_disk = len(list(run.glob("items/*.json")))
    assert said and 1 <= int(said[1]) <= on_disk < len(ITEMS), (lines, on_disk)
    assert not list(run.rglob("*.tmp")) and not (run / ".lock").exists()
    again = datum("explain", "-p", project, "-m", "cls", "quads", "-n", "r", "-q",
                  "--executor", "ray", "rise", "-s", "4000", "--seed", "3")
    assert again.code == 0, again.err
    assert f"({on_disk} already done)" in again.out
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
