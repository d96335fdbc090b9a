"""Quality metrics of maps, through the engine, on the known-answer classifier."""
from __future__ import annotations

import numpy as np
import pytest

from explain_plugin.launchers.openvino import OpenVinoLauncher
from explain_plugin.methods.base import ItemInfo
from explain_plugin.methods.engine import Evaluator
from explain_plugin.methods.metrics import auc, box_scores, evaluate_maps, rank, step_masks
from explain_plugin.methods.occlusion import Occlusion
from explain_plugin.methods.targets import TargetSpec, resolve
from explain_plugin.methods.view import view_of
from explain_plugin.samples import known_answer


def test_auc_rank_steps_area_boxes():
    assert auc(np.array([1.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert auc(np.array([1.0, 0.0, 0.0])) == pytest.approx(0.25)
    sal = np.array([[0.1, 0.9], [0.5, 0.5]])
    assert rank(sal).tolist() == [[3, 0], [1, 2]]
    steps = step_masks(sal, 4)
    assert steps.shape == (5, 2, 2) and steps.sum(axis=(1, 2)).tolist() == [0, 1, 2, 3, 4]
    peak_in, share = box_scores(np.array([[0, 1], [0, 3.0]]), [(1, 1, 2, 2)])
    assert peak_in and share == pytest.approx(0.75)


@pytest.fixture(scope="module")
def setup(known_models):
    xml = known_models["classifier"]
    launcher = OpenVinoLauncher(description=str(xml), interpreter=str(known_models["classifier_0x"]))
    image = np.full((96, 128, 3), 90, np.uint8)
    image[:48, 64:] = 200  # top_right wins
    view = view_of(launcher, image)
    scorer, targets = resolve(launcher, view, TargetSpec("default"))
    return launcher, view, scorer, targets


def test_good_map_beats_its_opposite(setup):
    launcher, view, scorer, targets = setup
    assert targets[0].name == "top_right"
    h, w = 24, 32
    region = known_answer.classifier_region_masks(h, w)[1].astype(np.float32)
    ramp = np.linspace(0, 0.01, h * w, dtype=np.float32).reshape(h, w)  # no ties
    good, bad = region + ramp, 1 - region + ramp
    ev = Evaluator(launcher, view, scorer, Occlusion.of(view.pixels, "0"))
    gt = ItemInfo("x", boxes=[("top_right", (64.0, 0.0, 128.0, 48.0))])
    (g,), (b,) = (evaluate_maps(ev, m[None], targets, item=gt, steps=10) for m in (good, bad))
    assert g["deletion_auc"] < b["deletion_auc"] and g["insertion_auc"] > b["insertion_auc"]
    assert g["area"] is not None and g["area"] <= 0.3
    assert b["area"] > g["area"] + 0.3
    assert g["pointing"] and g["energy_in_box"] > 0.9
    assert not b["pointing"] and b["energy_in_box"] < 0.1
    curves, searches = 2 * 2 * 11, ev.counts["metrics"] - 2 * 2 * 11
    assert 2 * 2 <= searches <= 2 * (2 + 4)  # the area search: 2 ends + <= log2(10) probes
    assert curves > 0


def test_targets_beyond_the_cap_get_none(setup):
    launcher, view, _, _ = setup
    scorer, targets = resolve(launcher, view, TargetSpec("all"))
    ev = Evaluator(launcher, view, scorer, Occlusion.of(view.pixels, "0"))
    maps = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    out = evaluate_maps(ev, maps, targets, steps=4, max_targets=2)
    assert out[2] is None and out[3] is None and "pointing" not in out[0]
    assert out[1]["area"] is None or out[1]["area"] >= 0  # bottom-left: maybe never wins
    assert 2 * 2 * 5 < ev.counts["metrics"] <= 2 * (2 * 5 + 2 + 2)
