"""RISE and D-RISE on known-answer models: the right regions light up, deterministically."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import grey_noise

from explain_plugin.launchers.openvino import OpenVinoLauncher
from explain_plugin.methods.rise import Rise
from explain_plugin.samples import known_answer

SAMPLE = Path(__file__).parents[1] / "sample_projects" / "known_answer"


def rise(**params) -> Rise:
    return Rise.with_defaults(**params)


def final(method: Rise, launcher, image):
    snaps = list(method.explain(launcher, image))
    assert snaps[-1].final
    return snaps


def test_each_class_lights_up_its_own_region(classifier):
    image = grey_noise(96, 144)  # non-square, not the model's 48x64 aspect
    snap = final(rise(max_samples=2000, targets="all", seed=1), classifier, image)[-1]
    assert [t.name for t in snap.targets] == known_answer.CLASSIFIER_LABELS
    h, w = snap.maps.shape[1:]
    regions = known_answer.classifier_region_masks(h, w)
    for k, (saliency, raw, baseline) in enumerate(zip(snap.maps, snap.raw, snap.baseline)):
        assert np.isfinite(saliency).all()
        positive = np.clip(raw - baseline, 0, None)  # evidence above the mean score
        share = positive[regions[k]].sum() / positive.sum()
        assert share >= 0.9, (k, share)
        assert saliency[regions[k]].mean() > 2.5 * saliency[~regions[k]].mean()


def test_each_box_map_peaks_inside_its_box(detector):
    image = grey_noise(120, 100)
    snap = final(rise(max_samples=1000, seed=2), detector, image)[-1]
    assert len(snap.targets) == 3
    h, w = snap.maps.shape[1:]
    for target, saliency in zip(snap.targets, snap.maps):
        y, x = np.unravel_index(np.argmax(saliency), saliency.shape)
        x1, y1, x2, y2 = target.box
        assert x1 <= (x + 0.5) * 100 / w <= x2 and y1 <= (y + 0.5) * 120 / h <= y2, target


def test_same_seed_same_maps_other_seed_other_maps(classifier):
    image = grey_noise(60, 80)
    a = final(rise(max_samples=200, seed=7), classifier, image)[-1].maps
    b = final(rise(max_samples=200, seed=7, batch_size=3), classifier, image)[-1].maps
    c = final(rise(max_samples=200, seed=8), classifier, image)[-1].maps
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.abs(a - c).max() > 1e-2


def test_progressive_final_equals_plain(classifier):
    image = grey_noise(50, 70)
    plain = final(rise(max_samples=300, seed=4, snapshot_every=50), classifier, image)
    progressive = final(rise(max_samples=300, seed=4, progressive=True, snapshot_every=50),
                        classifier, image)
    assert len(plain) == 1 and len(progressive) == 6
    assert [s.masks_used for s in progressive] == [50, 100, 150, 200, 250, 300]
    np.testing.assert_array_equal(plain[-1].maps, progressive[-1].maps)


def test_converge_stops_early(classifier):
    snaps = final(rise(max_samples=4000, seed=4, converge=0.05, snapshot_every=100),
                  classifier, grey_noise(50, 70))
    assert snaps[-1].converged and snaps[-1].masks_used < 4000
    assert snaps[-1].extra["noise"] < 0.05 <= snaps[-2].extra["noise"]


def build_constant_model(out: Path) -> Path:
    import openvino as ov
    from openvino import opset13 as ops

    x = ops.parameter([-1, 3, 32, 32], np.float32, name="input")
    zero = ops.multiply(ops.reduce_mean(x, [1, 2, 3], keep_dims=False), np.float32(0))
    logits = ops.add(ops.unsqueeze(zero, [1]), np.full((1, 4), 100.0, np.float32))  # NaN bait
    xml = out / "constant.xml"
    ov.save_model(ov.Model([logits], [x], "constant"), xml, compress_to_fp16=False)
    return xml


def test_constant_model_gives_no_nan(tmp_path, known_models):
    xml = build_constant_model(tmp_path)
    launcher = OpenVinoLauncher(description=str(xml), interpreter=str(known_models["classifier_0x"]))
    snap = final(rise(max_samples=64, targets="all"), launcher, grey_noise(40, 40))[-1]
    assert np.isfinite(snap.maps).all()
    assert (snap.maps == 0).all()
    assert all(np.isfinite(t.score) for t in snap.targets)


@pytest.mark.parametrize("mask_value", ["0", "mean", "blur"])
def test_mask_values(classifier, mask_value):
    image = np.full((64, 96, 3), 70, np.uint8)
    image[:32, 48:] = 190  # top_right differs from the mean and from a blur of it
    snap = final(rise(max_samples=500, mask_value=mask_value, targets="top_right", seed=5),
                 classifier, image)[-1]
    h, w = snap.maps.shape[1:]
    region = known_answer.classifier_region_masks(h, w)[1]
    assert snap.maps[0][region].mean() > 2 * snap.maps[0][~region].mean()


def test_large_photo_is_masked_at_model_scale(classifier, known_models):
    assert classifier.view_size((3000, 4000)) == (48, 64)  # warp: the input itself
    xml = known_models["classifier"]
    crop = OpenVinoLauncher(description=str(xml), interpreter=str(known_models["classifier_0x"]),
                            rescale="crop")
    assert crop.view_size((3000, 4000)) == (48, 64)
    assert crop.view_size((3000, 3000)) == (64, 64)  # then the centre 48 x 64 is cropped
    snap = final(rise(max_samples=16), crop, np.zeros((3000, 3000, 3), np.uint8))[-1]
    assert snap.maps.shape[1:] == (56, 56)


# The command, as users run it ------------------------------------------------

@pytest.fixture
def project(tmp_path) -> Path:
    dst = tmp_path / "known_answer"
    shutil.copytree(SAMPLE, dst, ignore=shutil.ignore_patterns("explanations"))
    return dst


def test_datumaro_command_line_works_on_the_sample_project(datum, project):
    image = project / "images" / "top_right.png"
    result = datum("explain", "-p", project, "-t", image, "-m", "classifier", "rise",
                   "--max-samples", "1000")
    assert result.code == 0, result
    run_dir = next((project / "explanations").iterdir())
    assert str(run_dir) in result.out
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["parameters"]["max_samples"] == 1000
    assert manifest["items"]["top_right"]["targets"][0]["name"] == "top_right"
    heat = cv2.imread(str(run_dir / "top_right-heatmap-0.png"), cv2.IMREAD_UNCHANGED)
    sal = np.load(run_dir / "top_right-top_right.npy")
    assert heat.shape == sal.shape == (120, 160) and sal.dtype == np.float16
    assert sal[:60, 80:].mean() > 2 * sal[60:, :].mean()
    assert np.unravel_index(np.argmax(sal), sal.shape) >= (0, 80)
    assert cv2.imread(str(run_dir / "top_right-top_right-overlay.png")).shape == (120, 160, 3)


def test_datumaro_flags_parse_as_before(datum, project, tmp_path):
    out = tmp_path / "out"
    result = datum("explain", "-p", project, "-m", "detector", "-o", out,
                   "-t", project / "images" / "boxes.png", "rise", "-s", "40", "--mw", "5",
                   "--mh", "6", "--prob", "0.4", "--iou", "0.8", "--nms", "0.3", "--conf", "0.1",
                   "-b", "4", "--progressive", "--every", "20", "--display")
    assert result.code == 0, result
    params = json.loads((out / "run.json").read_text())["parameters"]
    assert params["max_samples"] == 40 and params["mask_width"] == 5
    assert params["mask_height"] == 6 and params["prob"] == 0.4
    assert params["iou_thresh"] == 0.8 and params["nms_iou_thresh"] == 0.3
    assert params["det_conf_thresh"] == 0.1 and params["progressive"] is True
    assert len(list((out / "progress").glob("boxes-*.png"))) == 3  # 3 boxes x 1 snapshot
    assert "no GUI support" in result.err


def test_positional_target_and_resume(datum, project, tmp_path):
    out = tmp_path / "run"
    args = ("explain", "-p", project, "-m", "classifier-1x", "-o", out, "images", "rise",
            "-s", "50")
    first = datum(*args)
    assert first.code == 0 and "Explained 3 item(s)" in first.out, first
    manifest = json.loads((out / "run.json").read_text())
    assert set(manifest["items"]) == {"noise", "top_right", "boxes"}
    shards = {json.loads(p.read_text())["id"]: p for p in out.glob("items/*.json")}
    shards["noise"].unlink()  # as if interrupted before the last item
    second = datum(*args)
    assert second.code == 0 and "Explained 1 item(s) (2 already done)" in second.out, second
    other = datum("explain", "-p", project, "-m", "classifier", "-o", out, "images", "rise",
                  "-s", "60")
    assert other.code == 1 and "another run" in other.err


def test_bad_targets_is_one_line(datum, project):
    result = datum("explain", "-p", project, "-m", "classifier", "-t",
                   project / "images" / "noise.png", "rise", "--targets", "zebra")
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.strip().count("\n") == 0 and "zebra" in result.err


def test_a_plugin_adds_a_method(datum, project):
    import click

    from explain_plugin.hookspecs import hookimpl
    from explain_plugin.methods.base import ExplainMethod, Snapshot, ExplainedTarget
    from explain_plugin.plugins import make_plugin_manager

    class Centre(ExplainMethod):
        name = "centre"
        help = "Says the centre matters."

        @classmethod
        def options(cls):
            return [click.Option(["--size"], type=int, default=9)]

        def explain(self, launcher, image, progress=None):
            maps = np.zeros((1, self.params["size"], self.params["size"]), np.float32)
            maps[0, self.params["size"] // 2, self.params["size"] // 2] = 1
            yield Snapshot(maps, [ExplainedTarget(0, "centre", 1.0)], 1, final=True)

    class Plugin:
        @hookimpl
        def register_explain_methods(self, register):
            register(Centre)

    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(Plugin())
    result = datum("explain", "-p", project, "-m", "classifier", "-t",
                   project / "images" / "noise.png", "centre", "--size", "5", pm=pm)
    assert result.code == 0, result
    run_dir = next((project / "explanations").iterdir())
    assert (run_dir / "noise-centre.npy").is_file()


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_rgba_images(datum, project, tmp_path, channels):
    image = np.full((90, 70, channels), 80, np.uint8)
    image[:45, 35:, :3] = 220  # the top-right quadrant, in every colour channel
    if channels == 4:
        image[..., 3] = 255
    path = tmp_path / f"c{channels}.png"
    cv2.imwrite(str(path), image[..., 0] if channels == 1 else image)
    out = tmp_path / "out"
    result = datum("explain", "-p", project, "-m", "classifier", "-o", out, "-t", path, "rise",
                   "-s", "300")
    assert result.code == 0, result
    sal = np.load(out / f"c{channels}-top_right.npy")
    assert sal.shape == (90, 70) and sal[:45, 35:].mean() > sal[45:].mean()


# Same maps as before the shared core -------------------------------------------

def _rise_before_the_core(launcher, image, n, seed, every=100, batch=None, mask_value="0"):
    """RISE as it was before the method core (launcher.stream, batches cut on snapshot
    boundaries, the clean image's top class), kept here as the reference."""
    from explain_plugin.launchers.predictions import scores_from_annotations
    from explain_plugin.methods.occlusion import mask_base
    from explain_plugin.methods.rise import MaskGenerator, SaliencyAccumulator

    h0, w0 = image.shape[:2]
    wh, ww = launcher.view_size((h0, w0))
    work = image.astype(np.float32)
    if (wh, ww) != (h0, w0):
        work = cv2.resize(work, (ww, wh), interpolation=cv2.INTER_AREA)
    sh, sw = min(wh, 56), min(ww, 56)
    base = mask_base(work, mask_value, max(wh / 7, ww / 7))
    num = len(launcher.categories)
    cls = int(np.argmax(scores_from_annotations([launcher.predict([work])[0]], num)[0]))
    gen = MaskGenerator(7, 7, 0.5, seed)
    acc = SaliencyAccumulator(1, sh, sw, 0.5, density=True)
    batch = batch or launcher.batch_size
    pending = []

    def batches():
        planned = 0
        while planned < n:
            count = min(batch, n - planned, every - planned % every)
            grids, shifts = gen.sample(count)
            pending.append((grids, shifts))
            yield base + gen.render(grids, shifts, wh, ww)[..., None] * (work - base)
            planned += count

    for anns in launcher.stream(batches()):
        grids, shifts = pending.pop(0)
        weights = scores_from_annotations(anns, num)[:, [cls]].T.copy()
        acc.add(weights, gen.render(grids, shifts, sh, sw).reshape(len(grids), -1))
    return acc.snapshot([]).maps


@pytest.mark.parametrize("shape,mask_value", [((48, 64), "0"), ((96, 144), "mean"), ((61, 83), "blur")])
def test_same_maps_as_before_the_core(classifier, shape, mask_value):
    image = grey_noise(*shape, seed=11)
    image[: shape[0] // 2, shape[1] // 2:] += 60  # top_right wins
    before = _rise_before_the_core(classifier, image, 300, seed=9, mask_value=mask_value)
    now = final(rise(max_samples=300, seed=9, mask_value=mask_value, metrics=False),
                classifier, image)[-1].maps
    np.testing.assert_allclose(now, before, atol=2e-6)


def test_no_padding_counted_and_full_batches(classifier):
    """100 masks per snapshot used to end batches at 12 x 8 + 4 (padded): now every
    batch but the last is full, and padding is never counted as masks."""
    sizes = []
    submit = classifier.submit

    def spy(images):
        sizes.append(len(images))
        return submit(images)

    classifier.submit = spy
    try:
        snap = final(rise(max_samples=300, seed=1, metrics=False), classifier, grey_noise(48, 64))[-1]
    finally:
        del classifier.submit
    assert snap.masks_used == 300 and snap.evaluations == {"rise": 300}
    assert sizes[:-1] == [8] * (len(sizes) - 1) and sum(sizes) == 300


def test_flat_map_is_zero_and_said_once(datum, project, tmp_path, known_models):
    xml = build_constant_model(tmp_path)
    result = datum("model", "add", "-p", project, "-n", "constant", "-l", "openvino", "--",
                   "-d", xml, "-i", known_models["classifier_0x"])
    assert result.code == 0, result
    out = tmp_path / "out"
    result = datum("explain", "-p", project, "-m", "constant", "-o", out,
                   "-t", project / "images" / "noise.png", "rise", "-s", "64")
    assert result.code == 0, result
    assert result.err.count("flat map") == 1 and "all 0" in result.err
    item = json.loads((out / "run.json").read_text())["items"]["noise"]
    assert any("flat" in n for n in item["notes"])
    assert (np.load(next(out.glob("noise-*.npy"))) == 0).all()


def test_metrics_in_run_json_and_no_metrics(datum, project, tmp_path):
    image = project / "images" / "top_right.png"
    out = tmp_path / "m"
    result = datum("explain", "-p", project, "-m", "classifier", "-o", out, "-t", image, "rise",
                   "-s", "200", "--metric-steps", "10")
    assert result.code == 0, result
    item = json.loads((out / "run.json").read_text())["items"]["top_right"]
    metrics = item["targets"][0]["metrics"]
    assert metrics["steps"] == 10 and metrics["deletion_auc"] < metrics["insertion_auc"]
    assert 0 < metrics["area"] <= 0.5  # the top-right quadrant and a margin
    assert item["evaluations"]["rise"] == 200 and item["evaluations"]["metrics"] >= 22
    out2 = tmp_path / "n"
    result = datum("explain", "-p", project, "-m", "classifier", "-o", out2, "-t", image, "rise",
                   "-s", "200", "--no-metrics")
    item = json.loads((out2 / "run.json").read_text())["items"]["top_right"]
    assert "metrics" not in item["targets"][0] and item["evaluations"] == {"rise": 200}


def test_per_item_targets_resolve_to_given_classes_and_boxes(classifier, detector):
    from explain_plugin.methods.base import ExplainedTarget
    from explain_plugin.methods.targets import item_targets, resolve
    from explain_plugin.methods.view import view_of

    image = grey_noise(120, 100)
    view = view_of(detector, image)
    given = item_targets([ExplainedTarget(1, "dog", 1.0, (55.0, 12.0, 95.0, 72.0))])
    scorer, targets = resolve(detector, view, given, iou=0.5)
    assert [t.name for t in targets] == ["dog"]
    np.testing.assert_allclose(targets[0].box, (55, 12, 95, 72), atol=1e-3)
    clean = scorer.answer([detector.predict([view.pixels])[0]])
    assert clean.hit.tolist() == [[True]]  # the detector's own dog box matches it
    scorer, targets = resolve(classifier, view_of(classifier, image),
                              item_targets([ExplainedTarget(2, "bottom_left", 1.0)]))
    assert [t.name for t in targets] == ["bottom_left"]
