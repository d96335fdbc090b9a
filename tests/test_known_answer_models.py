"""The known-answer models match their numpy references and depend only on their regions."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from explain_plugin.samples import known_answer as ka

INTERPRETERS = Path(ka.__file__).parent / "interpreters"


def _compile(xml: Path) -> ov.CompiledModel:
    return ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def _images(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, 3, h, w)).astype(np.float32)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> ov.CompiledModel:
    return _compile(ka.build_classifier(tmp_path_factory.mktemp("cls")))


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> ov.CompiledModel:
    return _compile(ka.build_detector(tmp_path_factory.mktemp("det")))


def test_build_writes_named_files(tmp_path):
    xml = ka.build_classifier(tmp_path, name="quad")
    assert xml == tmp_path / "quad.xml" and xml.with_suffix(".bin").is_file()
    assert ka.build_detector(tmp_path).name == "detector.xml"


@pytest.mark.parametrize("n", [1, 3])
def test_classifier_matches_reference(classifier, n):
    x = _images(n, 48, 64, seed=n)
    out = classifier(x)["logits"]
    assert out.shape == (n, 4)
    np.testing.assert_allclose(out, ka.classifier_reference(x), rtol=1e-5)


@pytest.mark.parametrize("k", range(4))
def test_lit_quadrant_wins(classifier, k):
    masks = ka.classifier_region_masks(48, 64)
    x = np.where(masks[k], 200.0, 10.0)[None, None].repeat(3, axis=1).astype(np.float32)
    assert classifier(x)["logits"][0].argmax() == k


def test_classifier_regions_partition_image():
    masks = ka.classifier_region_masks(48, 64)
    assert (masks.sum(axis=0) == 1).all()
    assert masks[0, 0, 0] and masks[1, 0, -1] and masks[2, -1, 0] and masks[3, -1, -1]


def test_static_batch(tmp_path):
    model = _compile(ka.build_classifier(tmp_path, batch=1))
    assert list(model.input("input").shape) == [1, 3, 48, 64]
    x = _images(1, 48, 64)
    np.testing.assert_allclose(model(x)["logits"], ka.classifier_reference(x), rtol=1e-5)


@pytest.mark.parametrize("n", [1, 2])
def test_detector_matches_reference(detector, n):
    x = _images(n, 64, 64, seed=n)
    out = detector(x)["detection_out"]
    assert out.shape == (1, 1, n * len(ka.DETECTOR_BOXES), 7)
    np.testing.assert_allclose(out, ka.detector_reference(x), rtol=1e-5)
    rows = out.reshape(n, -1, 7)
    np.testing.assert_array_equal(rows[..., 0], np.arange(n)[:, None].repeat(3, axis=1))
    np.testing.assert_array_equal(rows[..., 1], np.arange(3)[None].repeat(n, axis=0))


def test_detector_conf_depends_only_on_own_box(detector):
    masks = ka.detector_region_masks(64, 64)
    x = _images(1, 64, 64)
    base = detector(x)["detection_out"][0, 0, :, 2]
    for k, mask in enumerate(masks):
        changed = x.copy()
        changed[:, :, mask] = 255 - changed[:, :, mask]
        conf = detector(changed)["detection_out"][0, 0, :, 2]
        others = np.arange(len(masks)) != k
        assert conf[k] != pytest.approx(base[k])
        np.testing.assert_array_equal(conf[others], base[others])

    outside = ~masks.any(axis=0)
    changed = x.copy()
    changed[:, :, outside] = 0
    np.testing.assert_array_equal(detector(changed)["detection_out"][0, 0, :, 2], base)


def test_detector_boxes_are_disjoint():
    masks = ka.detector_region_masks(64, 64)
    assert (masks.sum(axis=0) <= 1).all()
    assert len(set(masks.sum(axis=(1, 2)).tolist())) == len(masks)


@pytest.mark.parametrize(
    "script, names",
    [
        ("known_classifier_0x.py", {"process_outputs", "get_categories"}),
        ("known_detector_0x.py", {"process_outputs", "get_categories", "max_det"}),
        ("known_classifier_1x.py", {"KnownClassifierInterpreter"}),
        ("known_detector_1x.py", {"KnownDetectorInterpreter"}),
    ],
)
def test_interpreter_scripts_compile(script, names):
    path = INTERPRETERS / script
    source = path.read_text(encoding="utf-8")
    compile(source, str(path), "exec")
    tree = ast.parse(source)
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}
    assert names <= defined
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if "1x" in script:
        # The launcher picks the single IModelInterpreter subclass.
        assert len(classes) == 1
        assert [b.id for b in classes[0].bases] == ["IModelInterpreter"]
        methods = {n.name for n in classes[0].body if isinstance(n, ast.FunctionDef)}
        assert {"preprocess", "postprocess", "get_categories"} <= methods
