"""The shared method core, module by module: occlusion, view, targets, scoring,
schedule, normalisation."""
from __future__ import annotations

import numpy as np
import pytest

from explain_plugin.errors import CliError
from explain_plugin.launchers.predictions import Detections
from explain_plugin.methods.base import ExplainedTarget
from explain_plugin.methods.normalize import flat_maps, normalize_maps
from explain_plugin.methods.occlusion import Occlusion, mask_base
from explain_plugin.methods.schedule import SnapshotSchedule
from explain_plugin.methods.scoring import Answer, BoxScorer, ClassScorer
from explain_plugin.methods.targets import (
    TargetSpec, item_targets, parse_targets, select_boxes, select_classes,
)
from explain_plugin.methods.view import EXACT_FLOAT_BYTES, upsample, view_of


# occlusion ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "mean", "blur"])
def test_blend_is_base_plus_mask_times_difference(value):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    masks = rng.uniform(0, 1, (5, 12, 10)).astype(np.float32)
    base = mask_base(image, value, cell=4)
    expected = base + masks[..., None] * (image - base)
    np.testing.assert_allclose(Occlusion(image, base)(masks), expected, rtol=1e-5, atol=1e-2)
    out = np.empty((5, 12, 10, 3), np.float32)
    assert Occlusion(image, base)(masks > 0.5, out=out) is out
    np.testing.assert_allclose(out[masks > 0.5], np.broadcast_to(image, out.shape)[masks > 0.5],
                               atol=1e-3)


def _datumaro_uint8(images: np.ndarray) -> np.ndarray:
    """What Datumaro's ImageFromNumpy.data makes of float pixels."""
    return np.clip(images, 0.0, 255.0).astype(np.uint8)


@pytest.mark.parametrize("value", ["0", "mean", "blur"])
@pytest.mark.parametrize("low, high, in_range", [(0, 255, True), (-80, 400, False)])
def test_8bit_blend_is_datumaros_reading_of_the_float_blend(value, low, high, in_range):
    rng = np.random.default_rng(3)
    image = rng.uniform(low, high, (30, 20, 3)).astype(np.float32)
    image[0, :3] = [low, high, 255]  # the extremes, and a pixel a blend keeps at 255
    occ = Occlusion(image, mask_base(image, value, cell=4))
    assert occ.in_range is in_range  # in range: the 8-bit blend skips the clip
    masks = rng.uniform(0, 1, (6, 30, 20)).astype(np.float32)
    masks[0] = 1.0
    masks[1, :5] = np.nextafter(np.float32(1), np.float32(2))  # interpolation round-off
    masks[2, :5] = -np.float32(1e-7)
    cases = [masks, masks > 0.5, masks.astype(np.float64)]
    if in_range:  # far outside [0, 1]: the clip is back
        cases.append(masks * 3 - 1)
    for m in cases:
        expected = _datumaro_uint8(occ(m))
        out = np.zeros((len(m), 30, 20, 3), np.uint8)
        assert occ(m, out=out) is out
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(occ(m, channels_first=True), occ(m).transpose(0, 3, 1, 2))
        first = np.zeros((len(m), 3, 30, 20), np.uint8)
        np.testing.assert_array_equal(occ(m, out=first, channels_first=True),
                                      _datumaro_uint8(occ(m, channels_first=True)))
        window = occ.window(slice(2, 20), slice(5, 15))
        part = np.zeros((len(m), 18, 10, 3), np.uint8)
        np.testing.assert_array_equal(window(m[:, 2:20, 5:15], out=part), expected[:, 2:20, 5:15])
    # more planes than cv2.merge takes: converted from the float blend
    wide = Occlusion(np.concatenate([image, image[..., :2]], axis=2), np.zeros((1, 1, 5), np.float32))
    out = np.zeros((6, 30, 20, 5), np.uint8)
    np.testing.assert_array_equal(wide(masks, out=out), _datumaro_uint8(wide(masks)))


def test_mask_bases():
    image = np.zeros((8, 8, 3), np.float32)
    image[:, :4] = 200
    assert (mask_base(image, "0") == 0).all()
    np.testing.assert_allclose(mask_base(image, "mean").ravel(), [100, 100, 100])
    blur = mask_base(image, "blur", cell=4)
    assert blur.shape == image.shape and 0 < blur[0, 3, 0] < 200 and 0 < blur[0, 4, 0] < 200
    with pytest.raises(ValueError):
        mask_base(image, "grey")


# view --------------------------------------------------------------------------
class _Scale:
    def __init__(self, hw):
        self.hw = hw

    def view_size(self, image_hw):
        return self.hw


def test_view_resizes_and_maps_boxes_back():
    image = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    view = view_of(_Scale((75, 100)), image)
    assert view.pixels.dtype == np.float32 and view.hw == (75, 100)
    assert view.scale == (4.0, 4.0)
    assert view.box_to_image((10, 5, 20, 15)) == (40, 20, 80, 60)
    assert view.box_to_view((40, 20, 80, 60)) == (10, 5, 20, 15)
    same = view_of(_Scale((300, 400)), image)
    np.testing.assert_array_equal(same.pixels, image)


def test_big_image_is_resized_before_float_conversion(monkeypatch):
    """Above EXACT_FLOAT_BYTES the 8-bit image is resized first: no full-size float32 copy."""
    import explain_plugin.methods.view as view_mod

    monkeypatch.setattr(view_mod, "EXACT_FLOAT_BYTES", 1000)
    image = np.full((200, 300, 3), 7, np.uint8)
    seen = []
    real = np.ndarray.astype

    class Spy(np.ndarray):
        def astype(self, dtype, *a, **k):
            seen.append(self.shape)
            return real(self, dtype, *a, **k)

    view = view_of(_Scale((20, 30)), image.view(Spy))
    assert view.hw == (20, 30) and (view.pixels == 7).all()
    assert (200, 300, 3) not in seen
    assert EXACT_FLOAT_BYTES >= 64 * 2**20


def test_upsample_takes_any_number_of_maps():
    maps = np.random.default_rng(2).random((600, 4, 5)).astype(np.float32)
    up = upsample(maps, 8, 10)
    assert up.shape == (600, 8, 10) and np.isclose(up[599].mean(), maps[599].mean(), atol=0.1)


# normalisation -------------------------------------------------------------------
def test_round_off_maps_are_flat_real_maps_are_not():
    rng = np.random.default_rng(3)
    constant = 0.25 * (1 + rng.integers(-8, 9, (1, 16, 16)) * np.finfo(np.float32).eps)
    real = 0.25 + 1e-3 * rng.random((1, 16, 16))
    maps = np.concatenate([constant, real, np.zeros((1, 16, 16))]).astype(np.float32)
    assert flat_maps(maps).tolist() == [True, False, True]
    out = normalize_maps(maps)
    assert (out[0] == 0).all() and (out[2] == 0).all() and np.isfinite(out).all()
    assert out[1].min() == 0 and out[1].max() == 1


# targets -----------------------------------------------------------------------
def test_parse_targets():
    labels = ["cat", "dog", "car"]
    assert parse_targets(None, labels) == TargetSpec("default")
    assert parse_targets("top:2", labels) == TargetSpec("top", 2)
    assert parse_targets("all", labels) == TargetSpec("all")
    assert parse_targets("dog, 2", labels) == TargetSpec("labels", [1, 2])
    kind, value = parse_targets("top", labels)
    assert (kind, value) == ("top", 1)
    for bad in ("zebra", "top:0", ",", "7"):
        with pytest.raises(CliError):
            parse_targets(bad, labels)


def test_select_classes_and_boxes():
    scores = np.array([0.1, 0.7, 0.2], np.float32)
    assert select_classes(scores, TargetSpec("default")).tolist() == [1]
    assert select_classes(scores, TargetSpec("top", 2)).tolist() == [1, 2]
    assert select_classes(scores, TargetSpec("all")).tolist() == [0, 1, 2]
    assert select_classes(scores, item_targets([ExplainedTarget(0, "cat", 1.0)])).tolist() == [0]
    labels, det_scores = np.array([2, 0, 2]), np.array([0.5, 0.9, 0.7], np.float32)
    assert select_boxes(labels, det_scores, TargetSpec("labels", [2])).tolist() == [2, 0]
    assert select_boxes(labels, det_scores, TargetSpec("top", 1)).tolist() == [1]
    assert select_boxes(labels, det_scores, TargetSpec("default")).tolist() == [1, 2, 0]


# scoring -----------------------------------------------------------------------
def _labels(rows):
    from datumaro.components.annotation import Label

    return [[Label(c, attributes={"score": float(s)}) for c, s in enumerate(r)] for r in rows]


def test_class_scorer_rows_columns_and_hit():
    scorer = ClassScorer(np.array([2, 0]), 3)
    answer = scorer.answer(_labels([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]))
    np.testing.assert_allclose(answer.scores, [[0.7, 0.1], [0.1, 0.6]])
    assert answer.hit.tolist() == [[True, False], [False, True]]
    assert answer.classes.shape == (2, 3)
    np.testing.assert_allclose(scorer(_labels([[0.1, 0.2, 0.7]])), [[0.7], [0.1]])
    tie = scorer.answer(_labels([[0.5, 0.5, 0.5]]))
    assert not tie.hit.any()  # a model that ignores its input answers nothing
    joined = Answer.join([answer.rows(0, 1), answer.rows(1, 2)])
    np.testing.assert_array_equal(joined.scores, answer.scores)


def test_box_scorer_match_and_hit():
    from datumaro.components.annotation import Bbox

    targets = Detections(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32),
                         np.array([1, 2]), np.array([0.9, 0.8], np.float32))
    scorer = BoxScorer(targets, 3, iou_thresh=0.5)
    anns = [
        [Bbox(0, 0, 10, 10, label=1, attributes={"score": 0.6})],  # same box, same label
        [Bbox(0, 0, 10, 10, label=2, attributes={"score": 0.6})],  # same box, other label
        [Bbox(20, 20, 10, 10, label=2, attributes={"score": 0.5})],  # IoU 0.25 < 0.5
        [],
    ]
    answer = scorer.answer(anns)
    np.testing.assert_allclose(answer.scores[:, 0], [0.6, 0, 0, 0])
    assert answer.hit.tolist() == [[True, False], [False, False], [False, False], [False, False]]
    assert answer.classes is None


# schedule ----------------------------------------------------------------------
def test_schedule_chunks_align_on_snapshots_and_due():
    s = SnapshotSchedule(total=250, every=100)
    chunks = list(s.chunks(8))
    assert sum(chunks) == 250 and max(chunks) == 8
    ends = np.cumsum(chunks)
    assert 100 in ends and 200 in ends
    assert not s.due(100)  # not wanted
    p = SnapshotSchedule(total=250, every=100, wanted=True)
    assert p.due(100) and p.due(200) and not p.due(250) and not p.due(96)
    c = SnapshotSchedule(total=250, every=50, tolerance=0.1)
    assert c.wanted and c.converged(0.05) and not c.converged(0.2)
    assert not SnapshotSchedule(10).converged(0.0)
