"""The ``segments`` method (multi-scale superpixel sampling) on known-answer models."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import grey_noise

from explain_plugin.methods.segments import Segments, superpixels
from explain_plugin.samples import known_answer

SAMPLE = Path(__file__).parents[1] / "sample_projects" / "known_answer"


def run(launcher, image, **params):
    snaps = list(Segments.with_defaults(**params).explain(launcher, image))
    assert len(snaps) == 1 and snaps[-1].final
    return snaps[-1]


def test_superpixels_cover_the_image_with_about_the_asked_count():
    image = cv2.GaussianBlur(grey_noise(60, 90).astype(np.float32), (0, 0), 3)
    image[:, 45:] += 60  # a vertical edge the segments must not cross
    labels = superpixels(image, 24, (60, 90))
    count = labels.max() + 1
    assert labels.shape == (60, 90) and labels.min() == 0
    assert set(np.unique(labels)) == set(range(count)) and 12 <= count <= 30
    left, right = set(np.unique(labels[:, :44])), set(np.unique(labels[:, 46:]))
    assert not left & right
    np.testing.assert_array_equal(labels, superpixels(image, 24, (60, 90)))


def test_each_class_lights_up_its_own_region(classifier):
    image = grey_noise(96, 144)  # non-square, not the model's 48x64 aspect
    snap = run(classifier, image, max_samples=1000, targets="all", seed=1)
    assert [t.name for t in snap.targets] == known_answer.CLASSIFIER_LABELS
    h, w = snap.maps.shape[1:]
    regions = known_answer.classifier_region_masks(h, w)
    for k, (saliency, raw) in enumerate(zip(snap.maps, snap.raw)):
        assert np.isfinite(saliency).all()
        positive = np.clip(raw, 0, None)
        share = positive[regions[k]].sum() / positive.sum()
        assert share >= 0.9, (k, share)
        assert saliency[regions[k]].mean() > 2.5 * saliency[~regions[k]].mean()
    assert snap.evaluations["segments"] == 1000


def test_each_box_map_peaks_inside_its_box(detector):
    image = grey_noise(120, 100)
    snap = run(detector, image, max_samples=600, seed=2)
    assert len(snap.targets) == 3
    h, w = snap.maps.shape[1:]
    for target, saliency in zip(snap.targets, snap.maps):
        y, x = np.unravel_index(np.argmax(saliency), saliency.shape)
        x1, y1, x2, y2 = target.box
        assert x1 <= (x + 0.5) * 100 / w <= x2 and y1 <= (y + 0.5) * 120 / h <= y2, target


def test_same_seed_same_maps_other_seed_other_maps(classifier):
    image = grey_noise(60, 80)
    a = run(classifier, image, max_samples=200, seed=7).maps
    b = run(classifier, image, max_samples=200, seed=7, batch_size=3).maps
    c = run(classifier, image, max_samples=200, seed=8).maps
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-2


def test_grey_image_and_metrics(classifier):
    image = np.full((90, 70), 80, np.uint8)
    image[45:, :35] = 220  # bottom-left quadrant
    snap = run(classifier, np.repeat(image[..., None], 3, axis=2), max_samples=300, metrics=True,
               metric_steps=10)
    assert snap.targets[0].name == "bottom_left"
    h, w = snap.maps.shape[1:]
    assert snap.maps[0][h // 2:, : w // 2].mean() > 2 * snap.maps[0][: h // 2].mean()
    m = snap.metrics[0]
    assert m["steps"] == 10 and 0 <= m["deletion_auc"] < m["insertion_auc"] <= 1
    # two 11-point curves, plus the area's binary search on the mask value (a few evaluations)
    assert 2 * 11 < snap.evaluations["metrics"] <= 2 * 11 + 8


def test_bad_levels_is_one_line(datum, tmp_path):
    result = datum("explain", "-m", "x", "-t", tmp_path / "none.png", "segments", "--levels", "a,1")
    assert result.code != 0 and "Traceback" not in result.err


@pytest.fixture
def project(tmp_path) -> Path:
    dst = tmp_path / "project"
    shutil.copytree(SAMPLE, dst, ignore=shutil.ignore_patterns("explanations", "predictions"))
    return dst


@pytest.mark.parametrize("channels", [1, 3])
def test_datumaro_command_line(datum, project, tmp_path, channels):
    image = np.full((90, 70, channels), 80, np.uint8)
    image[:45, 35:] = 220  # the top-right quadrant
    path = tmp_path / f"c{channels}.png"
    cv2.imwrite(str(path), image[..., 0] if channels == 1 else image)
    out = tmp_path / "out"
    result = datum("explain", "-p", project, "-m", "classifier", "-o", out, "-t", path,
                   "segments", "-s", "300")
    assert result.code == 0, result
    sal = np.load(out / f"c{channels}-top_right.npy")
    assert sal.shape == (90, 70) and sal[:45, 35:].mean() > 2 * sal[45:].mean()
    manifest = json.loads((out / "run.json").read_text())
    metrics = manifest["items"][f"c{channels}"]["targets"][0]
    assert "deletion_auc" in json.dumps(metrics), metrics


class _Answer:
    def __init__(self, scores):
        self.scores = scores[:, None]


def _drive(producer, weights, big):
    """Run a refinement producer against an additive 'model': the score is the summed
    weight of the kept pixels' segments."""
    masks = next(producer)
    try:
        while True:
            kept = np.array([weights[np.unique(big[m > 0.5])].sum() if m.any() else 0.0
                             for m in masks])
            masks = producer.send(_Answer(kept))
    except StopIteration as done:
        return done.value


def test_greedy_refinement_reorders_a_wrong_prior():
    big = np.repeat(np.arange(8), 4).reshape(4, 8)  # 8 segments of 4 pixels
    weights = np.array([0.0, 5.0, 1.0, 0.5, 9.0, 0.0, 2.0, 0.1])
    prior = np.array([7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])  # 4 ranked fifth
    from explain_plugin.methods.segments import refine
    from explain_plugin.methods.segments.render import SegmentRenderer

    chosen = _drive(refine.greedy(prior, SegmentRenderer(big), 0, steps=3, candidates=8, add=1), weights, big)
    assert chosen == [4, 1, 6]
    # a prior already in the right order is left alone (the check finds no gain)
    right = weights + 0.01 * np.arange(8)[::-1]
    assert _drive(refine.greedy(right, SegmentRenderer(big), 0, steps=3, candidates=8, add=1), weights, big) == []
    raw = np.linspace(0, 1, 32).reshape(4, 8)
    lifted = refine.lift(raw, big, chosen)
    top = [lifted[big == k].min() for k in chosen]
    assert top[0] > top[1] > top[2] > np.delete(lifted, np.isin(big, chosen).ravel()).max()


def test_refinement_is_counted_in_the_budget(classifier):
    image = grey_noise(96, 144)
    snap = run(classifier, image, max_samples=400, refine=0.5, targets="all", seed=3)
    assert snap.evaluations["segments"] <= 400 and snap.masks_used == snap.evaluations["segments"]
    none = run(classifier, image, max_samples=400, refine=0.0, targets="all", seed=3)
    assert none.evaluations["segments"] == 400


@pytest.mark.parametrize("method", [["rise", "-s", "100"], ["rex", "--iters", "3"],
                                    ["segments", "-s", "200"]])
def test_every_method_records_its_quality_in_run_json(datum, project, tmp_path, method):
    image = project / "images" / "top_right.png"
    out = tmp_path / "q"
    result = datum("explain", "-p", project, "-m", "classifier", "-o", out, "-t", image, *method)
    assert result.code == 0, result
    item = json.loads((out / "run.json").read_text())["items"]["top_right"]
    metrics = item["targets"][0]["metrics"]
    assert 0 <= metrics["deletion_auc"] < metrics["insertion_auc"] <= 1, metrics
    assert metrics["steps"] == 20 and item["evaluations"]["metrics"] >= 42


@pytest.mark.parametrize("count", [7, 300])  # OpenCV's table lookup, and numpy past 256 labels
def test_renderer_draws_exactly_the_kept_segments(count):
    from explain_plugin.methods.segments.render import SegmentRenderer

    rng = np.random.default_rng(1)
    labels = rng.integers(0, count, (20, 21))
    labels.flat[:count] = np.arange(count)  # every label present
    keep = rng.random((5, count)) < 0.5
    masks = SegmentRenderer(labels)(keep)
    assert masks.dtype == np.float32 and masks.shape == (5, 20, 21)
    np.testing.assert_array_equal(masks, keep[:, labels].astype(np.float32))
