"""Annotations -> arrays: scores per class, detections per image."""
import numpy as np
import pytest
from datumaro.components.annotation import Bbox, Label, Points

from explain_plugin.errors import CliError
from explain_plugin.launchers.predictions import (
    Detections,
    detections_from_annotations,
    scores_from_annotations,
)


def test_scores_fill_returned_labels_and_zero_the_rest():
    batch = [
        [Label(0, attributes={"score": 0.25}), Label(2, attributes={"score": 0.75})],
        [],
        [Label(1, attributes={"score": 1.0}), Points([1, 2])],  # non-labels ignored
    ]
    scores = scores_from_annotations(batch, 3)
    assert scores.dtype == np.float32 and scores.shape == (3, 3)
    np.testing.assert_array_equal(scores, [[0.25, 0, 0.75], [0, 0, 0], [0, 1, 0]])


def test_scores_vector_attribute_fills_the_row():
    # Datumaro's classic classification samples return the top-1 label with all scores.
    batch = [[Label(1, attributes={"scores": [0.1, 0.7, 0.2]})]]
    np.testing.assert_allclose(scores_from_annotations(batch, 3), [[0.1, 0.7, 0.2]])


def test_scores_missing_score_names_the_script():
    with pytest.raises(CliError, match=r"net\.py: .*Label \(label 1\) without a numeric 'score'"):
        scores_from_annotations([[Label(1)]], 3, source="net.py")


def test_scores_label_outside_categories_names_the_script():
    with pytest.raises(CliError, match=r"net\.py: .*label 5, outside the model's 3 categories"):
        scores_from_annotations([[Label(5, attributes={"score": 1.0})]], 3, source="net.py")


def test_detections_from_bboxes():
    anns = [
        Bbox(1, 2, 10, 20, label=1, attributes={"score": 0.9, "probs": [0.05, 0.9, 0.05]}),
        Label(0, attributes={"score": 1.0}),
        Bbox(5, 5, 1, 1, label=0, attributes={"score": 0.4, "probs": [0.4, 0.3, 0.3]}),
    ]
    det = detections_from_annotations(anns, 3)
    assert len(det) == 2
    np.testing.assert_allclose(det.boxes, [[1, 2, 11, 22], [5, 5, 6, 6]])
    np.testing.assert_array_equal(det.labels, [1, 0])
    np.testing.assert_allclose(det.scores, [0.9, 0.4])
    assert det.boxes.dtype == np.float32 and det.labels.dtype == np.int64
    assert det.probs.shape == (2, 3) and det.probs.dtype == np.float32


def test_detections_probs_only_when_every_box_has_them():
    anns = [Bbox(0, 0, 1, 1, label=0, attributes={"score": 0.5, "probs": [1, 0]}),
            Bbox(0, 0, 1, 1, label=1, attributes={"score": 0.5})]
    assert detections_from_annotations(anns, 2).probs is None


def test_detections_empty():
    det = detections_from_annotations([Label(0, attributes={"score": 1.0})], 2)
    assert isinstance(det, Detections) and len(det) == 0 and det.boxes.shape == (0, 4)


@pytest.mark.parametrize(
    "ann, message",
    [
        (Bbox(0, 0, 1, 1, label=0), "without a numeric 'score'"),
        (Bbox(0, 0, 1, 1, label=3, attributes={"score": 1}), "label 3, outside"),
        (Bbox(0, 0, 1, 1, attributes={"score": 1}), "label None, outside"),
        (Bbox(0, 0, 1, 1, label=0, attributes={"score": 1, "probs": [1]}), "'probs' attribute has 1 values"),
    ],
)
def test_detections_errors_name_the_script(ann, message):
    with pytest.raises(CliError, match=message) as info:
        detections_from_annotations([ann], 3, source="det.py")
    assert str(info.value).startswith("det.py: ") and "\n" not in str(info.value)
