"""The bad-input suite: every case must fail with exit code 1, exactly one line on
stderr that names the problem, no traceback, and not one file changed anywhere
(the project, and the victim folders next to it that hostile names aim at).

Each case is ``setup(world) -> (args, fragments)``: setup may break the project
(a hostile config, a truncated model file) before the snapshot is taken.
"""
from __future__ import annotations

import pytest

from bad_input_world import CLASSIFIER_SCRIPT, DETECTOR_SCRIPT, World, build_template

CASES = {}


def case(*fragments: str):
    """Register ``setup(w) -> args`` under its function name; the error must contain
    every fragment."""
    def register(setup):
        CASES[setup.__name__] = (setup, fragments)
        return setup
    return register


@pytest.fixture(scope="session")
def template(tmp_path_factory, known_models):
    return build_template(tmp_path_factory.mktemp("bad_input_template"), known_models)


@pytest.fixture
def world(tmp_path, template):
    return World(tmp_path / "w", template)


def clf_args(w: World) -> list:
    xml = w.model_file("clf", ".xml")
    return ["-d", xml, "-w", xml.with_suffix(".bin"), "-i", w.model_file("clf", ".py")]


def explain(w: World, *args, model: str = "clf", method=("rise", "-s", "8")) -> list:
    return ["explain", "-p", w.proj, "-m", model, *args, *method]


# Hostile names: nothing outside the project may be written or deleted ----------------
@case("model name", "'..'")
def model_add_dotdot_name(w):
    return ["model", "add", "-p", w.proj, "-n", "../../../victim", "-l", "openvino",
            "--copy", "--", *clf_args(w)]


@case("model name", "absolute path")
def model_add_absolute_name(w):
    return ["model", "add", "-p", w.proj, "-n", str(w.base / "victim"), "-l", "openvino",
            "--", *clf_args(w)]


@case("model name", "'/'")
def model_add_name_with_separator(w):
    return ["model", "add", "-p", w.proj, "-n", "a/b", "-l", "openvino", "--", *clf_args(w)]


@case("model name", "not a name")
def model_add_dotdot_alone(w):
    return ["model", "add", "-p", w.proj, "-n", "..", "-l", "openvino", "--copy", "--",
            *clf_args(w)]


@case("model name", "'..'")
def model_remove_dotdot(w):
    return ["model", "remove", "-p", w.proj, "../../../victim"]


@case("model name", "'..'", "rename it in")
def model_remove_hostile_name_in_config(w):
    w.add_model_entry("x/../../../victim")
    return ["model", "remove", "-p", w.proj, "x/../../../victim"]


@case("model name", "'..'", "rename it in")
def explain_with_hostile_model_in_config(w):
    w.add_model_entry("x/../../../escaped")
    return explain(w, "-t", w.proj / "images" / "a.png", model="x/../../../escaped")


@case("model name", "'..'")
def model_run_with_hostile_model_in_config(w):
    w.add_model_entry("x/../../../escaped")
    return ["model", "run", "-p", w.proj, "-m", "x/../../../escaped"]


@case("holds the project")
def model_run_overwrite_into_the_project(w):
    return ["model", "run", "-p", w.proj, "-m", "clf", "-o", w.proj, "--overwrite"]


@case("source name", "'..'", "rename it in")
def project_remove_hostile_source_in_config(w):
    w.add_source_entry("../victim2")
    return ["project", "remove", "-p", w.proj, "../victim2"]


@case("source name", "'..'")
def project_remove_dotdot_not_in_config(w):
    return ["project", "remove", "-p", w.proj, "../victim"]


@case("source name", "'..'")
def project_import_dotdot_name(w):
    return ["project", "import", "-p", w.proj, "-n", "../victim3", "-f", "image_dir",
            w.proj / "images"]


@case("source name", "absolute path")
def project_import_absolute_name(w):
    return ["project", "import", "-p", w.proj, "-n", str(w.base / "victim3"), "-f",
            "image_dir", w.proj / "images"]


@case("source name", "'..'", "rename it in")
def explain_project_with_hostile_source_in_config(w):
    w.add_source_entry("../victim2")
    return explain(w)


@case("source 'images' path", "outside")
def source_path_escaping_its_folder(w):
    w.add_source_entry("images", path="../../victim")
    return explain(w, "-t", "images")


@case("Datumaro says", "'../../escaped")
def dataset_with_dotdot_item_id(w):
    ds = w.dataset(["escaped_x", "ok"])
    ann = ds / "annotations" / "train.json"
    ann.write_text(ann.read_text().replace("escaped_x", "../../escaped"))
    return explain(w, f"{ds}:datumaro")



def image_target(w: World) -> list:
    return ["-t", w.proj / "images" / "a.png"]


# Non-finite numbers: refused in one line, nothing written ------------------------------
@case("nan_scores.py", "returned a NaN score")
def script_returns_nan_scores(w):
    w.use_script("clf", w.script("nan_scores.py", CLASSIFIER_SCRIPT.format(
        change="scores[1] = float('nan')")))
    return explain(w, *image_target(w))


@case("inf_scores.py", "returned an infinite score")
def script_returns_inf_scores(w):
    w.use_script("clf", w.script("inf_scores.py", CLASSIFIER_SCRIPT.format(
        change="scores[2] = float('inf')")))
    return explain(w, *image_target(w))


@case("nan_when_masked.py", "returned a NaN score")
def script_returns_nan_only_for_masked_images(w):
    # The clean image (mean ~102) scores finite numbers; masked (darker) images give NaN.
    w.use_script("clf", w.script("nan_when_masked.py", CLASSIFIER_SCRIPT.format(
        change="scores = scores if image.mean() > 100 else [float('nan')] * 4")))
    return explain(w, *image_target(w), method=("rise", "-s", "64"))


@case("nan_box.py", "returned a NaN Bbox coordinate")
def detector_script_returns_a_nan_box(w):
    w.use_script("det", w.script("nan_box.py", DETECTOR_SCRIPT.format(x="float('nan')")))
    return explain(w, *image_target(w), model="det")


@case("inf_box.py", "returned an infinite Bbox coordinate")
def detector_script_returns_an_infinite_box(w):
    w.use_script("det", w.script("inf_box.py", DETECTOR_SCRIPT.format(x="float('inf')")))
    return explain(w, *image_target(w), model="det")


@case("nan_model.xml", "holds NaN", "re-export")
def model_with_nan_weights(w):
    w.add_model_entry("nanm", {"launcher": "openvino",
                               "options": {"description": str(w.nan_model())}})
    return explain(w, *image_target(w), model="nanm")


@case("nan_model.xml", "holds NaN")
def model_run_with_nan_weights(w):
    w.add_model_entry("nanm", {"launcher": "openvino",
                               "options": {"description": str(w.nan_model())}})
    return ["model", "run", "-p", w.proj, "-m", "nanm", "-o", w.base / "pred"]


# Broken model files: OpenVINO's C++ messages translated ---------------------------------
def _cut(path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@case("the .xml is not a readable OpenVINO IR")
def truncated_xml(w):
    _cut(w.model_file("clf", ".xml"), 0.5)
    return explain(w, *image_target(w))


@case("the .xml is not a readable OpenVINO IR")
def empty_xml(w):
    _cut(w.model_file("clf", ".xml"), 0)
    return explain(w, *image_target(w))


@case("the .xml is not a readable OpenVINO IR")
def xml_that_is_not_xml(w):
    w.model_file("clf", ".xml").write_text("this is not a model")
    return explain(w, *image_target(w))


@case("the .bin does not match the .xml")
def truncated_bin(w):
    _cut(w.model_file("clf", ".bin"), 0.5)
    return explain(w, *image_target(w))


@case("the .bin does not match the .xml")
def empty_bin(w):
    _cut(w.model_file("clf", ".bin"), 0)
    return explain(w, *image_target(w))


@case("the .bin does not match the .xml")
def bin_of_another_model(w):
    w.model_file("clf", ".bin").write_bytes(w.model_file("det", ".bin").read_bytes())
    return explain(w, *image_target(w))


@case("inputs/cut.xml'", "the .xml is not a readable OpenVINO IR")
def model_add_with_a_truncated_xml(w):
    import shutil

    xml = w.base / "inputs" / "cut.xml"
    xml.parent.mkdir(exist_ok=True)
    shutil.copy(w.model_file("clf", ".xml"), xml)
    _cut(xml, 0.6)
    return ["model", "add", "-p", w.proj, "-n", "cut", "-l", "openvino", "--copy", "--",
            "-d", xml, "-w", w.model_file("clf", ".bin")]


@case("not found")
def model_add_with_a_missing_file(w):
    return ["model", "add", "-p", w.proj, "-l", "openvino", "--", "-d", w.base / "nope.xml"]


@case("device NOPE")
def unknown_device_in_config(w):
    w.edit(w.config, lambda c: c["models"]["clf"]["options"].update(device="NOPE"))
    return explain(w, *image_target(w))


# Broken and odd images ------------------------------------------------------------------
def _encoded(ext: str) -> bytes:
    import cv2
    import numpy as np

    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    return cv2.imencode(ext, image)[1].tobytes()


@case("truncated or corrupt", "replace or re-export")
def truncated_png(w):
    path = w.image("cut.png")
    path.write_bytes(_encoded(".png")[:400])
    return explain(w, "-t", path)


@case("truncated or corrupt")
def truncated_jpeg(w):
    path = w.image("cut.jpg")
    path.write_bytes(_encoded(".jpg")[:600])
    return explain(w, "-t", path)


@case("is empty")
def empty_png(w):
    path = w.image("empty.png")
    path.write_bytes(b"")
    return explain(w, "-t", path)


@case("truncated or corrupt")
def png_that_is_not_an_image(w):
    path = w.image("text.png")
    path.write_text("hello, I am not a PNG\n")
    return explain(w, "-t", path)


@case("not 0..1 or 0..255")
def float_image_out_of_range(w):
    import numpy as np

    return explain(w, "-t", w.image("big.tiff", np.full((48, 64, 3), 1000, np.float32)))


@case("NaN or infinite pixel values")
def float_image_with_nan(w):
    import numpy as np

    image = np.full((48, 64, 3), 0.5, np.float32)
    image[3, 4] = np.nan
    return explain(w, "-t", w.image("nan.tiff", image))


# Config files of the wrong shape: the key and the expected type -------------------------
@case("models.clf.options must be a mapping or null, got a string")
def config_options_is_a_string(w):
    w.edit(w.config, lambda c: c["models"]["clf"].update(options="fast please"))
    return ["model", "info", "-p", w.proj, "clf"]


@case("models must be a mapping", "got a list")
def config_models_is_a_list(w):
    w.edit(w.config, lambda c: c.update(models=["clf"]))
    return ["project", "info", "-p", w.proj]


@case("models.clf has no 'launcher'")
def config_model_without_launcher(w):
    w.edit(w.config, lambda c: c["models"]["clf"].pop("launcher"))
    return explain(w, *image_target(w))


@case("sources.images.format must be a string, got an integer")
def tree_source_format_is_a_number(w):
    w.edit(w.tree, lambda t: t["sources"]["images"].update(format=5))
    return ["project", "info", "-p", w.proj]


@case("sources must be a mapping", "got a string")
def tree_sources_is_a_string(w):
    w.edit(w.tree, lambda t: t.update(sources="images"))
    return ["project", "remove", "-p", w.proj, "images"]


@case("sources.images.path must be a string or null, got a list")
def tree_source_path_is_a_list(w):
    w.edit(w.tree, lambda t: t["sources"]["images"].update(path=["a", "b"]))
    return explain(w, "images")


@case("format_version must be an integer, got a string")
def config_format_version_is_a_string(w):
    w.edit(w.config, lambda c: c.update(format_version="two"))
    return ["model", "remove", "-p", w.proj, "clf"]


@case("config.yaml", "sources.frames must be a mapping, got a string")
def v1_config_source_is_a_string(w):
    old = w.base / "old"
    (old / ".datumaro").mkdir(parents=True)
    (old / ".datumaro" / "config.yaml").write_text(
        "format_version: 1\nsources: {frames: frames}\nmodels: {}\n")
    return ["project", "info", "-p", old]


@case("models.clf.options.batch_size must be an integer, got a string")
def config_option_of_the_wrong_type(w):
    w.edit(w.config, lambda c: c["models"]["clf"]["options"].update(batch_size="eight"))
    return explain(w, *image_target(w))


@case("models.det.options.conf_thresh must be a number, got a list")
def config_number_option_is_a_list(w):
    w.edit(w.config, lambda c: c["models"]["det"]["options"].update(conf_thresh=[0.5]))
    return ["model", "run", "-p", w.proj, "-m", "det", "-o", w.base / "pred"]


@case("malformed YAML", "config.yml")
def config_is_not_yaml(w):
    w.config.write_text("models: {clf: [\n")
    return ["model", "info", "-p", w.proj]


# Everyday mistakes ---------------------------------------------------------------------
@case("unknown model 'nope'", "datum model add")
def unknown_model(w):
    return explain(w, *image_target(w), model="nope")


@case("unknown target", "no such file")
def target_that_does_not_exist(w):
    return explain(w, "-t", w.base / "missing.png")


@case("two targets")
def two_different_targets(w):
    return explain(w, "-t", w.proj / "images" / "a.png", "images")


@case("does not exist")
def import_a_path_that_does_not_exist(w):
    return ["project", "import", "-p", w.proj, "-f", "image_dir", w.base / "nowhere"]


@case("unknown dataset format 'nosuch'")
def import_with_an_unknown_format(w):
    return ["project", "import", "-p", w.proj, "-f", "nosuch", w.proj / "images"]


@case("unknown launcher 'tensorflow'")
def model_add_unknown_launcher(w):
    return ["model", "add", "-p", w.proj, "-l", "tensorflow", "--", "-d", "m.pb"]


@case("unknown model 'ghost'")
def model_remove_unknown(w):
    return ["model", "remove", "-p", w.proj, "ghost"]


@case("already exists", "--overwrite")
def project_create_over_a_project(w):
    return ["project", "create", "-o", w.proj]


@case("is not empty", "--overwrite")
def model_run_into_a_non_empty_folder(w):
    out = w.base / "victim"
    return ["model", "run", "-p", w.proj, "-m", "clf", "-o", out]


@case("nosuchlabel")
def explain_an_unknown_label(w):
    return explain(w, *image_target(w), method=("rise", "-s", "8", "--targets", "nosuchlabel"))


@case("holds another run", "--overwrite")
def output_folder_of_another_run(w):
    out = w.base / "victim"
    (out / "run.json").write_text('{"method": "rex"}\n')
    return explain(w, "-o", out, *image_target(w))


@case("is a file", "datum explain --help")
def output_folder_is_a_file(w):
    return explain(w, "-o", w.base / "victim" / "keep.txt", *image_target(w))


@case("cannot write to the output folder")
def output_folder_inside_a_file(w):
    return explain(w, "-o", w.base / "victim" / "keep.txt" / "run", *image_target(w))


@case("No such option '--no-such-flag'", "datum explain rise --help")
def unknown_option(w):
    return explain(w, *image_target(w), method=("rise", "--no-such-flag"))


@case("Invalid value for '-s'", "datum explain rise --help")
def samples_not_a_number(w):
    return explain(w, *image_target(w), method=("rise", "-s", "many"))


@case("no Datumaro project")
def no_project_here(w):
    return explain(w, *image_target(w))[:2] + [w.base / "victim"] + \
        explain(w, *image_target(w))[3:]


# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, world, datum):
    setup, fragments = CASES[name]
    args = setup(world)
    before = world.snapshot()
    result = datum(*args)
    assert result.code == (2 if "--help" in " ".join(fragments) else 1), result
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("Error: "), lines[0]
    print(f"\n{name}: {lines[0]}")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert world.snapshot() == before, "a refused command changed files"
    assert (world.base / "victim" / "keep.txt").is_file()
    assert (world.base / "victim2" / "keep.txt").is_file()


def test_suite_is_big_enough():
    assert len(CASES) >= 40, len(CASES)


def test_model_remove_of_a_symlinked_model_folder_removes_only_the_link(world, datum):
    import shutil

    models = world.proj / ".datumaro" / "models"
    shutil.copytree(models / "clf", world.base / "victim" / "clf")
    shutil.rmtree(models / "clf")
    (models / "clf").symlink_to(world.base / "victim" / "clf")
    outside = {p: h for p, h in world.snapshot().items() if p.startswith("victim")}
    result = datum("model", "remove", "-p", world.proj, "clf")
    assert result.code == 0, result
    assert not (models / "clf").exists() and not (models / "clf").is_symlink()
    assert {p: h for p, h in world.snapshot().items() if p.startswith("victim")} == outside


def test_item_ids_with_subfolders_stay_inside_the_output_folder(world, datum):
    import json

    ds = world.dataset(["sub/dir/ok", "plain"])
    out = world.base / "out"
    result = datum("explain", "-p", world.proj, "-m", "clf", "-o", out, f"{ds}:datumaro",
                   "rise", "-s", "8")
    assert result.code == 0, result
    manifest = json.loads((out / "run.json").read_text())
    assert set(manifest["items"]) == {"train/sub/dir/ok", "train/plain"}
    files = [f for entry in manifest["items"].values() for f in entry["files"]]
    assert any(f.startswith("heatmaps/train/sub/dir/ok/") for f in files), files
    for f in files:
        assert (out / f).is_file() and (out / f).resolve().is_relative_to(out.resolve()), f


def test_a_corrupt_image_in_a_source_stops_nothing_else_and_exits_1(world, datum):
    (world.proj / "images" / "bad.png").write_bytes(_encoded(".png")[:300])
    outside = {p: h for p, h in world.snapshot().items() if not p.startswith("proj")}
    result = datum(*explain(world, "images"))
    assert result.code == 1 and "Traceback" not in result.err, result
    line = result.err.splitlines()[-1]
    assert line.startswith("Error: 1 item(s) not explained: ") and "bad.png" in line, line
    assert "truncated or corrupt" in line and "rerun the same command" in line, line
    assert {p: h for p, h in world.snapshot().items() if not p.startswith("proj")} == outside
    assert "Explained " in result.out  # the readable items are saved


def test_item_dir_never_leaves_the_folder(tmp_path):
    from explain_plugin.store.layout import item_dir

    hostile = ("../../x", "/etc/passwd", "a/../../b", "..", ".", "", "a\\..\\..\\b",
               "train/../../../x", "//server/share", "x/..")
    rels = [item_dir(h) for h in hostile]
    for h, rel in zip(hostile, rels):
        assert (tmp_path / rel).resolve().is_relative_to(tmp_path.resolve()), (h, rel)
        assert ".." not in rel.split("/") and not rel.startswith("/"), (h, rel)
    assert len(set(rels)) == len(rels)  # ids made safe never share a folder
    assert item_dir("train/sub/x") == "train/sub/x"
