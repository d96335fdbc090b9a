"""The OpenVINO launcher on the known-answer models: every interpreter kind, batching,
image formats, rescale modes, detector filters and streaming."""
import textwrap
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest
from datumaro.components.annotation import Bbox, Label
from openvino import opset13 as ops

import explain_plugin.samples as samples
from explain_plugin.errors import CliError
from explain_plugin.launchers.openvino import OpenVinoLauncher
from explain_plugin.launchers.predictions import detections_from_annotations, scores_from_annotations
from explain_plugin.samples import known_answer as ka

SAMPLES = Path(samples.__file__).parent / "interpreters"
CLS_0X = SAMPLES / "known_classifier_0x.py"
CLS_1X = SAMPLES / "known_classifier_1x.py"
DET_0X = SAMPLES / "known_detector_0x.py"
DET_1X = SAMPLES / "known_detector_1x.py"

CLS_1_0 = """
from datumaro.components.abstracts.model_interpreter import IModelInterpreter
from datumaro.components.annotation import AnnotationType, Label, LabelCategories
from datumaro.util.annotation_util import softmax

class Interp(IModelInterpreter):
    def get_categories(self):
        return {AnnotationType.label: LabelCategories.from_iterable(
            ["top_left", "top_right", "bottom_left", "bottom_right"])}
    def process_outputs(self, inputs, outputs):
        return [[Label(k, attributes={"score": float(p)}) for k, p in enumerate(softmax(o))]
                for o in outputs]
    def normalize(self, inputs):
        return inputs
    def resize(self, inputs):
        return inputs
"""

CLS_1_4 = """
import cv2
import numpy as np
from datumaro.components.abstracts.model_interpreter import IModelInterpreter
from datumaro.components.annotation import AnnotationType, Label, LabelCategories

class Interp(IModelInterpreter):
    def preprocess(self, img: np.ndarray):
        return cv2.resize(img.astype(np.float32), (64, 48)).transpose(2, 0, 1), None
    def postprocess(self, pred, info):
        z = np.exp(pred["logits"] - pred["logits"].max())
        return [Label(k, attributes={"score": float(p)}) for k, p in enumerate(z / z.sum())]
    def get_categories(self):
        return {AnnotationType.label: LabelCategories.from_iterable("abcd")}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    scripts = {"1.0": d / "cls_10.py", "1.4": d / "cls_14.py"}
    scripts["1.0"].write_text(CLS_1_0)
    scripts["1.4"].write_text(CLS_1_4)
    return {
        "dir": d,
        "classifier": ka.build_classifier(d),
        "detector": ka.build_detector(d),
        "scripts": scripts,
    }


def launcher(description, interpreter=None, **kw) -> OpenVinoLauncher:
    kw.setdefault("precision", "f32")  # exact comparisons with the numpy references
    return OpenVinoLauncher(description=str(description),
                            interpreter=str(interpreter) if interpreter else None, **kw)


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def images(n, h, w, seed=0, channels=3):
    shape = (h, w) if channels is None else (h, w, channels)
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def model_input(imgs, h, w):
    """What Datumaro 0.x fed the model: float32 cv2.resize (INTER_LINEAR), NCHW."""
    return np.stack([cv2.resize(i.astype(np.float32), (w, h)) for i in imgs]).transpose(0, 3, 1, 2)


# Options ------------------------------------------------------------------------
def test_parse_cmdline_stores_datumaro_options_exactly():
    opts = OpenVinoLauncher.parse_cmdline(["-d", "m.xml", "-w", "m.bin", "-i", "i.py"])
    assert opts == {"description": "m.xml", "weights": "m.bin", "interpreter": "i.py",
                    "device": "CPU", "output_layers": None}


def test_parse_cmdline_new_flags_only_when_given():
    opts = OpenVinoLauncher.parse_cmdline([
        "-d", "m.onnx", "--output-layers", "a, b", "--precision", "f32", "--rescale", "pad",
        "--color-space", "rgb", "--conf-thresh", "0.3", "--iou-thresh", "0.5", "--max-objects", "7",
    ])
    assert opts == {"description": "m.onnx", "weights": None, "interpreter": None, "device": "CPU",
                    "output_layers": ["a", "b"], "precision": "f32", "rescale": "pad",
                    "color_space": "rgb", "conf_thresh": 0.3, "iou_thresh": 0.5, "max_objects": 7}


def test_copy_model_and_base_dir(models, tmp_path, monkeypatch):
    opts = OpenVinoLauncher.parse_cmdline(["-d", str(models["classifier"]), "-i", str(CLS_0X)])
    copied = OpenVinoLauncher.copy_model(tmp_path / "model", opts)
    assert copied["description"] == "classifier.xml" and copied["interpreter"] == CLS_0X.name
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "classifier.bin", "classifier.xml", CLS_0X.name]
    monkeypatch.chdir(tmp_path)  # relative names resolve against base_dir first
    lau = OpenVinoLauncher(base_dir=tmp_path / "model", **copied)
    assert lau.describe()["labels"] == ka.CLASSIFIER_LABELS
    with pytest.raises(CliError, match="model description file 'gone.xml' not found"):
        OpenVinoLauncher(base_dir=tmp_path / "model", description="gone.xml")


def test_describe(models):
    info = launcher(models["classifier"], CLS_0X).describe()
    # requests carry 1..8 images: a short batch is not padded
    assert info["inputs"] == [{"name": "input", "shape": "[1..8,3,48,64]", "type": "f32"}]
    assert info["outputs"] == [{"name": "logits", "shape": "[1..8,4]", "type": "f32"}]
    assert info["labels"] == ka.CLASSIFIER_LABELS
    assert (info["batch"], info["device"], info["precision"]) == (8, "CPU", "f32")
    auto = OpenVinoLauncher(description=str(models["classifier"]), interpreter=str(CLS_0X))
    assert auto.describe()["precision"] in ("bf16", "f16", "f32")  # the device's own default


# Every interpreter kind gives the known answer ---------------------------------------
@pytest.mark.parametrize("kind", ["0.x", "1.0", "1.4", "1.5"])
def test_classifier_scores_every_kind(models, kind):
    script = {"0.x": CLS_0X, "1.5": CLS_1X}.get(kind) or models["scripts"][kind]
    lau = launcher(models["classifier"], script)
    assert lau.interpreter.kind == kind and lau.batch_size == 8  # dynamic batch -> 8
    imgs = images(11, 48, 64)  # 8 + 3: a padded second request
    scores = scores_from_annotations(lau.predict(imgs), 4)
    expected = softmax(ka.classifier_reference(model_input(imgs, 48, 64)))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("script", [DET_0X, DET_1X], ids=["0.x", "1.5"])
def test_detector_boxes_every_kind(models, script):
    lau = launcher(models["detector"], script)
    assert lau.batch_size == 1  # DetectionOutput mixes a batch's images: one per request
    imgs = images(5, 64, 64, seed=1)
    results = lau.predict(imgs)
    ref = ka.detector_reference(model_input(imgs, 64, 64)).reshape(5, 3, 7)
    for anns, rows in zip(results, ref):
        det = detections_from_annotations(anns, 3)
        order = np.argsort(det.labels)
        np.testing.assert_array_equal(det.labels[order], [0, 1, 2])
        np.testing.assert_allclose(det.scores[order], rows[:, 2], rtol=1e-5)
        np.testing.assert_allclose(det.boxes[order], ka.DETECTOR_BOXES * 64, atol=1e-3)


def test_static_batch_one_model_without_script(tmp_path):
    """A model that cannot batch (hard-coded Reshape) runs one image per request;
    without -i its single [N,C] output is read as class scores."""
    x = ops.parameter([1, 3, 8, 8], np.float32, name="input")
    means = ops.reduce_mean(x, [2, 3], keep_dims=False)
    out = ops.reshape(ops.multiply(means, np.float32(1 / 64)), ops.constant(np.array([1, 3], np.int64)), False)
    xml = tmp_path / "static.xml"
    ov.save_model(ov.Model([ops.result(out)], [x]), str(xml))
    lau = launcher(xml)
    assert lau.batch_size == 1 and lau.interpreter.kind == "builtin"
    imgs = images(3, 8, 8, seed=2)
    scores = scores_from_annotations(lau.predict(imgs), 3)
    means = np.stack([i.reshape(-1, 3).mean(0) for i in imgs]) / 64
    np.testing.assert_allclose(scores, softmax(means), rtol=1e-5)


# Image formats ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape", [(30, 50, 3), (100, 60, 3), (48, 64, None), (48, 64, 1), (31, 97, 4)],
    ids=["small", "tall", "grey", "grey1", "rgba"],
)
def test_image_formats(models, shape):
    h, w, c = shape
    imgs = images(3, h, w, channels=c, seed=3)
    bgr = [np.repeat(i.reshape(h, w, 1), 3, 2) if c in (None, 1) else i[..., :3] for i in imgs]
    expected = softmax(ka.classifier_reference(model_input(bgr, 48, 64)))
    scores = scores_from_annotations(launcher(models["classifier"], CLS_0X).predict(imgs), 4)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    # The 1.x sample resizes the uint8 image itself.
    own = np.stack([cv2.resize(i, (64, 48)) for i in bgr]).transpose(0, 3, 1, 2).astype(np.float32)
    scores = scores_from_annotations(launcher(models["classifier"], CLS_1X).predict(imgs), 4)
    np.testing.assert_allclose(scores, softmax(ka.classifier_reference(own)), rtol=1e-5, atol=1e-6)


def test_mixed_sizes_in_one_batch(models):
    imgs = images(2, 48, 64) + images(2, 20, 90, seed=5)
    expected = softmax(ka.classifier_reference(model_input(imgs, 48, 64)))
    scores = scores_from_annotations(launcher(models["classifier"], CLS_0X).predict(imgs), 4)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


# Rescale modes ----------------------------------------------------------------------------
def test_pad_gives_boxes_in_original_coordinates(models):
    lau = launcher(models["detector"], DET_0X, rescale="pad")
    img = images(1, 32, 64, seed=6)[0]  # fits as 32x64, padded below to 64x64
    (anns,) = lau.predict([img])
    det = detections_from_annotations(anns, 3)
    order = np.argsort(det.labels)
    # The model's boxes cover 64x64 model pixels = 64x64 original pixels (scale 1, no offset).
    np.testing.assert_allclose(det.boxes[order], ka.DETECTOR_BOXES * 64, atol=1e-3)
    padded = np.zeros((64, 64, 3), np.float32)
    padded[:32] = img
    ref = ka.detector_reference(padded.transpose(2, 0, 1)[None])[0, 0]
    np.testing.assert_allclose(det.scores[order], ref[:, 2], rtol=1e-5)


def test_crop_gives_boxes_in_original_coordinates(models):
    lau = launcher(models["detector"], DET_0X, rescale="crop")
    img = images(1, 32, 128, seed=7)[0]  # scaled x2 to 64x256, centre crop x in [96, 160)
    (anns,) = lau.predict([img])
    det = detections_from_annotations(anns, 3)
    order = np.argsort(det.labels)
    expected = (ka.DETECTOR_BOXES * 64 + [96, 0, 96, 0]) / 2
    np.testing.assert_allclose(det.boxes[order], expected, atol=1e-3)
    crop = cv2.resize(img.astype(np.float32), (256, 64))[:, 96:160]
    ref = ka.detector_reference(crop.transpose(2, 0, 1)[None])[0, 0]
    np.testing.assert_allclose(det.scores[order], ref[:, 2], rtol=1e-5)


def test_rgb_colour_space(models):
    img = images(1, 48, 64, seed=8)
    lau = launcher(models["classifier"], CLS_0X, color_space="rgb")
    expected = softmax(ka.classifier_reference(model_input(img, 48, 64)[:, ::-1]))
    np.testing.assert_allclose(scores_from_annotations(lau.predict(img), 4), expected, rtol=1e-5)


def test_rescale_is_refused_for_preprocess_scripts(models):
    with pytest.raises(CliError, match=r"known_detector_1x\.py prepares images in its own preprocess"):
        launcher(models["detector"], DET_1X, rescale="pad")


# Detector filters --------------------------------------------------------------------------
BOXES = """
from datumaro.components.extractor import *

BOXES = [  # x, y, w, h, label, score
    (0, 0, 10, 10, 0, 0.9),
    (1, 1, 10, 10, 0, 0.8),   # IoU 0.68 with the first, same label
    (1, 1, 10, 10, 1, 0.7),   # same place, other label
    (20, 20, 10, 10, 0, 0.3),
]

def process_outputs(inputs, outputs):
    return [[Label(0, attributes={"score": 1.0})] +
            [Bbox(x, y, w, h, label=l, attributes={"score": s}) for x, y, w, h, l, s in BOXES]
            for _ in inputs]

def get_categories():
    return {AnnotationType.label: LabelCategories.from_iterable(["a", "b"])}
"""


@pytest.mark.parametrize(
    "flags, kept",
    [
        ({}, [0.9, 0.8, 0.7, 0.3]),
        ({"conf_thresh": 0.5}, [0.9, 0.8, 0.7]),
        ({"iou_thresh": 0.5}, [0.9, 0.7, 0.3]),
        ({"max_objects": 2}, [0.9, 0.8]),
        ({"conf_thresh": 0.5, "iou_thresh": 0.5, "max_objects": 5}, [0.9, 0.7]),
    ],
)
def test_detector_filters(models, tmp_path, flags, kept):
    script = tmp_path / "boxes.py"
    script.write_text(BOXES)
    (anns,) = launcher(models["classifier"], script, **flags).predict(images(1, 48, 64))
    scores = [a.attributes["score"] for a in anns if isinstance(a, Bbox)]
    assert sorted(scores, reverse=True) == kept
    assert sum(isinstance(a, Label) for a in anns) == 1  # other annotations untouched


# Output layers ----------------------------------------------------------------------------------
def test_output_layers_give_the_script_a_dict(tmp_path):
    x = ops.parameter([-1, 3, 4, 4], np.float32, name="input")
    mean = ops.reduce_mean(x, [2, 3], keep_dims=False)
    mean.output(0).get_tensor().set_names({"features"})
    out = ops.multiply(mean, np.float32(2))
    out.output(0).get_tensor().set_names({"scores"})
    xml = tmp_path / "two.xml"
    ov.save_model(ov.Model([ops.result(out)], [x]), str(xml))
    script = tmp_path / "dict.py"
    script.write_text(textwrap.dedent("""
        from datumaro.components.extractor import Label
        def process_outputs(inputs, outputs):
            assert sorted(outputs) == ["features", "scores"], outputs
            return [[Label(0, attributes={"score": float(s[0] / f[0])})]
                    for s, f in zip(outputs["scores"], outputs["features"])]
    """))
    lau = launcher(xml, script, output_layers="features")
    (anns,) = lau.predict(images(1, 4, 4))
    assert anns[0].attributes["score"] == pytest.approx(2.0)
    with pytest.raises(CliError, match="no layer or tensor 'nope'"):
        launcher(xml, script, output_layers=["nope"])


# Streaming ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    """Convolutions heavy enough that a request outlasts the Python between submissions."""
    x = ops.parameter([-1, 3, 96, 96], np.float32, name="input")
    y = x
    rng = np.random.default_rng(0)
    for cin, cout in [(3, 32), (32, 32), (32, 32), (32, 32)]:
        w = rng.standard_normal((cout, cin, 3, 3)).astype(np.float32) * 0.05
        y = ops.relu(ops.convolution(y, ops.constant(w), [1, 1], [1, 1], [1, 1], [1, 1]))
    y = ops.reduce_mean(y, [2, 3], keep_dims=False)
    out = ops.matmul(y, ops.constant(rng.standard_normal((32, 5)).astype(np.float32)), False, False)
    xml = tmp_path_factory.mktemp("slow") / "slow.xml"
    ov.save_model(ov.Model([ops.result(out)], [x]), str(xml))
    return xml


def test_stream_yields_in_order_with_batches_in_flight(slow_model):
    lau = launcher(slow_model)
    batches = [images(n, 96, 96, seed=s) for s, n in enumerate([8, 3, 8, 1, 8, 8])]
    consumed = []

    def source():
        for i, batch in enumerate(batches):
            consumed.append(i)
            yield batch

    seen_when_yielding = []
    streamed = []
    for result in lau.stream(source()):
        seen_when_yielding.append(len(consumed))
        streamed.append(scores_from_annotations(result, 5))
    direct = [scores_from_annotations(lau.predict(b), 5) for b in batches]
    assert [len(s) for s in streamed] == [8, 3, 8, 1, 8, 8]
    for a, b in zip(streamed, direct):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    # The first result came while later batches were already submitted.
    assert seen_when_yielding[0] >= 2
    assert all(n <= lau.requests + 1 + i for i, n in enumerate(seen_when_yielding))


def test_stream_closed_early_waits_for_requests(slow_model):
    lau = launcher(slow_model)
    stream = lau.stream(images(8, 96, 96) for _ in range(10))
    next(stream)
    stream.close()  # must not leave requests reading freed inputs
    assert len(lau.predict(images(2, 96, 96))) == 2


def test_empty_batch(models):
    assert launcher(models["classifier"], CLS_0X).predict([]) == []


def test_plugin_registers_the_launcher():
    from explain_plugin.default_plugins import openvino_launcher

    got = []
    openvino_launcher.register_launchers(got.append)
    assert got == [OpenVinoLauncher] and got[0].NAME == "openvino"


# datum model run ----------------------------------------------------------------------------------
def test_run_model_keeps_order_and_categories(models):
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image

    from explain_plugin.launchers.model_run import run_model

    imgs = images(2, 48, 64) + images(3, 20, 30, seed=9)
    items = [DatasetItem(id=f"img{i}", media=Image.from_numpy(data=im)) for i, im in enumerate(imgs)]
    items.insert(2, DatasetItem(id="no_image"))
    dataset = Dataset.from_iterable(items, categories=["old"])
    result = run_model(launcher(models["classifier"], CLS_0X), dataset, batch_size=2)
    assert [item.id for item in result] == [item.id for item in items]
    assert [c.name for c in result.categories()[AnnotationType.label]] == ka.CLASSIFIER_LABELS
    predicted = [item for item in result if item.id != "no_image"]
    scores = scores_from_annotations([item.annotations for item in predicted], 4)
    expected = softmax(ka.classifier_reference(model_input(imgs, 48, 64)))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert not result.get("no_image").annotations


def test_nhwc_model(tmp_path):
    x = ops.parameter([-1, 8, 12, 3], np.float32, name="input")
    out = ops.multiply(ops.reduce_mean(x, [1, 2], keep_dims=False), np.float32(1 / 64))
    xml = tmp_path / "nhwc.xml"
    ov.save_model(ov.Model([ops.result(out)], [x]), str(xml))
    lau = launcher(xml)
    assert lau.layout == "NHWC" and lau.input_size == (8, 12) and lau.batch_size == 8
    imgs = images(3, 20, 10, seed=4)
    resized = [cv2.resize(i.astype(np.float32), (12, 8)) for i in imgs]
    expected = softmax(np.stack([r.reshape(-1, 3).mean(0) for r in resized]) / 64)
    np.testing.assert_allclose(scores_from_annotations(lau.predict(imgs), 3), expected, rtol=1e-5)


def test_unknown_option(models):
    with pytest.raises(CliError, match="unknown openvino launcher option"):
        launcher(models["classifier"], CLS_0X, colour="rgb")
