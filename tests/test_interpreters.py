"""Interpreter scripts of every Datumaro generation load unchanged; broken ones fail in one line."""
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from datumaro.components.annotation import AnnotationType, Bbox, Label

import explain_plugin.samples as samples
from explain_plugin.errors import CliError
from explain_plugin.launchers.interpreters import BatchInterpreter, ItemInterpreter, load_interpreter

SAMPLES = Path(samples.__file__).parent / "interpreters"


def write(tmp_path: Path, text: str, name: str = "interp.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# Loading each kind -------------------------------------------------------
def test_sample_0x_module():
    interp = load_interpreter(SAMPLES / "known_classifier_0x.py")
    assert isinstance(interp, BatchInterpreter) and interp.kind == "0.x"
    labels = interp.get_categories()[AnnotationType.label]
    assert [c.name for c in labels] == ["top_left", "top_right", "bottom_left", "bottom_right"]
    out = interp.process_outputs(np.zeros((2, 4, 4, 3)), np.array([[0, 0, 0, 0], [1000, 0, 0, 0]], np.float32), 2)
    assert [len(r) for r in out] == [4, 4]
    assert out[1][0].attributes["score"] == pytest.approx(1.0)  # stable softmax: no NaN


def test_sample_1x_preprocess_item():
    interp = load_interpreter(SAMPLES / "known_classifier_1x.py")
    assert isinstance(interp, ItemInterpreter) and interp.kind == "1.5" and interp.takes_item
    x, info = interp.preprocess(np.zeros((10, 20, 3), np.uint8))
    assert x.shape == (3, 48, 64) and info == (10, 20)


def test_1x_process_outputs_class(tmp_path):
    path = write(tmp_path, """
        from datumaro.components.abstracts.model_interpreter import IModelInterpreter
        from datumaro.components.annotation import AnnotationType, Label, LabelCategories

        class Old(IModelInterpreter):
            def get_categories(self):
                return {AnnotationType.label: LabelCategories.from_iterable("ab")}
            def process_outputs(self, inputs, outputs):
                return [[Label(int(o.argmax()), attributes={"score": 1.0})] for o in outputs]
            def normalize(self, inputs):
                return inputs / 255
            def resize(self, inputs):
                return inputs
    """)
    interp = load_interpreter(path)
    assert isinstance(interp, BatchInterpreter) and interp.kind == "1.0"
    assert interp.normalize(np.full((1, 3, 2, 2), 255.0)).max() == 1.0
    assert interp.process_outputs([None], np.array([[0.0, 1.0]]), 1)[0][0].label == 1


@pytest.mark.parametrize(
    "signature, takes_item",
    [
        ("self, img: np.ndarray", False),
        ("self, inp: DatasetItem", True),
        ("self, img", False),  # Datumaro 1.4 named it img
        ("self, inp", True),
        ("self, whatever", True),  # the latest generation by default
    ],
)
def test_1x_preprocess_flavour_from_signature(tmp_path, signature, takes_item):
    path = write(tmp_path, f"""
        import numpy as np
        from datumaro.components.abstracts import IModelInterpreter
        from datumaro.components.dataset_base import DatasetItem

        class Interp(IModelInterpreter):
            def preprocess({signature}):
                return 0, 0
            def postprocess(self, pred, info):
                return []
            def get_categories(self):
                return None
    """)
    interp = load_interpreter(path)
    assert isinstance(interp, ItemInterpreter) and interp.takes_item is takes_item
    assert interp.kind == ("1.5" if takes_item else "1.4")
    assert interp.get_categories() == {}


def test_preprocess_gets_array_or_item(tmp_path):
    path = write(tmp_path, """
        from datumaro.components.abstracts.model_interpreter import IModelInterpreter
        from datumaro.components.media import Image

        class Interp(IModelInterpreter):
            def preprocess(self, inp):
                return inp.media_as(Image).data, inp.id
            def postprocess(self, pred, info):
                return []
    """)
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    data, info = load_interpreter(path).preprocess(image, 7)
    np.testing.assert_array_equal(data, image)
    assert info == "7"


# Compatibility imports ------------------------------------------------------
def test_compat_imports_resolve_at_load_and_call_time(tmp_path):
    path = write(tmp_path, """
        from datumaro.components.extractor import *
        from datumaro.util.annotation_util import softmax
        import datumaro.util.annotation_util as au

        assert all(n in globals() for n in ("AnnotationType", "Label", "LabelCategories", "Bbox",
            "Points", "Polygon", "Mask", "DatasetItem", "Importer", "Extractor"))

        def process_outputs(inputs, outputs):
            from datumaro.components.extractor import Label as L  # lazy import
            from datumaro.util.annotation_util import softmax as lazy_softmax
            p = softmax(outputs[0])
            q = au.softmax(outputs[0])
            r = lazy_softmax(outputs[0])
            return [[L(0, attributes={"score": float(p[0]), "q": float(q[0]), "r": float(r[0])})]]
    """)
    interp = load_interpreter(path)
    ann = interp.process_outputs([None], np.array([[1000.0, 0.0]], np.float32), 1)[0][0]
    assert ann.attributes == {"score": 1.0, "q": 1.0, "r": 1.0}
    # Nothing leaks into datumaro for other code.
    assert "datumaro.components.extractor" not in sys.modules
    from datumaro.util.annotation_util import softmax

    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(softmax(np.array([1000.0, 0.0]))[0])


def test_stable_softmax_keeps_datumaro_semantics():
    from datumaro.util import annotation_util

    from explain_plugin.launchers.compat import stable_softmax

    x = np.array([[1.0, 2.0], [3.0, 0.5], [0.0, -1.0]])
    np.testing.assert_allclose(stable_softmax(x), annotation_util.softmax(x))  # over axis 0
    np.testing.assert_allclose(stable_softmax(np.array([1000.0, 1000.0])), [0.5, 0.5])


# Broken scripts ----------------------------------------------------------------
BROKEN = {
    "syntax": ("def process_outputs(inputs, outputs)\n    return []\n", r"syntax error on line 1"),
    "missing": ("def get_categories():\n    return None\n",
                r"expected a process_outputs\(inputs, outputs\) function or one IModelInterpreter"),
    "import": ("import no_such_module_here\n", r"loading the interpreter script failed: ModuleNotFoundError"),
    "two": (
        "from datumaro.components.abstracts import IModelInterpreter\n"
        "class A(IModelInterpreter):\n    pass\n"
        "class B(IModelInterpreter):\n    pass\n",
        r"expected exactly one IModelInterpreter subclass, found 2 \(A, B\)",
    ),
    "zero_methods": (
        "from datumaro.components.abstracts import IModelInterpreter\n"
        "class A(IModelInterpreter):\n    pass\n",
        r"A must define preprocess\(\) and postprocess\(\)",
    ),
    "ctor": (
        "from datumaro.components.abstracts import IModelInterpreter\n"
        "class A(IModelInterpreter):\n    def __init__(self):\n        raise ValueError('no config')\n",
        r"A\(\) failed: ValueError: no config",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_scripts_fail_in_one_line(tmp_path, case):
    text, message = BROKEN[case]
    path = tmp_path / f"{case}.py"
    path.write_text(text)
    with pytest.raises(CliError, match=message) as info:
        load_interpreter(path)
    assert str(info.value).startswith(f"{case}.py: ") and "\n" not in str(info.value)


RESULTS = {
    "flat": ("[Label(0, attributes={'score': 1.0}) for _ in inputs]",
             r"process_outputs\(\) must return one list of annotations per image \(2\), got a flat list"),
    "count": ("[[]]", r"process_outputs\(\) must return one list of annotations per image: expected 2, got 1"),
    "none": ("None", r"process_outputs\(\) must return a list with one list of annotations per image \(2\), got NoneType"),
    "item": ("[[1], []]", r"process_outputs\(\) must return a list of annotations per image, got a list holding int"),
    "raises": ("outputs['missing']", r"process_outputs\(\) failed: IndexError"),
}


@pytest.mark.parametrize("case", sorted(RESULTS))
def test_bad_results_fail_in_one_line(tmp_path, case):
    body, message = RESULTS[case]
    path = write(tmp_path, f"""
        from datumaro.components.extractor import Label
        def process_outputs(inputs, outputs):
            return {body}
    """, name=f"{case}.py")
    interp = load_interpreter(path)
    with pytest.raises(CliError, match=message) as info:
        interp.process_outputs([None, None], np.zeros((2, 3)), 2)
    assert str(info.value).startswith(f"{case}.py: ") and "\n" not in str(info.value)


def test_bad_item_results(tmp_path):
    path = write(tmp_path, """
        from datumaro.components.abstracts import IModelInterpreter
        class Interp(IModelInterpreter):
            def preprocess(self, inp):
                return inp
            def postprocess(self, pred, info):
                return None
    """, name="item.py")
    interp = load_interpreter(path)
    with pytest.raises(CliError, match=r"item\.py: preprocess\(\) must return a tuple \(input, info\)"):
        interp.preprocess(np.zeros((2, 2, 3)))
    with pytest.raises(CliError, match=r"item\.py: postprocess\(\) must return a list of annotations"):
        interp.postprocess({}, None)


def test_missing_script():
    with pytest.raises(CliError, match="interpreter script '.*nope.py' not found"):
        load_interpreter("nope.py")


def test_scripts_can_return_bboxes_with_float_labels(tmp_path):
    # Datumaro's 1.x face sample passes det[1] (a float) as the label.
    path = write(tmp_path, """
        from datumaro.components.extractor import Bbox
        def process_outputs(inputs, outputs):
            return [[Bbox(0, 0, 1, 1, label=o[0], attributes={"score": 1.0})] for o in outputs]
    """)
    (ann,) = load_interpreter(path).process_outputs([None], np.array([[1.0]]), 1)[0]
    assert isinstance(ann, Bbox) and ann.label == 1
    assert isinstance(Label(2.0).label, int)
