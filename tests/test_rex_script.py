"""ReX scripts as models (``-l rex-script``): the same maps as the same model through
OpenVINO, both layouts, both batch kinds, probabilities vs logits, one-line errors.

The scripts wrap the known-answer classifier (raw 0..255 BGR input) with openvino
themselves and resize as the methods' view does (float32, INTER_AREA), so the
script's model-input space is the OpenVINO launcher's view space and, with mask
value 0, both launchers occlude the same pixels to the same values: the maps must
agree to float rounding (the scripts' softmax runs in float32).
"""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from explain_plugin.errors import CliError
from explain_plugin.launchers.openvino import OpenVinoLauncher
from explain_plugin.launchers.rex_script import RexScriptLauncher
from explain_plugin.methods.rise import Rise
from explain_plugin.samples import known_answer

H, W = 48, 64

SCRIPT = '''\
import cv2
import numpy as np
import openvino as ov
from rex_xai.input.input_data import Data
from rex_xai.responsibility.prediction import from_pytorch_tensor

MODEL = {model!r}
ORDER = {order!r}
BATCH = {batch!r}
RAW = {raw!r}
_compiled = ov.Core().compile_model(MODEL, "CPU")


def model_shape():
    return [BATCH, 3, {h}, {w}] if ORDER == "first" else [BATCH, {h}, {w}, 3]


def preprocess(path, shape, device, mode):
    image = cv2.imread(path)  # BGR 0..255: what the model takes
    x = cv2.resize(image.astype(np.float32), ({w}, {h}), interpolation=cv2.INTER_AREA)
    data = Data(image, shape, device, mode="RGB")
    data.data = x.transpose(2, 0, 1)[None] if ORDER == "first" else x[None]
    return data


def prediction_function(mutants, target=None, raw=False, binary_threshold=None):
    x = np.asarray(mutants)
    assert x.ndim == 4 and (BATCH == "N" or len(x) == BATCH), x.shape
    if ORDER == "last":
        assert x.shape[3] == 3, x.shape
        x = x.transpose(0, 3, 1, 2)
    else:
        assert x.shape[1] == 3, x.shape
    logits = _compiled(np.ascontiguousarray(x))[0]
    if raw:
        if RAW == "logits":
            return logits
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return from_pytorch_tensor(logits, target=target)


labels = {labels!r}
'''


def write_script(folder: Path, model: Path, *, order="first", batch="N", raw="probabilities",
                 name="script.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(SCRIPT.format(model=str(model), order=order, batch=batch, raw=raw, h=H, w=W,
                                  labels=known_answer.CLASSIFIER_LABELS))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("rex_models")
    return {"N": known_answer.build_classifier(out, height=H, width=W),
            4: known_answer.build_classifier(out, batch=4, height=H, width=W, name="b4")}


@pytest.fixture(scope="module")
def openvino(models):
    xml = models["N"]
    return OpenVinoLauncher(description=str(xml), weights=str(xml.with_suffix(".bin")))


def image(h=96, w=128, seed=5) -> np.ndarray:
    """Bright top-right quadrant: the classifier's answer is class 1."""
    rng = np.random.default_rng(seed)
    im = rng.integers(60, 120, (h, w, 3), dtype=np.uint8)
    im[: h // 2, w // 2:] += 100
    return im


def rise_maps(launcher, img, **params) -> np.ndarray:
    method = Rise.with_defaults(max_samples=300, seed=11, mask_value="0", **params)
    snaps = list(method.explain(launcher, img))
    assert snaps[-1].final
    return snaps[-1]


@pytest.mark.parametrize("order,batch,raw", [
    ("first", "N", "probabilities"),
    ("last", "N", "logits"),
    ("first", 4, "logits"),
    ("last", 4, "probabilities"),
])
def test_same_rise_maps_as_the_openvino_launcher(tmp_path, models, openvino, order, batch, raw):
    script = write_script(tmp_path, models[batch], order=order, batch=batch, raw=raw)
    rex = RexScriptLauncher(script=str(script), batch_size=5)
    assert rex.layout == ("NCHW" if order == "first" else "NHWC")
    assert rex.batch_size == (4 if batch == 4 else 5)
    img = image()
    want = rise_maps(openvino, img, targets="all")
    got = rise_maps(rex, img, targets="all")
    assert [t.name for t in got.targets] == known_answer.CLASSIFIER_LABELS
    assert got.maps.shape == want.maps.shape
    np.testing.assert_allclose(got.raw, want.raw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.maps, want.maps, atol=1e-4)
    # and the map of the top class lies in its quadrant
    top = got.maps[1]
    region = known_answer.classifier_region_masks(*top.shape)[1]
    assert top[region].mean() > 2 * top[~region].mean()


def test_probabilities_are_not_softmaxed_twice(tmp_path, models):
    img = image()
    x = cv2.resize(img.astype(np.float32), (W, H), interpolation=cv2.INTER_AREA)
    probs = known_answer.classifier_reference(x.transpose(2, 0, 1)[None]).astype(np.float64)
    probs = np.exp(probs - probs.max()) / np.exp(probs - probs.max()).sum()
    for raw in ("probabilities", "logits"):
        launcher = RexScriptLauncher(script=str(write_script(tmp_path / raw, models["N"], raw=raw)))
        assert launcher.kind == raw
        label = launcher.predict([img])[0][0]
        np.testing.assert_allclose(label.attributes["scores"], probs[0], rtol=1e-4)
        assert label.label == 1


def test_fixed_batch_gets_exactly_its_size(tmp_path, models):
    launcher = RexScriptLauncher(script=str(write_script(tmp_path, models[4], batch=4)))
    views = [launcher.view_image(image(seed=s)) for s in range(6)]  # 4 + 2 (padded)
    anns = launcher.submit(views).result()
    assert len(anns) == 6 and all(a[0].label == 1 for a in anns)
    assert launcher.padding(6) == 2 and launcher.padding(8) == 0
    free = RexScriptLauncher(script=str(write_script(tmp_path / "n", models["N"])), batch_size=4)
    assert free.padding(6) == 0


def test_occlusion_happens_in_the_script_space(tmp_path, models):
    """The script normalises (x - 128) / 64: mask value 0 is grey 128 in pixels,
    and a script's context is the background."""
    script = tmp_path / "norm.py"
    script.write_text(textwrap.dedent(f'''\
        import cv2, numpy as np
        from rex_xai.input_data import Data
        def model_shape():
            return ["N", 3, {H}, {W}]
        def preprocess(path, shape, device, mode):
            x = cv2.resize(cv2.imread(path).astype(np.float32), ({W}, {H}))
            d = Data(x, shape, device, mode="RGB")
            d.data = ((x - 128) / 64).transpose(2, 0, 1)[None]
            if "ctx" in path or CONTEXT:
                d.context = np.full_like(d.data, 0.5)
            return d
        CONTEXT = False
        def prediction_function(mutants, target=None, raw=False, binary_threshold=None):
            m = np.asarray(mutants).mean(axis=(1, 2, 3))
            return np.stack([m, -m], axis=1)
    '''))
    launcher = RexScriptLauncher(script=str(script))
    view = launcher.view_image(np.full((20, 30, 3), 192, np.uint8))
    assert view.shape == (H, W, 3) and np.allclose(view, 1.0)
    assert launcher.occlusion_base(view) is None  # the method's mask value, in model space
    launcher._module.CONTEXT = True
    view = launcher.view_image(np.full((20, 30, 3), 192, np.uint8))
    assert np.allclose(launcher.occlusion_base(view), 0.5)
    # the methods' view carries it: occluded pixels become the context, whatever --mask-value
    from explain_plugin.methods.occlusion import Occlusion
    from explain_plugin.methods.view import view_of

    view = view_of(launcher, np.full((20, 30, 3), 192, np.uint8))
    blended = Occlusion.of(view, "mean")(np.array([np.zeros((H, W)), np.ones((H, W))], np.float32))
    assert np.allclose(blended[0], 0.5) and np.allclose(blended[1], 1.0)
    launcher._module.CONTEXT = False
    view = view_of(launcher, np.full((20, 30, 3), 192, np.uint8))
    assert view.base is None and np.allclose(Occlusion.of(view, "0")(np.zeros((1, H, W)))[0], 0)
    info = launcher.describe()
    assert info["order"] == "first (NCHW)" and info["scores"].startswith("logits")


def test_binary_threshold(tmp_path):
    script = tmp_path / "binary.py"
    script.write_text(textwrap.dedent('''\
        import numpy as np
        from rex_xai.input.input_data import Data
        model_shape = ["N", 8, 8, 1]
        def preprocess(path, shape, device, mode):
            import cv2
            d = Data(None, shape, device, mode="L")
            d.data = cv2.imread(path, cv2.IMREAD_GRAYSCALE).astype(np.float32)[None, :8, :8, None] / 255
            return d
        def prediction_function(mutants, target=None, raw=False, binary_threshold=None):
            return np.asarray(mutants).mean(axis=(1, 2, 3))  # p(class 1)
    '''))
    launcher = RexScriptLauncher(script=str(script), binary_threshold=0.3)
    assert launcher.binary and len(launcher.categories) == 2 and launcher.channels == 1
    views = [np.full((8, 8, 1), v, np.float32) for v in (0.2, 0.35, 0.45, 0.9)]
    labels = [a[0].label for a in launcher.submit(views).result()]
    assert labels == [0, 1, 1, 1]
    plain = RexScriptLauncher(script=str(script))
    assert [a[0].label for a in plain.submit(views).result()] == [0, 0, 0, 1]
    scores = plain.submit(views[2:3]).result()[0][0].attributes["scores"]
    np.testing.assert_allclose(scores, [0.55, 0.45], rtol=1e-6)
    # RISE runs on a one-channel model space
    snap = list(Rise.with_defaults(max_samples=40, seed=1).explain(
        plain, np.full((16, 16, 3), 200, np.uint8)))[-1]
    assert snap.final and snap.maps.shape == (1, 8, 8)


def test_missing_package_is_one_line(tmp_path, datum, monkeypatch):
    script = tmp_path / "torch_script.py"
    script.write_text("import torch\nfrom rex_xai.input.input_data import Data\n")
    monkeypatch.setitem(sys.modules, "torch", None)  # absent, even where it is installed
    with pytest.raises(CliError, match=r"torch_script.py needs the Python package 'torch'.*"
                                       r"pip install torch"):
        RexScriptLauncher(script=str(script))
    root = tmp_path / "p"
    assert datum("project", "create", "-o", root).code == 0
    result = datum("model", "add", "-p", root, "-l", "rex-script", "--", "-s", script)
    assert result.code == 1 and "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "'torch'" in lines[0] and "pip install torch" in lines[0], lines
    assert "rex_xai" not in sys.modules or sys.modules["rex_xai"].__spec__ is not None


def test_script_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def preprocess(path, shape, device, mode):\n    pass\n"
                   "def prediction_function(m, target=None, raw=False):\n    pass\n"
                   "model_shape = ['N', 3, 'H', 'W']\n")
    with pytest.raises(CliError, match="model_shape must be"):
        RexScriptLauncher(script=str(bad))
    bad.write_text(bad.read_text().replace("'H', 'W'", "8, 8"))
    with pytest.raises(CliError, match=r"preprocess\(\) must return a Data"):
        RexScriptLauncher(script=str(bad))


def test_model_add_info_remove_round_trip_with_copy(tmp_path, datum, models):
    script = write_script(tmp_path / "src", models["N"], order="last")
    root = tmp_path / "p"
    assert datum("project", "create", "-o", root).code == 0
    result = datum("model", "add", "-p", root, "-l", "rex-script", "-n", "rex", "--copy", "--",
                   "-s", script, "--batch-size", "7")
    assert result.code == 0, result
    copied = root / ".datumaro" / "models" / "rex" / "script.py"
    assert copied.read_text() == script.read_text()
    config = yaml.safe_load((root / ".datumaro" / "config.yml").read_text())
    assert config["models"]["rex"] == {"launcher": "rex-script", "options": {
        "script": "script.py", "device": "cpu", "batch_size": 7}}
    script.unlink()  # the project's copy is what runs now
    info = datum("model", "info", "-p", root, "rex")
    assert info.code == 0, info
    for text in ("order: last (NHWC)", "mode: RGB", "model_shape: ['N', 48, 64, 3]",
                 "classes: 4", "top_right", "N (free), 7 mutants per call"):
        assert text in info.out, (text, info.out)
    assert datum("model", "remove", "-p", root, "rex").code == 0
    assert not copied.parent.exists()
    assert "rex" not in yaml.safe_load((root / ".datumaro" / "config.yml").read_text())["models"]


def test_explain_and_model_run_through_the_cli(tmp_path, datum, models):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "tr.png"), image(72, 96))
    root = tmp_path / "p"
    assert datum("project", "create", "-o", root).code == 0
    assert datum("project", "import", "-p", root, "-f", "image_dir", images).code == 0
    script = write_script(tmp_path / "src", models[4], batch=4, raw="logits")
    assert datum("model", "add", "-p", root, "-l", "rex-script", "-n", "rex", "--", "-s",
                 script).code == 0

    out = tmp_path / "run"
    result = datum("explain", "-p", root, "-m", "rex", "-o", out, "rise", "-s", "200")
    assert result.code == 0, result
    sal = np.load(next(out.rglob("*top_right*.npy"))).astype(np.float32)
    assert sal.shape == (72, 96)
    assert sal[:36, 48:].mean() > 2 * sal[36:, :].mean()

    out = tmp_path / "rex"
    result = datum("explain", "-p", root, "-m", "rex", "-o", out, "rex", "--iters", "3")
    assert result.code == 0, result
    resp = np.load(next(out.rglob("*top_right-responsibility.npy")))
    assert resp.shape == (72, 96) and resp[:36, 48:].mean() > 2 * resp[36:, :].mean()

    preds = tmp_path / "preds"
    result = datum("model", "run", "-p", root, "-m", "rex", "-o", preds)
    assert result.code == 0, result
    import json

    data = json.loads((preds / "annotations" / "default.json").read_text())
    (ann,) = data["items"][0]["annotations"]
    assert data["categories"]["label"]["labels"][ann["label_id"]]["name"] == "top_right"


@pytest.mark.parametrize("order,batch,raw", [("first", "N", "logits"), ("last", 4, "probabilities")])
def test_same_rex_maps_as_the_openvino_launcher(tmp_path, models, openvino, order, batch, raw):
    """ReX's search and extraction see the same answers through both launchers."""
    from explain_plugin.methods.rex.method import Rex

    script = write_script(tmp_path, models[batch], order=order, batch=batch, raw=raw)
    launcher = RexScriptLauncher(script=str(script))
    img = image(60, 80, seed=8)

    def run(launcher_):
        snaps = list(Rex.with_defaults(iters=4, seed=3, metrics=False, mask_value="0")
                     .explain(launcher_, img))
        assert snaps[-1].final
        return snaps[-1]

    want, got = run(openvino), run(launcher)
    assert [t.label for t in got.targets] == [t.label for t in want.targets] == [1]
    assert got.evaluations == want.evaluations
    np.testing.assert_allclose(got.extra["responsibility"], want.extra["responsibility"], atol=1e-6)
    np.testing.assert_allclose(got.maps, want.maps, atol=1e-5)
    (got_masks,), (want_masks,) = got.extra["explanations"], want.extra["explanations"]
    assert len(got_masks) == len(want_masks) >= 1  # the minimal sufficient explanation(s)
    for a, b in zip(got_masks, want_masks):
        np.testing.assert_array_equal(a, b)
    region = known_answer.classifier_region_masks(*got.maps.shape[1:])[1]
    assert got.maps[0][region].mean() > 2 * got.maps[0][~region].mean()


def test_stand_ins_have_rex_fields_and_leave_no_trace():
    from explain_plugin.launchers.rex_compat import rex_imports

    with rex_imports():
        from rex_xai.input.input_data import Data
        from rex_xai.prediction import Prediction, from_pytorch_tensor
        from rex_xai.responsibility.prediction import Prediction as Prediction04

    assert Prediction is Prediction04
    assert "rex_xai" not in sys.modules and "rex_xai.prediction" not in sys.modules
    d = Data(np.zeros((10, 20, 3)), ["N", 3, 224, 160], "cpu", mode="RGB", process=True)
    assert (d.model_height, d.model_width, d.model_channels, d.model_order) == (224, 160, 3, "first")
    assert d.transposed and d.context is None and d.mask_value is None and d.data is None
    for field in ("input", "data", "model_shape", "device", "mode", "process", "context"):
        assert hasattr(d, field), field
    last = Data(None, [1, 32, 48, 3], "cpu", mode="RGB")
    assert (last.model_height, last.model_width, last.model_order) == (32, 48, "last")
    target = Prediction(2, 0.9)
    preds = from_pytorch_tensor(np.array([[0.0, 1.0, 3.0], [5.0, 0.0, 0.0]]), target=target)
    assert [p.classification for p in preds] == [2, 0] and preds[0].target == 2
    assert preds[0].is_passing() and not preds[1].is_passing()
    assert abs(sum(np.exp([0, 1, 3])) * preds[0].target_confidence - np.exp(3)) < 1e-9
    for field in ("classification", "confidence", "bounding_box", "target", "target_confidence"):
        assert hasattr(preds[0], field), field
