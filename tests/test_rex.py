"""ReX on known-answer models: explanations land in the region the answer depends on."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from explain_plugin.errors import CliError
from explain_plugin.launchers.openvino import OpenVinoLauncher
from explain_plugin.methods.base import NothingToExplain
from explain_plugin.methods.rex.method import Rex
from explain_plugin.samples import known_answer as ka
from explain_plugin.writers.rex import resize_mask

SAMPLE = Path(__file__).parents[1] / "sample_projects" / "known_answer"


def rex(launcher, image, **params):
    snaps = list(Rex.with_defaults(**{"iters": 8, "metrics": False, **params}).explain(
        launcher, image))
    assert len(snaps) == 1 and snaps[0].final
    return snaps[0]


def lit(h, w, levels, seed=0):
    """Grey noise with quadrant k at brightness ``levels[k]`` (+-10)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((h, w, 3), np.int16)
    for (y0, y1, x0, x1), v in zip(ka.classifier_regions(h, w), levels):
        image[y0:y1, x0:x1] = v
    return np.clip(image + rng.integers(-10, 11, image.shape), 0, 255).astype(np.uint8)


def logits(view_pixels, keep):
    """The classifier's exact logits for the view with only ``keep`` unoccluded (value 0)."""
    img = view_pixels * keep[..., None]
    small = cv2.resize(img, (64, 48), interpolation=cv2.INTER_LINEAR)
    return ka.classifier_reference(small.transpose(2, 0, 1)[None])[0]


def view(launcher, image):
    from explain_plugin.methods.view import view_of

    return view_of(launcher, image).pixels


@pytest.mark.parametrize("k", range(4))
def test_explanation_of_class_k_lies_in_region_k_and_suffices(classifier, k):
    levels = [70] * 4
    levels[k] = 200
    image = lit(96, 144, levels, seed=k)
    snap = rex(classifier, image)
    assert snap.targets[0].label == k
    (mask,) = snap.extra["explanations"][0]
    region = ka.classifier_region_masks(*mask.shape)[k]
    assert mask.any() and region[mask].all()
    assert logits(view(classifier, image), mask).argmax() == k
    rmap = snap.extra["responsibility"][0]
    assert rmap[region].mean() > 2 * rmap[~region].mean()
    stats = snap.extra["rex"]["targets"][0]
    assert stats["iterations"] == 8 and stats["total_passing"] > 0
    assert stats["search_evaluations"] <= snap.evaluations["rex"]
    assert np.isfinite(snap.maps).all() and snap.maps.max() == 1.0


def test_non_square_image_far_from_the_model_aspect(classifier):
    image = lit(210, 70, [70, 70, 70, 210])  # tall; the model is 48x64
    snap = rex(classifier, image)
    (mask,) = snap.extra["explanations"][0]
    assert mask.shape == snap.maps.shape[1:]
    assert ka.classifier_region_masks(*mask.shape)[3][mask].all()
    full = resize_mask(mask, 210, 70)  # as written: at the image's size
    assert full.any() and ka.classifier_region_masks(210, 70)[3][full].all()


def test_a_class_that_is_not_the_top_one(classifier):
    image = lit(96, 144, [70, 220, 160, 70])  # bottom_left ranks 2nd
    snap = rex(classifier, image, targets="bottom_left")
    assert snap.targets[0].name == "bottom_left"
    (mask,) = snap.extra["explanations"][0]
    assert ka.classifier_region_masks(*mask.shape)[2][mask].all()
    scores = logits(view(classifier, image), mask)
    assert (scores > scores[2]).sum() <= 1  # still no lower than 2nd


def test_contrastive_occluding_it_loses_the_class(classifier):
    image = lit(96, 144, [70, 200, 70, 70])
    snap = rex(classifier, image, strategy="contrastive")
    (mask,) = snap.extra["explanations"][0]
    v = view(classifier, image)
    assert logits(v, mask).argmax() == 1
    assert logits(v, ~mask).argmax() != 1
    assert ka.classifier_region_masks(*mask.shape)[1][mask].mean() > 0.9


def test_spatial_and_multi(classifier):
    image = lit(96, 144, [70, 70, 200, 70])
    for strategy in ("spatial", "multi"):
        snap = rex(classifier, image, strategy=strategy, multi=2)
        masks = snap.extra["explanations"][0]
        assert 1 <= len(masks) <= 2
        v = view(classifier, image)
        for m in masks:
            assert ka.classifier_region_masks(*m.shape)[2][m].all()
            assert logits(v, m).argmax() == 2
        if len(masks) == 2:
            assert not (masks[0] & masks[1]).any()


def test_same_seed_same_map(classifier):
    image = lit(96, 144, [120, 70, 70, 160])
    a, b = (rex(classifier, image, seed=5, iters=4) for _ in range(2))
    c = rex(classifier, image, seed=6, iters=4)
    assert np.array_equal(a.extra["responsibility"], b.extra["responsibility"])
    assert np.array_equal(a.extra["explanations"][0][0], b.extra["explanations"][0][0])
    assert not np.array_equal(a.extra["responsibility"], c.extra["responsibility"])


def test_converge_stops_before_iters(classifier):
    image = lit(96, 144, [70, 70, 70, 200])
    snap = rex(classifier, image, converge=True, iters=40)
    used = snap.extra["rex"]["targets"][0]["iterations"]
    assert 6 <= used < 40 and snap.converged
    again = rex(classifier, image, converge=True, iters=40)
    assert np.array_equal(snap.extra["responsibility"], again.extra["responsibility"])


def test_each_detector_box_explanation_lies_inside_its_box(detector):
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, (128, 128, 3), dtype=np.uint8)
    snap = rex(detector, image, confidence_filter=0.5, iters=20)
    assert len(snap.targets) == 3
    for t, target in enumerate(snap.targets):
        (mask,) = snap.extra["explanations"][t]
        region = ka.detector_region_masks(*mask.shape)[target.label]
        assert mask.any() and region[mask].mean() >= 0.95, (target.name, region[mask].mean())


def build_constant_model(out: Path) -> Path:
    import openvino as ov
    from openvino import opset13 as ops

    x = ops.parameter([-1, 3, 32, 32], np.float32, name="input")
    zero = ops.multiply(ops.reduce_mean(x, [1, 2, 3], keep_dims=False), np.float32(0))
    logits_ = ops.add(ops.unsqueeze(zero, [1]), np.array([[1, 4, 2, 3]], np.float32))
    xml = out / "constant.xml"
    ov.save_model(ov.Model([logits_], [x], "constant"), xml, compress_to_fp16=False)
    return xml


def test_a_model_that_ignores_its_input_has_nothing_to_explain(tmp_path, known_models):
    xml = build_constant_model(tmp_path)
    launcher = OpenVinoLauncher(description=str(xml),
                                interpreter=str(known_models["classifier_0x"]))
    with pytest.raises(NothingToExplain) as info:
        rex(launcher, lit(40, 40, [70] * 4))
    message = str(info.value)
    assert "nothing to explain" in message and "top_right" in message and "\n" not in message


def test_config_file_uses_rex_keys(tmp_path, classifier):
    cfg = tmp_path / "rex.toml"
    cfg.write_text("[rex]\nseed = 7\n[causal]\niters = 3\ntree_depth = 2\n"
                   "[causal.distribution]\ndistribution = 'betabinom'\n"
                   "[rex.visual]\nprogress_bar = false\n")
    method = Rex.with_defaults(config=str(cfg), tree_depth=3)
    assert method.settings["iters"] == 3 and method.settings["seed"] == 7
    assert method.settings["tree_depth"] == 3  # the command line wins
    assert method.settings["distribution"] == "betabinom"
    snap = rex(classifier, lit(96, 144, [200, 70, 70, 70]), config=str(cfg), iters=None)
    assert snap.extra["rex"]["targets"][0]["max_depth_reached"] <= 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[causal\n")
    with pytest.raises(CliError, match="not valid TOML"):
        Rex.with_defaults(config=str(bad))


# The command, as users run it ------------------------------------------------

@pytest.fixture
def project(tmp_path) -> Path:
    dst = tmp_path / "known_answer"
    shutil.copytree(SAMPLE, dst, ignore=shutil.ignore_patterns("explanations"))
    return dst


def test_command_line_writes_rex_outputs_and_resumes(datum, project, tmp_path):
    out = tmp_path / "run"
    image = project / "images" / "top_right.png"
    args = ("explain", "-p", project, "-t", image, "-m", "classifier", "-o", out, "rex",
            "--iters", "6", "--seed", "1")
    result = datum(*args)
    assert result.code == 0, result
    manifest = json.loads((out / "run.json").read_text())
    entry = manifest["items"]["top_right"]
    assert entry["targets"][0]["name"] == "top_right"
    assert entry["rex"]["iterations"] == 6
    stats = entry["rex"]["targets"][0]
    assert {"total_passing", "total_failing", "max_depth_reached", "avg_box_size"} <= set(stats)
    assert entry["evaluations"]["rex"] > 0
    resp = np.load(out / "top_right-top_right-responsibility.npy")
    assert resp.shape == (120, 160) and resp.dtype == np.float32
    mask = cv2.imread(str(out / "top_right-top_right-explanation.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (120, 160) and set(np.unique(mask)) <= {0, 255}
    assert mask[:60, 80:].any() and not mask[60:, :].any() and not mask[:, :80].any()
    assert cv2.imread(str(out / "top_right-top_right-explanation-overlay.png")).shape == (120, 160, 3)
    assert (out / "top_right-heatmap-0.png").is_file()
    again = datum(*args)
    assert again.code == 0 and "already done" in again.out, again


def test_command_line_dataset_with_nothing_to_explain_goes_on(datum, project, tmp_path):
    out = tmp_path / "det"
    result = datum("explain", "-p", project, "-m", "detector", "-o", out, "images", "rex",
                   "--iters", "3", "--confidence-filter", "0.5", "--targets", "car")
    assert result.code == 0, result
    items = json.loads((out / "run.json").read_text())["items"]
    assert set(items) == {"noise", "top_right", "boxes"}
    assert all(t["name"] == "car" for e in items.values() for t in e["targets"])


def test_command_line_config_settings_are_part_of_the_run(datum, project, tmp_path):
    cfg = tmp_path / "rex.toml"
    cfg.write_text("[causal]\niters = 2\n")
    out = tmp_path / "cfg"
    args = ("explain", "-p", project, "-t", project / "images" / "top_right.png",
            "-m", "classifier", "-o", out, "rex", "-c", cfg, "--no-metrics")
    assert datum(*args).code == 0
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["parameters"]["config"]["settings"] == {"iters": 2}
    assert manifest["items"]["top_right"]["rex"]["iterations"] == 2
    cfg.write_text("[causal]\niters = 3\n")  # same path, other settings: another run
    again = datum(*args)
    assert again.code == 1 and "another run" in again.err
    cfg.write_text("[causal]\niters = 'x\n")
    bad = datum(*args)
    assert bad.code != 0 and "not valid TOML" in bad.err and "Traceback" not in bad.err


def test_python_api_explains_with_rex(classifier, tmp_path):
    from explain_plugin import api

    image = lit(96, 144, [70, 70, 200, 70])
    result = api.explain(classifier, image, "rex", iters=4, metrics=False)
    assert result.targets[0].name == "bottom_left" and result.maps.shape == (1, 96, 144)
    files = result.save(tmp_path, "x")
    assert "x-bottom_left-explanation.png" in files
    assert result.record(files)["rex"]["iterations"] == 4
