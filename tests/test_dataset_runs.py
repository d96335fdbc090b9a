"""Dataset runs: selection, GT/pred targets, the run saved as a Datumaro dataset, resume,
run management, and the report in a real browser."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from explain_plugin.samples import known_answer
from conftest import lit_quadrant, quads_project

LABELS = known_answer.CLASSIFIER_LABELS  # top_left, top_right, bottom_left, bottom_right
H, W = 96, 128
# item -> (subset, lit quadrant, GT label); val/q2 is misclassified (lit bottom_left, GT says
# bottom_right); val/q3 also has a GT box over its quadrant.
ITEMS = {"q0": ("train", 0, 0), "q1": ("train", 1, 1), "q2": ("val", 2, 3),
         "q3": ("val", 3, 3)}
RISE = ["rise", "-s", "300", "--seed", "1"]


def quadrant_image(k: int) -> np.ndarray:
    return lit_quadrant(k, H, W)


def make_dataset(path: Path) -> Path:
    from datumaro import Dataset
    from datumaro.components.annotation import AnnotationType, Bbox, Label, LabelCategories
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image

    items = []
    for item_id, (subset, lit, gt) in ITEMS.items():
        anns = [Label(gt)]
        if item_id == "q3":
            y0, y1, x0, x1 = known_answer.classifier_regions(H, W)[3]
            anns.append(Bbox(x0, y0, x1 - x0, y1 - y0, label=3))
        items.append(DatasetItem(id=item_id, subset=subset, annotations=anns,
                                 media=Image.from_numpy(quadrant_image(lit))))
    items.append(DatasetItem(id="noimage", subset="val", annotations=[Label(0)]))
    dataset = Dataset.from_iterable(
        items, categories={AnnotationType.label: LabelCategories.from_iterable(LABELS)})
    dataset.export(str(path), "datumaro", save_media=True)
    return path


@pytest.fixture(scope="module")
def base_project(tmp_path_factory, known_models):
    root = tmp_path_factory.mktemp("runs")
    data = make_dataset(root / "data")
    return quads_project(root / "proj", data, known_models)


@pytest.fixture
def project(base_project, tmp_path):
    proj = tmp_path / "proj"
    shutil.copytree(base_project, proj)
    return proj


@pytest.fixture(scope="module")
def finished_run(base_project, tmp_path_factory):
    """One complete run over the source with --targets gt,pred (shared, read-only)."""
    from explain_plugin.cli import main

    proj = tmp_path_factory.mktemp("finished") / "proj"
    shutil.copytree(base_project, proj)
    code = main(["explain", "-p", str(proj), "-m", "cls", "quads", "-n", "run1", "-q",
                 *RISE, "--targets", "gt,pred"])
    assert code == 0
    return proj, proj / "explanations" / "run1"


def import_run(run_dir: Path):
    from datumaro import Dataset

    return Dataset.import_from(str(run_dir), "datumaro")


def quadrant_share(mask: np.ndarray, k: int) -> float:
    region = known_answer.classifier_region_masks(*mask.shape)[k]
    return float((mask & region).sum() / max(mask.sum(), 1))


def test_run_is_a_datumaro_dataset_with_the_right_annotations(finished_run):
    _, run = finished_run
    dataset = import_run(run)
    assert {(i.subset, i.id) for i in dataset} == {(s, i) for i, (s, _, _) in ITEMS.items()}
    labels = [c.name for c in dataset.categories()[1].items]
    assert labels == LABELS
    for item in dataset:
        _, lit, gt = ITEMS[item.id]
        masks = {a.attributes["role"]: a for a in item.annotations}
        assert item.media.size == (H, W) and Path(item.media.path).is_file()
        # The predicted class is the lit quadrant, and its region lies inside it.
        pred = masks.get("pred") or masks["gt+pred"]
        assert pred.label == lit
        assert quadrant_share(pred.image.astype(bool), lit) >= 0.9
        for ann in item.annotations:
            attrs = ann.attributes
            assert attrs["method"] == "rise" and attrs["target"] == LABELS[ann.label]
            assert 0 <= attrs["score"] <= 1
            heat = np.load(run / attrs["heatmap"])
            assert heat.dtype == np.float16 and heat.shape == (H, W)
            assert (run / attrs["overlay"]).is_file()
            assert attrs["metric_region_area"] == pytest.approx(ann.image.mean(), abs=1e-3)
        assert item.attributes["correct"] == (lit == gt)
    # The GT box of q3 gives pointing and energy; the map peaks in its box.
    q3 = next(i for i in dataset if i.id == "q3")
    assert q3.annotations[0].attributes["metric_pointing"] == 1
    assert q3.annotations[0].attributes["metric_energy_in_box"] > 0.5
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["skipped_no_image"] == 1
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == sum(len(i.annotations) for i in dataset) == 5


def test_gt_pred_on_a_misclassified_item_gives_both_maps(finished_run):
    _, run = finished_run
    q2 = next(i for i in import_run(run) if i.id == "q2")
    by_role = {a.attributes["role"]: a for a in q2.annotations}
    assert set(by_role) == {"gt", "pred"}
    assert by_role["gt"].label == 3 and by_role["pred"].label == 2
    assert q2.attributes["pred"] == "bottom_left" and q2.attributes["correct"] is False
    for ann in q2.annotations:  # each map lights the quadrant its class reads
        heat = np.load(run / ann.attributes["heatmap"]).astype(np.float32)
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        assert known_answer.classifier_region_masks(H, W)[ann.label][y, x]


def test_project_info_and_list_show_the_run(finished_run, datum):
    proj, _ = finished_run
    info = datum("project", "info", "-p", proj, "--no-count")
    assert info.code == 0 and "Explanation runs:" in info.out and "'run1':" in info.out
    assert "method: rise" in info.out and "items: 4" in info.out
    listed = datum("explain", "-p", proj, "--list")
    assert listed.code == 0 and "'run1':" in listed.out
    # Recorded beside the config, not in it: Datumaro <= 1.11 rejects unknown config keys.
    assert "explanations" not in (proj / ".datumaro" / "config.yml").read_text()
    registry = (proj / ".datumaro" / "explanations.yml").read_text()
    assert "run1:" in registry and "path: explanations/run1" in registry


def items_of(run: Path) -> set[tuple[str, str]]:
    return {(i.subset, i.id) for i in import_run(run)}


def test_subset_filter_ids_limit_select_what_they_say(project, datum):
    def run(name, *args):
        r = datum("explain", "-p", project, "-m", "cls", "quads", "-n", name, "-q", *args,
                  "rise", "-s", "50")
        assert r.code == 0, r
        return items_of(project / "explanations" / name)

    assert run("val", "--subset", "val") == {("val", "q2"), ("val", "q3")}
    assert run("f", "--filter", "/item[annotation/label='top_right']") == {("train", "q1")}
    assert run("f2", "--filter", "/item[subset='train']") == {("train", "q0"), ("train", "q1")}
    assert run("ids", "--ids", "val/q3,q0") == {("train", "q0"), ("val", "q3")}
    assert len(run("lim", "--limit", "3")) == 3


def test_unreadable_image_is_skipped_and_counted(project, datum):
    (image,) = (project / "quads").rglob("q0.*")
    image.write_bytes(b"not an image")
    r = datum("explain", "-p", project, "-m", "cls", "quads", "-n", "c", "-q", "rise", "-s", "30")
    assert r.code == 1, r  # the run is not finished until the image is fixed
    line = r.err.splitlines()[-1]
    assert "Traceback" not in r.err and line.startswith("Error: 1 item(s) not explained: ") and "q0" in line, r.err
    assert "rerun the same command to finish run 'c'" in line, r.err
    assert items_of(project / "explanations" / "c") == {("train", "q1"), ("val", "q2"),
                                                         ("val", "q3")}


def test_bad_selection_is_one_line(project, datum):
    r = datum("explain", "-p", project, "-m", "cls", "quads", "--subset", "nope", "rise")
    assert r.code == 1 and "unknown subset(s) nope" in r.err and "Traceback" not in r.err
    r = datum("explain", "-p", project, "-m", "cls", "quads", "--ids", "zz", "rise")
    assert r.code == 1 and "--ids: no item zz" in r.err
    r = datum("explain", "-p", project, "-m", "cls", "quads", "--filter", "/item[", "rise")
    assert r.code == 1 and "bad --filter" in r.err
    r = datum("explain", "-p", project, "-m", "cls", "quads", "-n", "../x", "rise")
    assert r.code == 1 and "bad run name" in r.err
    assert not (project / "x").exists()


def test_killed_run_resumes_without_recomputing(project, datum, monkeypatch):
    from explain_plugin.methods.rise import Rise
    from explain_plugin.store.item_writer import ItemWriter

    explained: list[int] = []
    real_explain, real_write = Rise.explain, ItemWriter.write

    def counting_explain(self, launcher, image, progress=None, **context):
        explained.append(1)
        yield from real_explain(self, launcher, image, progress, **context)

    writes = []

    def dying_write(self, **kw):
        if len(writes) == 2:
            raise KeyboardInterrupt
        writes.append(kw["item_id"])
        return real_write(self, **kw)

    monkeypatch.setattr(Rise, "explain", counting_explain)
    monkeypatch.setattr(ItemWriter, "write", dying_write)
    args = ["explain", "-p", project, "-m", "cls", "quads", "-n", "r", "-q", "rise", "-s", "60"]
    first = datum(*args)
    assert first.code != 0
    run = project / "explanations" / "r"
    shards = sorted(run.glob("items/*.json"))
    assert len(shards) == 2  # what was finished; nothing assembled yet
    assert not (run / "annotations").exists()
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    assert "status: running" in datum("explain", "-p", project, "--list").out
    stamps = {p: p.stat().st_mtime_ns for p in shards}

    monkeypatch.setattr(ItemWriter, "write", real_write)
    explained.clear()
    second = datum(*args)
    assert second.code == 0, second
    assert len(explained) == 2  # only the two unfinished items
    assert "2 already done" in second.out
    assert {p: p.stat().st_mtime_ns for p in shards} == stamps
    assert len(items_of(run)) == 4

    explained.clear()  # a third run recomputes nothing
    assert datum(*args).code == 0 and not explained
    # Other parameters under the same name: refused, not mixed in.
    other = datum(*args[:-1], "61")
    assert other.code == 1 and "holds another run" in other.err


def test_remove_run_stays_inside_the_project(project, datum):
    assert datum("explain", "-p", project, "-m", "cls", "quads", "-n", "gone", "-q",
                 "--limit", "1", "rise", "-s", "30").code == 0
    run = project / "explanations" / "gone"
    assert run.is_dir()
    bad = datum("explain", "-p", project, "--remove", "../quads")
    assert bad.code == 1 and "bad run name" in bad.err
    assert (project / "quads").is_dir()
    unknown = datum("explain", "-p", project, "--remove", "nope")
    assert unknown.code == 1 and "unknown explanation run 'nope'" in unknown.err
    # A registry entry pointing outside explanations/ is refused, nothing deleted.
    registry = project / ".datumaro" / "explanations.yml"
    text = registry.read_text()
    registry.write_text(text.replace("path: explanations/gone", "path: quads"))
    planted = datum("explain", "-p", project, "--remove", "gone")
    assert planted.code == 1 and "refusing to delete" in planted.err
    assert (project / "quads").is_dir()
    registry.write_text(text)
    ok = datum("explain", "-p", project, "--remove", "gone")
    assert ok.code == 0 and not run.exists()
    assert "Explanation runs: none" in datum("explain", "-p", project, "--list").out


def test_report_renders_and_sorts_in_chromium(finished_run, tmp_path):
    from chromium_cdp import Browser, find_chromium

    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium): "
                    "the report's browser test needs it")
    _, run = finished_run
    shots = Path(__file__).parent / "artifacts"
    shots.mkdir(exist_ok=True)
    with Browser(binary) as browser:
        browser.open((run / "report.html").as_uri())
        assert browser.eval("document.body.dataset.rendered") == "4"
        rows = browser.eval("Array.from(document.querySelectorAll('#body tr'))"
                            ".map(r => r.dataset.key)")
        assert rows == ["train/q0", "train/q1", "val/q2", "val/q3"]
        # Thumbnails are the run's own overlays and load from disk.
        loaded = browser.eval(
            "new Promise(done => setTimeout(() => done(Array.from("
            "document.querySelectorAll('img.thumb')).map(i => i.naturalWidth)), 300))")
        assert loaded == [W] * 4
        # Sort by score, ascending then descending.
        scores_js = ("Array.from(document.querySelectorAll('#body td[data-col=sc]'))"
                     ".map(td => parseFloat(td.textContent))")
        browser.eval("document.querySelector('th[data-key=sc]').click()")
        up = browser.eval(scores_js)
        assert up == sorted(up) and len(up) == 4
        browser.eval("document.querySelector('th[data-key=sc]').click()")
        assert browser.eval(scores_js) == sorted(up, reverse=True)
        # Wrong predictions first, then the detail view with both maps of q2.
        browser.eval("var s = document.getElementById('preset'); s.value = 'wrong';"
                     "s.dispatchEvent(new Event('change'))")
        first = browser.eval("document.querySelector('#body tr').dataset.key")
        assert first == "val/q2"
        browser.screenshot(shots / "report-sorted.png")
        browser.eval("document.querySelector('#body tr').click()")
        captions = browser.eval("Array.from(document.querySelectorAll('#dmaps figcaption'))"
                                ".map(c => c.textContent)")
        assert len(captions) == 2 and "(gt)" in captions[0] and "(pred)" in captions[1]
        browser.screenshot(shots / "report-detail.png")
    assert (shots / "report-sorted.png").stat().st_size > 10_000


def test_selection_counts_items_without_images():
    from datumaro import Dataset
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image

    from explain_plugin.selection import Selection, SelectionStats, parse_ids, select_items

    img = Image.from_numpy(np.zeros((4, 4, 3), np.uint8))
    dataset = Dataset.from_iterable(
        [DatasetItem(id=f"a{i}", subset="s1" if i % 2 else "s2", media=img) for i in range(6)]
        + [DatasetItem(id="none", subset="s1"),
           DatasetItem(id="gone", subset="s1", media=Image.from_file("/nonexistent.png"))])
    stats = SelectionStats()
    got = [i.id for i in select_items(dataset, Selection(subsets=["s1"]), stats)]
    assert got == ["a1", "a3", "a5"] and stats.skipped_no_image == 2
    stats = SelectionStats()
    got = [i.id for i in select_items(dataset, Selection(limit=2, ids=parse_ids("a0,s1/a1,a2")),
                                      stats)]
    assert got == ["a0", "a1"] and stats.selected == 2


def test_target_spec_and_item_targets():
    from explain_plugin.errors import CliError
    from explain_plugin.item_targets import (
        GroundTruth, parse_target_spec, resolve_item_targets,
    )

    assert not parse_target_spec("top:2").per_item
    assert parse_target_spec("top:2").pred_spec == "top:2"
    spec = parse_target_spec("gt,pred")
    assert spec.gt and spec.pred and spec.pred_spec == "top:1"
    assert not parse_target_spec("gt").pred
    with pytest.raises(CliError):
        parse_target_spec("gt,cat")
    gt = GroundTruth(names=["bottom_right", "zebra"])
    scores = np.array([0.1, 0.2, 0.6, 0.1], np.float32)
    both = resolve_item_targets(spec, gt, LABELS, lambda: scores)
    assert both.class_ids == [3, 2] and both.roles == {3: "gt", 2: "pred"}
    assert both.missing_gt == ["zebra"]
    agree = resolve_item_targets(spec, GroundTruth(names=["bottom_left"]), LABELS, lambda: scores)
    assert agree.class_ids == [2] and agree.roles == {2: "gt+pred"}


def test_progress_bar_is_off_when_quiet_or_not_a_terminal(monkeypatch):
    import sys

    from explain_plugin.item_pipeline import progress_bar

    assert progress_bar(10, 0, quiet=True) is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress_bar(10, 0, quiet=False) is None


def test_report_of_10000_items_renders_one_page(tmp_path):
    from chromium_cdp import Browser, find_chromium

    from explain_plugin.store.report import PAGE_SIZE, write_report

    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    rng = np.random.default_rng(0)
    scores = rng.random(10_000)
    shards = ({"key": f"val/{i:05d}", "subset": "val", "gt": [LABELS[i % 4]],
               "pred": LABELS[(i // 3) % 4], "correct": LABELS[i % 4] == LABELS[(i // 3) % 4],
               "targets": [{"label": LABELS[i % 4], "role": "pred", "score": float(s),
                            "overlay": "missing.png", "heatmap": "missing.npy",
                            "pointing": int(i % 5 == 0)}]}
              for i, s in enumerate(scores))
    report = tmp_path / "report.html"
    summary = {"method": "rise", "model": "m", "target": "t", "run": "r", "accuracy": None}
    assert write_report(report, "big", summary, ["pointing"], shards) == 10_000
    wrong = sum(LABELS[i % 4] != LABELS[(i // 3) % 4] for i in range(10_000))
    with Browser(binary) as browser:
        browser.open(report.as_uri())
        assert browser.eval("document.body.dataset.rendered") == str(PAGE_SIZE)
        assert browser.eval("document.querySelectorAll('#body tr').length") == PAGE_SIZE
        assert browser.eval("document.getElementById('count').textContent") \
            == "10000 of 10000 items"
        browser.eval("document.querySelector('th[data-key=sc]').click()")
        first = browser.eval("parseFloat(document.querySelector('#body td[data-col=sc]')"
                             ".textContent)")
        assert first == pytest.approx(scores.min(), abs=1e-3)
        browser.eval("var w = document.getElementById('wrong'); w.checked = true;"
                     "w.dispatchEvent(new Event('change'))")
        assert browser.eval("document.getElementById('count').textContent") \
            == f"{wrong} of 10000 items"
