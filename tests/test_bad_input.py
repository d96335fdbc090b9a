"""The bad-input suite: every case must fail with exit code 1, exactly one line on
stderr that names the problem, no traceback, and not one file changed anywhere
(the project, and the victim folders next to it that hostile names aim at).

Each case is ``setup(world) -> (args, fragments)``: setup may break the project
(a hostile config, a truncated model file) before the snapshot is taken.
"""
from __future__ import annotations

import pytest

from bad_input_world import World, build_template

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


# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, world, datum):
    setup, fragments = CASES[name]
    args = setup(world)
    before = world.snapshot()
    result = datum(*args)
    assert result.code == 1, result
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("Error: "), lines[0]
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
    assert (out / "train" / "sub" / "dir" / "ok-heatmap-0.png").is_file()
    assert (out / "train" / "plain-heatmap-0.png").is_file()


def test_item_relpath_never_leaves_the_folder(tmp_path):
    from explain_plugin.names import item_relpath

    for hostile in ("../../x", "/etc/passwd", "a/../../b", "..", ".", "", "a\\..\\..\\b",
                    "train/../../../x", "//server/share"):
        rel = item_relpath(hostile)
        assert (tmp_path / rel).resolve().is_relative_to(tmp_path.resolve()), (hostile, rel)
        assert ".." not in rel.split("/"), (hostile, rel)
    assert item_relpath("train/sub/x") == "train/sub/x"
