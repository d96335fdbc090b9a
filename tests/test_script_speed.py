"""Users' interpreter scripts on the fast path keep their exact semantics.

Scripts written as Datumaro documents them (one Label per class) get lightweight
stand-ins for Label/Bbox and a vectorised conversion; scripts that inspect or
subclass Datumaro's classes keep the exact path. Either way, the same image and
seed give the same maps and the same ``datum model run`` output.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest
from datumaro.components import annotation as dm
from openvino import opset13 as ops

from explain_plugin.launchers import interpreters, predictions, score_rows, standins
from explain_plugin.launchers.openvino import OpenVinoLauncher
from explain_plugin.methods.rise import Rise
from explain_plugin.samples import known_answer

# Documented style, softmax in float64 as the builtin interpreter computes it.
DOC_0X = """
    import numpy as np
    from datumaro.components.extractor import *

    LABELS = ["top_left", "top_right", "bottom_left", "bottom_right"]

    def process_outputs(inputs, outputs):
        results = []
        for input, output in zip(inputs, outputs):
            x = np.asarray(output, np.float64)
            e = np.exp(x - x.max())
            probs = e / e.sum()
            results.append([Label(i, attributes={"score": p}) for i, p in enumerate(probs)])
        return results

    def get_categories():
        return {AnnotationType.label: LabelCategories.from_iterable(LABELS)}
"""

DOC_1X = """
    from typing import List, Tuple

    import cv2
    import numpy as np
    from datumaro.components.abstracts.model_interpreter import IModelInterpreter, ModelPred, PrepInfo
    from datumaro.components.annotation import Annotation, AnnotationType, Label, LabelCategories
    from datumaro.components.dataset_base import DatasetItem

    class Documented(IModelInterpreter):
        def preprocess(self, inp: DatasetItem) -> Tuple[np.ndarray, PrepInfo]:
            img = inp.media.data.astype(np.float32)
            img = cv2.resize(img, (64, 48), interpolation=cv2.INTER_LINEAR)
            return img.transpose(2, 0, 1), None

        def postprocess(self, pred: ModelPred, info: PrepInfo) -> List[Annotation]:
            x = np.asarray(pred["logits"], np.float64)
            e = np.exp(x - x.max())
            probs = e / e.sum()
            return [Label(i, attributes={"score": p}) for i, p in enumerate(probs)]

        def get_categories(self):
            return {AnnotationType.label: LabelCategories.from_iterable(
                ["top_left", "top_right", "bottom_left", "bottom_right"])}
"""

# Unusual: a Label subclass, isinstance/type checks against Datumaro's classes.
SUBCLASSING_0X = """
    from datumaro.components.annotation import AnnotationType, Label, LabelCategories

    class ScoredLabel(Label):
        pass

    def process_outputs(inputs, outputs):
        out = []
        for row in outputs:
            anns = [ScoredLabel(i, attributes={"score": float(v)}) for i, v in enumerate(row)]
            assert all(type(a) is ScoredLabel and isinstance(a, Label) for a in anns)
            out.append(anns)
        return out
"""

INSPECTING_0X = """
    from datumaro.components.annotation import Label

    def process_outputs(inputs, outputs):
        anns = [[Label(i, attributes={"score": float(v)}) for i, v in enumerate(row)]
                for row in outputs]
        assert type(anns[0][0]).__module__ == "datumaro.components.annotation", type(anns[0][0])
        assert isinstance(anns[0][0], Label)
        return anns
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("scripts")
    return {"0x": write(out, "doc_0x.py", DOC_0X), "1x": write(out, "doc_1x.py", DOC_1X),
            "builtin": None}


def launcher(xml: Path, script: Path | None) -> OpenVinoLauncher:
    return OpenVinoLauncher(description=str(xml), weights=str(xml.with_suffix(".bin")),
                            interpreter=str(script) if script else None)


@pytest.fixture
def exact(monkeypatch):
    """Force the exact path: Datumaro's own classes, per-annotation conversion."""
    monkeypatch.setattr(interpreters, "FAST_PATH", False)
    monkeypatch.setattr(predictions, "_fast_scores", lambda *args: None)


def rise_maps(lau: OpenVinoLauncher, image: np.ndarray) -> np.ndarray:
    snaps = list(Rise.with_defaults(max_samples=48, seed=5, targets="all").explain(lau, image))
    return snaps[-1].maps


def quadrant_image() -> np.ndarray:
    rng = np.random.default_rng(1)
    image = rng.integers(60, 120, (48, 64, 3)).astype(np.uint8)
    image[:24, 32:] = 230  # top_right is the answer
    return image


# Paths ----------------------------------------------------------------------
def test_documented_scripts_take_the_fast_path(known_models, scripts):
    xml = known_models["classifier"]
    for kind in ("0x", "1x"):
        lau = launcher(xml, scripts[kind])
        assert lau.interpretation_path == "rows", lau.interpretation_reason
        assert "1 one-Label-per-class list(s) read as score rows" in lau.interpretation_reason
        anns = lau.predict([quadrant_image()])[0]
        assert type(anns) is score_rows.ScoreLabels and anns.pending
        assert len(anns) == 4 and all(type(a) is standins.Label for a in anns)
        assert all(isinstance(a, dm.Label) for a in anns)  # every isinstance check holds
    assert launcher(xml, None).interpretation_path == "builtin"
    # the sample scripts of the project are documented-style too
    assert launcher(xml, known_models["classifier_0x"]).interpretation_path == "rows"
    assert launcher(xml, known_models["classifier_1x"]).interpretation_path == "rows"


@pytest.mark.parametrize("text, why", [(SUBCLASSING_0X, "'Label' other than by calling"),
                                       (INSPECTING_0X, "line 7")])
def test_scripts_that_inspect_types_keep_datumaro_classes(tmp_path, known_models, text, why):
    lau = launcher(known_models["classifier"], write(tmp_path, "odd.py", text))
    assert lau.interpretation_path == "exact"
    assert why in lau.interpretation_reason
    image = quadrant_image()
    anns = lau.predict([image])[0]  # the script's own asserts pass
    assert all(type(a).__module__ != standins.__name__ for a in anns)
    scores = predictions.scores_from_annotations([anns], 4)[0]
    assert scores.argmax() == 1
    assert len(rise_maps(lau, image)) == 4


@pytest.mark.parametrize("source, blocked", [
    ("from datumaro.components.annotation import Label\nx = [Label]\n", True),
    ("from datumaro.components.annotation import Label\ndef f(): return Label(1)\n", False),
    ("from datumaro.components.annotation import Label\ndef f(a: Label) -> Label: return Label(1)\n",
     False),
    ("from datumaro.components.annotation import Label\ndef f(a): return a.__class__\n", True),
    ("from datumaro.components.annotation import Label\ndef f():\n global Label\n", True),
    ("def f():\n    from datumaro.components.annotation import Label\n    return Label(1)\n", True),
])
def test_fast_path_blockers(source, blocked):
    assert bool(interpreters.fast_path_blocker(source, {"Label"})) == blocked


# Same maps, same predictions ------------------------------------------------------
def test_same_maps_on_every_path_and_for_every_script(known_models, scripts, monkeypatch):
    xml, image = known_models["classifier"], quadrant_image()
    fast = {kind: rise_maps(launcher(xml, path), image) for kind, path in scripts.items()}
    with monkeypatch.context() as m:  # stand-ins, but no score rows
        m.setattr(score_rows, "rewrite", lambda *args: 0)
        standin = {kind: launcher(xml, path) for kind, path in scripts.items() if path}
        assert {lau.interpretation_path for lau in standin.values()} == {"fast"}
        for kind, lau in standin.items():
            np.testing.assert_array_equal(rise_maps(lau, image), fast[kind], err_msg=kind)
    with monkeypatch.context() as m:
        m.setattr(interpreters, "FAST_PATH", False)
        m.setattr(predictions, "_fast_scores", lambda *args: None)
        exact_lau = {kind: launcher(xml, path) for kind, path in scripts.items()}
        assert {lau.interpretation_path for lau in exact_lau.values()} == {"exact"}
        exact = {kind: rise_maps(lau, image) for kind, lau in exact_lau.items()}
    for kind in scripts:
        np.testing.assert_array_equal(fast[kind], exact[kind], err_msg=kind)
    # the 0.x script computes what the builtin interpreter does; the 1.x one reads its
    # masked images back through a Datumaro Image, so its maps agree to a few 1e-3
    np.testing.assert_array_equal(fast["0x"], fast["builtin"])
    np.testing.assert_allclose(fast["1x"], fast["builtin"], atol=1e-2)
    assert fast["0x"].shape[0] == 4 and fast["0x"][1][:24, 32:].mean() > fast["0x"][1][24:].mean()


def model_run_output(datum, root: Path, name: str, out: Path) -> dict:
    result = datum("model", "run", "-p", root, "-m", name, "-o", out, "project")
    assert result.code == 0, result
    data = json.loads((out / "annotations" / "default.json").read_text())
    return {"categories": data["categories"],
            "items": sorted((item["id"], item["annotations"]) for item in data["items"])}


def test_model_run_output_is_the_same_on_both_paths(datum, tmp_path, known_models, scripts,
                                                    monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"img{i}.png"), np.roll(quadrant_image(), 16 * i, axis=1))
    root = tmp_path / "project"
    assert datum("project", "create", "-o", root).code == 0
    assert datum("project", "import", "-p", root, "-f", "image_dir", images).code == 0
    xml = known_models["classifier"]
    for kind in ("0x", "1x"):
        result = datum("model", "add", "-p", root, "-l", "openvino", "-n", f"doc{kind}", "--",
                       "-d", xml, "-w", xml.with_suffix(".bin"), "-i", scripts[kind])
        assert result.code == 0, result
    outputs = {}
    for kind in ("0x", "1x"):
        outputs[kind, "fast"] = model_run_output(datum, root, f"doc{kind}", tmp_path / f"f{kind}")
        with monkeypatch.context() as m:
            m.setattr(interpreters, "FAST_PATH", False)
            m.setattr(predictions, "_fast_scores", lambda *args: None)
            outputs[kind, "exact"] = model_run_output(datum, root, f"doc{kind}",
                                                      tmp_path / f"e{kind}")
        assert outputs[kind, "fast"] == outputs[kind, "exact"]
    assert outputs["0x", "fast"] == outputs["1x", "fast"]
    anns = outputs["0x", "fast"]["items"][0][1]
    assert len(anns) == 4 and all(a["type"] == "label" for a in anns)


def test_fast_scores_match_the_loop_and_fall_back_for_odd_input(monkeypatch):
    rng = np.random.default_rng(0)
    probs = rng.random((3, 7)).astype(np.float32)
    variants = [
        [[standins.Label(i, attributes={"score": p}) for i, p in enumerate(row)] for row in probs],
        [[dm.Label(i, attributes={"score": float(p)}) for i, p in enumerate(row)] for row in probs],
        [[standins.Label(i, attributes={"score": p, "x": 1}) for i, p in enumerate(row)][::-1]
         for row in probs],
        [[standins.Label(2, attributes={"score": 0.1}), standins.Label(2, attributes={"score": 0.9}),
          standins.Label(3, attributes={"score": -1.0})], []],
        [[standins.Label(0, attributes={"score": 0.3, "scores": [0.5] * 7})]],
    ]
    fast = [predictions._fast_scores(batch, 7) for batch in variants]
    monkeypatch.setattr(predictions, "_fast_scores", lambda *args: None)
    for got, batch in zip(fast, variants):
        loop = predictions.scores_from_annotations(batch, 7)
        assert got is None or np.array_equal(got, loop)
    assert all(f is not None for f in fast[:4]) and fast[4] is None  # 'scores' vectors: the loop
    np.testing.assert_array_equal(fast[3], np.float32([[0, 0, 0.9, 0, 0, 0, 0], [0] * 7]))


def test_standins_behave_like_datumaro_classes():
    fast, real = standins.Label(3, attributes={"score": 0.5}), dm.Label(3, attributes={"score": 0.5})
    assert fast == real and real == fast and repr(fast) == repr(real)
    assert fast.wrap(label=1) == real.wrap(label=1) and fast.type == real.type
    box = standins.Bbox(1.234, 2, 3.3333, 4, label=2.0, attributes={"score": 0.3})
    rbox = dm.Bbox(1.234, 2, 3.3333, 4, label=2.0, attributes={"score": 0.3})
    assert box == rbox and box.points == rbox.points and box.get_area() == rbox.get_area()
    assert box.wrap(x=5) == rbox.wrap(x=5)
    assert type(standins.to_real(box)) is dm.Bbox and standins.to_real(box) == rbox
    det = predictions.detections_from_annotations([box, fast], 4)
    np.testing.assert_array_equal(det.boxes, [rbox.points])
    with pytest.raises(TypeError):
        standins.Label(None)


# No get_categories; more classes than OpenCV resizes at once -------------------------
NO_CATEGORIES_0X = """
    from datumaro.components.annotation import Label

    def process_outputs(inputs, outputs):
        return [[Label(i, attributes={"score": float(v)}) for i, v in enumerate(row)]
                for row in outputs]
"""


def wide_classifier(out_dir: Path, classes: int = 600) -> Path:
    """[N,3,16,16] -> [N,classes]: class k scores the mean of one of 16 4x4 cells."""
    x = ops.parameter([-1, 3, 16, 16], np.float32, name="input")
    pooled = ops.avg_pool(x, [4, 4], [0, 0], [0, 0], [4, 4], exclude_pad=True)  # [N,3,4,4]
    flat = ops.reshape(pooled, [0, -1], special_zero=True)  # [N,48]
    weights = np.zeros((48, classes), np.float32)
    for k in range(classes):
        weights[[c * 16 + k % 16 for c in range(3)], k] = 1 / (3 * 255) * (1 + k / classes)
    logits = ops.matmul(flat, ops.constant(weights), False, False)
    logits.output(0).get_tensor().set_names({"logits"})
    xml = out_dir / "wide.xml"
    ov.save_model(ov.Model([ops.result(logits)], [x], "wide"), str(xml))
    return xml


def test_all_classes_beyond_512_through_the_cli_without_get_categories(datum, tmp_path):
    xml = wide_classifier(tmp_path)
    script = write(tmp_path, "no_categories.py", NO_CATEGORIES_0X)
    root = tmp_path / "project"
    assert datum("project", "create", "-o", root).code == 0
    result = datum("model", "add", "-p", root, "-l", "openvino", "-n", "wide", "--",
                   "-d", xml, "-w", xml.with_suffix(".bin"), "-i", script)
    assert result.code == 0, result
    image = tmp_path / "cell.png"
    picture = np.full((32, 32, 3), 40, np.uint8)
    picture[8:16, 16:24] = 250  # cell 6 (row 1, col 2 of the 4x4 grid)
    cv2.imwrite(str(image), picture)
    out = tmp_path / "out"
    result = datum("explain", "-p", root, "-m", "wide", "-o", out, "-t", image, "rise",
                   "-s", "32", "--targets", "all", "--mw", "4", "--mh", "4")
    assert result.code == 0, result
    manifest = json.loads((out / "run.json").read_text())
    targets = manifest["items"]["cell"]["targets"]
    assert len(targets) == 600 and [t["name"] for t in targets[:3]] == ["0", "1", "2"]
    assert len(list(out.glob("cell-heatmap-*.png"))) == 600
    sal = np.load(out / "cell-598.npy")  # class 598 reads cell 598 % 16 = 6
    assert sal.shape == (32, 32) and sal[8:16, 16:24].mean() > sal[24:, :8].mean()


def test_short_batches_are_not_padded(known_models):
    """A clean pass of one image costs one evaluation, not a padded batch of 8."""
    lau = launcher(known_models["classifier"], None)
    sent = []

    class Counting:
        def __init__(self, queue):
            self.queue = queue

        def start_async(self, inputs, **kwargs):
            sent.append(len(next(iter(inputs.values()))))
            return self.queue.start_async(inputs, **kwargs)

        def __getattr__(self, name):
            return getattr(self.queue, name)

    lau._queue = Counting(lau._queue)
    image = quadrant_image()
    assert lau.predict([image])[0][0].label == 1
    assert list(lau.stream([[image] * 11])) and sent == [1, 8, 3]


def test_a_label_only_batch_carries_its_scores_read_once(known_models, scripts, monkeypatch):
    lau = launcher(known_models["classifier"], scripts["0x"])
    batch = lau.predict([quadrant_image(), quadrant_image()[::-1]])
    assert batch.class_scores is not None and batch.class_scores.shape == (2, 4)
    monkeypatch.setattr(predictions, "_fast_scores", lambda *args: None)
    np.testing.assert_array_equal(predictions.scores_from_annotations(batch, 4),
                                  predictions.scores_from_annotations(list(batch), 4))


# Score rows: which comprehensions, and the same Labels when read ---------------------
ROWS_HEAD = "from datumaro.components.annotation import Label as L\nimport numpy as np\n"


@pytest.mark.parametrize("body, rewritten", [
    ("def f(o):\n    return [L(i, attributes={'score': p}) for i, p in enumerate(o)]\n", 1),
    ("def f(o):\n    return [L(i, attributes={'score': float(p)}) for i, p in enumerate(o)]\n", 1),
    ("def f(out):\n    r = []\n    for o in out:\n"
     "        r.append([L(i, attributes={'score': p}) for i, p in enumerate(o)])\n    return r\n", 1),
    ("def f(out):\n    return [[L(i, attributes={'score': p}) for i, p in enumerate(o)] for o in out]\n",
     1),
    # the list is read in the script: the comprehension stays
    ("def f(out):\n    r = []\n    for o in out:\n"
     "        r.append([L(i, attributes={'score': p}) for i, p in enumerate(o)])\n"
     "    r[0].reverse()\n    return r\n", 0),
    ("def f(o):\n    x = [L(i, attributes={'score': p}) for i, p in enumerate(o)]\n    return x\n", 0),
    ("def f(o):\n    return [L(i, attributes={'score': p, 'k': 1}) for i, p in enumerate(o)]\n", 0),
    ("def f(o):\n    return [L(i, attributes={'score': 2 * p}) for i, p in enumerate(o)]\n", 0),
    ("def f(o):\n    return [L(i, attributes={'score': p}) for i, p in enumerate(o) if p > 0]\n", 0),
    ("def f(o):\n    return [L(p, attributes={'score': i}) for i, p in enumerate(o)]\n", 0),
])
def test_score_rows_rewrite_only_the_documented_comprehension(body, rewritten):
    import ast

    tree = ast.parse(ROWS_HEAD + body)
    assert score_rows.rewrite(tree, score_rows.label_names(tree)) == rewritten
    namespace = {score_rows.HELPER: score_rows.score_labels}
    exec(compile(tree, "<script>", "exec"), namespace)
    reference = {}
    exec(compile(ROWS_HEAD + body, "<script>", "exec"), reference)
    namespace["L"] = reference["L"] = standins.Label  # as the fast path binds it
    arg = np.float32([0.25, -1.0, 3.0]) if "out" not in body else np.float32([[0.25, -1.0], [2, 1]])
    got, want = namespace["f"](arg), reference["f"](arg)
    assert got == want and repr(got) == repr(want)
    if "out" in body:
        assert all(type(a) is score_rows.ScoreLabels for a in got) == bool(rewritten)


def test_score_labels_are_the_list_they_stand_for():
    import copy
    import pickle

    probs = np.float64([0.5, 0.25, 0.25])
    want = [standins.Label(i, attributes={"score": p}) for i, p in enumerate(probs)]
    make = lambda: score_rows.score_labels(probs, standins.Label)  # noqa: E731
    rows = make()
    assert type(rows) is score_rows.ScoreLabels and rows.pending
    probs[0] = 9.0  # the script reusing its buffer changes nothing already returned
    assert rows == want and not rows.pending and rows[0].attributes["score"] == 0.5
    probs[0] = 0.5
    assert [1] + make() == [1] + want and make() + [1] == want + [1]
    assert list(make()) == want and len(make()) == 3 and make()[-1] == want[-1]
    assert type(pickle.loads(pickle.dumps(make()))) is list and copy.deepcopy(make()) == want
    assert make() == make() and not make() != make() and want[1] in make()
    # not a 1-D float array, or not the stand-in: the comprehension itself
    assert type(score_rows.score_labels([0.5, 0.5], standins.Label)) is list
    assert type(score_rows.score_labels(np.int64([1, 2]), standins.Label)) is list
    assert type(score_rows.score_labels(probs, dm.Label)) is list
    assert type(score_rows.score_labels(probs, standins.Label, lambda x: x)) is list


def test_score_rows_read_as_the_labels_are_read(monkeypatch):
    """Negative scores count 0, rows may be short; NaN or too many classes: the
    Labels are built and the usual checks word the error."""
    rows = [score_rows.score_labels(np.float32([0.5, -0.0, -2.0]), standins.Label),
            score_rows.score_labels(np.float16([0.1]), standins.Label, float)]
    got = predictions.label_scores(rows, 4)
    assert all(r.pending for r in rows)
    monkeypatch.setattr(predictions, "_pending_rows", lambda *args: None)
    built = [list(r) for r in rows]
    fast = np.concatenate([predictions._fast_scores([row], 4) for row in built])
    np.testing.assert_array_equal(got.view(np.int32), fast.view(np.int32))  # bit for bit
    np.testing.assert_array_equal(got, predictions.scores_from_annotations(built, 4))
    monkeypatch.undo()
    bad = [score_rows.score_labels(np.float32([0.5, np.nan]), standins.Label)]
    assert predictions.label_scores(bad, 4) is None and not bad[0].pending
    wide = [score_rows.score_labels(np.float32([0.5] * 5), standins.Label)]
    assert predictions.label_scores(wide, 4) is None
    with pytest.raises(Exception, match="outside the model's 4 categories"):
        predictions.scores_from_annotations(wide, 4)


NAN_DOC_0X = """
    import numpy as np
    from datumaro.components.extractor import *

    def process_outputs(inputs, outputs):
        results = []
        for output in outputs:
            probs = np.where(output == output.max(), np.nan, output)
            results.append([Label(i, attributes={"score": p}) for i, p in enumerate(probs)])
        return results
"""


def test_a_nan_score_row_fails_as_on_the_exact_path(tmp_path, known_models, monkeypatch):
    from explain_plugin.errors import CliError

    script = write(tmp_path, "nan.py", NAN_DOC_0X)
    messages = []
    for fast in (True, False):
        monkeypatch.setattr(interpreters, "FAST_PATH", fast)
        lau = launcher(known_models["classifier"], script)
        assert lau.interpretation_path == ("rows" if fast else "exact")
        with pytest.raises(CliError) as err:
            rise_maps(lau, quadrant_image())
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "NaN score" in messages[0]


def test_cropping_launcher_blends_only_its_window_with_the_same_maps(known_models, monkeypatch):
    """--rescale crop, no script: the engine blends just the part of each masked view
    the model sees, as the model's NCHW input; the maps are those of blending the
    whole view as HWC images."""
    xml = known_models["classifier"]
    lau = OpenVinoLauncher(description=str(xml), weights=str(xml.with_suffix(".bin")), rescale="crop")
    image = cv2.resize(quadrant_image(), (192, 96), interpolation=cv2.INTER_NEAREST)
    from explain_plugin.methods.view import view_of

    view_hw = view_of(lau, image).hw
    rows, cols = lau.model_window(view_hw)
    assert view_hw == (48, 96) and (rows.start, rows.stop, cols.start, cols.stop) == (0, 48, 16, 80)
    sent = []
    submit = lau.submit
    monkeypatch.setattr(lau, "submit", lambda images: sent.append(images.shape) or submit(images))
    windowed = rise_maps(lau, image)
    assert {shape[1:] for shape in sent} == {(3, 48, 64)}  # the NCHW model's input itself
    monkeypatch.setattr(lau, "model_window", lambda hw: None)
    sent.clear()
    whole = rise_maps(lau, image)
    assert {shape[1:] for shape in sent} == {(48, 96, 3)}
    np.testing.assert_array_equal(windowed, whole)
    assert windowed.shape[0] == 4 and np.ptp(windowed[1]) > 0
    # a script sees the images: it gets whole views
    assert OpenVinoLauncher(description=str(xml), weights=str(xml.with_suffix(".bin")),
                            interpreter=str(known_models["classifier_0x"]),
                            rescale="crop").model_window(view_hw) is None


def test_blocked_accumulation_and_chunked_noise_match_step_by_step(monkeypatch):
    """128 masks per matrix product and the noise in chunks of targets: the maps and
    the noise of summing every step at once, up to float32 summation order."""
    from explain_plugin.methods.rise import accumulator
    from explain_plugin.methods.rise.masks import MaskGenerator

    gen, rng = MaskGenerator(5, 5, 0.5, seed=3), np.random.default_rng(3)
    steps = [(rng.random((70, 8), dtype=np.float32), gen.next(8, 20, 20).reshape(8, -1))
             for _ in range(45)]  # 360 masks: two closed blocks per half and an open one

    def run(block: int, rows: int):
        monkeypatch.setattr(accumulator, "BLOCK", block)
        monkeypatch.setattr(accumulator, "NOISE_ROWS", rows)
        acc = accumulator.SaliencyAccumulator(70, 20, 20, 0.5, density=True)
        for weights, masks in steps:
            acc.add(weights, masks)
        return acc.raw(), acc.noise(), acc.used

    blocked, stepwise = run(128, 7), run(1, 1000)
    assert blocked[2] == stepwise[2] == 360
    np.testing.assert_allclose(blocked[0], stepwise[0], rtol=1e-5)
    assert blocked[1] == pytest.approx(stepwise[1], rel=1e-4) and blocked[1] > 0


# 1.5+ scripts: masked images blended as 8-bit, items built without validators ---------
ITEM_CHECKING_1X = DOC_1X.replace(
    '''            img = inp.media.data.astype(np.float32)''',
    '''            assert type(inp) is DatasetItem and isinstance(inp, DatasetItem), type(inp)
            assert inp == DatasetItem(id=inp.id, media=inp.media) and inp.subset == "default"
            assert inp.wrap(id="other").id == "other" and not inp.annotations
            data = inp.media.data
            assert data.dtype == np.uint8 and data.shape == (48, 64, 3), data.dtype
            img = data.astype(np.float32)''')


def float_blend(monkeypatch) -> None:
    """Launchers take masked images as float32, converted to 8-bit per batch (as before)."""
    monkeypatch.setattr(OpenVinoLauncher, "masked_dtype", property(lambda self: np.dtype(np.float32)))


@pytest.mark.parametrize("mask_value", ["0", "mean"])
def test_8bit_blend_gives_the_maps_of_the_float_blend(known_models, scripts, monkeypatch, mask_value):
    """A 1.5+ script reads its items' media as uint8: the engine blends straight into
    uint8 (no clip when the image is within 0..255) with the maps of blending as
    float32 and converting; an image outside 0..255 is still clipped."""
    xml = known_models["classifier"]
    lau = launcher(xml, scripts["1x"])
    assert lau.masked_dtype == np.uint8 and launcher(xml, scripts["0x"]).masked_dtype == np.float32
    sent = []
    submit = lau.submit
    monkeypatch.setattr(lau, "submit", lambda images: sent.append(images.dtype) or submit(images))
    inside = quadrant_image()
    outside = inside.astype(np.float32) * 3 - 200  # -20..490: most pixels clip
    rise = Rise.with_defaults(max_samples=48, seed=5, targets="all", mask_value=mask_value)
    maps = {name: list(rise.explain(lau, image))[-1].maps
            for name, image in (("inside", inside), ("outside", outside))}
    assert set(sent) == {np.dtype(np.uint8)}
    with monkeypatch.context() as m:
        float_blend(m)
        reference = launcher(xml, scripts["1x"])
        for name, image in (("inside", inside), ("outside", outside)):
            np.testing.assert_array_equal(maps[name], list(rise.explain(reference, image))[-1].maps,
                                          err_msg=name)
    assert not np.array_equal(maps["inside"], maps["outside"])


def test_scripts_that_check_the_item_type_get_datumaros_item(tmp_path, known_models, scripts):
    lau = launcher(known_models["classifier"], write(tmp_path, "item_check.py", ITEM_CHECKING_1X))
    assert lau.interpretation_path == "exact" and "type()" in lau.interpretation_reason
    image = quadrant_image()
    maps = rise_maps(lau, image)  # the script's asserts hold for every masked image
    np.testing.assert_array_equal(maps, rise_maps(launcher(known_models["classifier"], scripts["1x"]), image))


def test_script_cpu_counts_only_the_scripts_own_calls(tmp_path, known_models, scripts):
    slow = DOC_1X.replace("            return img.transpose(2, 0, 1), None",
                          "            import time\n"
                          "            end = time.thread_time() + 0.002\n"
                          "            while time.thread_time() < end:\n"
                          "                pass\n"
                          "            return img.transpose(2, 0, 1), None")
    image = quadrant_image()
    for path, least in ((scripts["1x"], 0.0), (write(tmp_path, "slow.py", slow), 0.002 * 16)):
        lau = launcher(known_models["classifier"], path)
        lau.predict([image] * 16)
        assert lau.interpreter.script_cpu == 0.0  # off unless asked for
        lau.interpreter.timing = True
        lau.predict([image] * 16)
        assert least < lau.interpreter.script_cpu < least + 1.0
    builtin = launcher(known_models["classifier"], None)
    builtin.interpreter.timing = True
    builtin.predict([image] * 4)
    assert builtin.interpreter.script_cpu == 0.0  # no script: no user code
