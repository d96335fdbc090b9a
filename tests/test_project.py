"""Projects read and written as Datumaro <= 1.11 did, and one-line errors."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import yaml

from conftest import write_images
from explain_plugin.project import Project

V2_CONFIG = """\
format_version: 2
models:
  my-model: {launcher: openvino, options: {description: assets/model.xml, device: CPU,
             interpreter: assets/model_interp.py, output_layers: null, weights: assets/model.bin}}
"""
V2_TREE = """\
format_version: 2
sources: {src1: {format: image_dir, hash: '', options: {subset: null}, path: '', url: /abs/ds}}
build_targets: {project: {stages: [{name: root, type: project, kind: '', hash: '', params: {}}]},
                src1: {parents: [], stages: [{name: root, type: source, kind: '', hash: '', params: {}}]}}
"""


def make_v2_project(root: Path) -> Path:
    """A project exactly as Datumaro 1.11.1 wrote it (plus the git/dvc it made)."""
    (root / ".datumaro" / "tree").mkdir(parents=True)
    (root / ".datumaro" / "config.yml").write_text(V2_CONFIG)
    (root / ".datumaro" / "tree" / "config.yml").write_text(V2_TREE)
    (root / ".datumaro" / "cache").mkdir()
    (root / ".git").mkdir()
    (root / ".dvc").mkdir()
    (root / ".dvcignore").write_text("")
    write_images(root / "src1", count=4)
    return root


def make_v1_project(root: Path) -> Path:
    (root / ".datumaro").mkdir(parents=True)
    (root / ".datumaro" / "config.yaml").write_text(textwrap.dedent("""\
        project_name: old
        format_version: 1
        subsets: []
        sources:
          frames: {url: '', format: image_dir, options: {}}
        models:
          det: {launcher: openvino, options: {description: model.xml, weights: model.bin,
                interpreter: interp.py, device: CPU}}
    """))
    write_images(root / "sources" / "frames", count=2)
    return root


def test_reads_a_datumaro_1_11_v2_project(tmp_path, datum):
    root = make_v2_project(tmp_path / "proj")
    project = Project.open(root)
    assert project.version == 2
    assert project.models["my-model"]["options"]["interpreter"] == "assets/model_interp.py"
    assert project.sources["src1"]["format"] == "image_dir"
    assert len(project.make_dataset("src1")) == 4
    assert len(project.make_dataset("project")) == 4
    result = datum("project", "info", "-p", root)
    assert result.code == 0, result
    assert "'src1'" in result.out and "items: 4" in result.out and "'my-model'" in result.out


def test_reads_a_v1_project(tmp_path, datum):
    root = make_v1_project(tmp_path / "old")
    project = Project.open(root)
    assert project.version == 1
    assert project.models["det"]["launcher"] == "openvino"
    assert len(project.make_dataset("frames")) == 2
    result = datum("project", "info", "-p", root)
    assert result.code == 0 and "items: 2" in result.out and "'det'" in result.out


def test_round_trip_create_import_model_info_remove(tmp_path, datum, image_dir, known_models):
    root = tmp_path / "p"
    assert datum("project", "create", "-o", root).code == 0
    result = datum("project", "import", "-p", root, "-f", "image_dir", image_dir)
    assert result.code == 0, result
    assert (root / "source-1" / "img0.png").is_file()

    xml = known_models["classifier"]
    result = datum("model", "add", "-p", root, "-l", "openvino", "--", "-d", xml,
                   "-w", xml.with_suffix(".bin"), "-i", known_models["classifier_0x"])
    assert result.code == 0, result
    result = datum("model", "add", "-p", root, "-l", "openvino", "--copy", "--", "-d", xml,
                   "-w", xml.with_suffix(".bin"), "-i", known_models["classifier_0x"])
    assert result.code == 0, result

    config = yaml.safe_load((root / ".datumaro" / "config.yml").read_text())
    assert config["format_version"] == 2
    assert config["models"]["model-0"] == {"launcher": "openvino", "options": {
        "description": str(xml), "weights": str(xml.with_suffix(".bin")),
        "interpreter": str(known_models["classifier_0x"]), "device": "CPU",
        "output_layers": None}}
    assert config["models"]["model-1"]["options"]["description"] == "classifier.xml"
    assert (root / ".datumaro" / "models" / "model-1" / "known_classifier_0x.py").is_file()

    tree = yaml.safe_load((root / ".datumaro" / "tree" / "config.yml").read_text())
    assert tree["sources"]["source-1"] == {"format": "image_dir", "hash": "",
                                           "options": {"subset": None}, "path": "",
                                           "url": str(image_dir.resolve())}
    assert tree["build_targets"]["source-1"]["stages"][0]["type"] == "source"

    info = datum("model", "info", "-p", root, "model-1")
    assert info.code == 0, info
    assert "top_left" in info.out and "input" in info.out
    info = datum("project", "info", "-p", root)
    assert "items: 3" in info.out and "'model-0'" in info.out

    assert datum("model", "remove", "-p", root, "model-1").code == 0
    assert not (root / ".datumaro" / "models" / "model-1").exists()
    assert datum("project", "remove", "-p", root, "source-1").code == 0
    assert not (root / "source-1").exists()
    project = Project.open(root)
    assert list(project.models) == ["model-0"] and not project.sources


def assert_one_line_error(result, *fragments):
    assert result.code == 1, result
    assert "Traceback" not in result.err
    lines = [l for l in result.err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_error_no_project(tmp_path, datum):
    assert_one_line_error(datum("project", "info", "-p", tmp_path), "no Datumaro project",
                          "datum project create")


def test_error_malformed_yaml(tmp_path, datum):
    root = make_v2_project(tmp_path / "proj")
    (root / ".datumaro" / "config.yml").write_text("models: {a: [\n")
    assert_one_line_error(datum("project", "info", "-p", root), "malformed YAML", "config.yml")


def test_error_unknown_model_launcher_source(tmp_path, datum):
    root = make_v2_project(tmp_path / "proj")
    before = (root / ".datumaro" / "config.yml").read_bytes()
    assert_one_line_error(datum("model", "info", "-p", root, "nope"), "unknown model 'nope'",
                          "my-model")
    assert_one_line_error(datum("model", "add", "-p", root, "-l", "tensorflow", "--", "-d", "x"),
                          "unknown launcher 'tensorflow'", "openvino")
    assert_one_line_error(datum("project", "remove", "-p", root, "nope"), "unknown source 'nope'")
    assert (root / ".datumaro" / "config.yml").read_bytes() == before


def test_error_missing_model_files_leaves_project_intact(tmp_path, datum):
    root = tmp_path / "p"
    datum("project", "create", "-o", root)
    before = (root / ".datumaro" / "config.yml").read_bytes()
    result = datum("model", "add", "-p", root, "-l", "openvino", "--copy", "--",
                   "-d", tmp_path / "missing.xml", "-w", tmp_path / "missing.bin")
    assert_one_line_error(result, "missing.xml")
    assert (root / ".datumaro" / "config.yml").read_bytes() == before
    assert not (root / ".datumaro" / "models").exists() or not any(
        (root / ".datumaro" / "models").iterdir())


def test_error_bad_import_leaves_project_intact(tmp_path, datum, image_dir):
    root = tmp_path / "p"
    datum("project", "create", "-o", root)
    before = sorted(p.name for p in root.iterdir())
    assert_one_line_error(datum("project", "import", "-p", root, "-f", "no_such_format", image_dir),
                          "unknown dataset format")
    assert_one_line_error(datum("project", "import", "-p", root, "-f", "coco", image_dir),
                          "cannot import")
    assert_one_line_error(datum("project", "import", "-p", root, "-f", "image_dir",
                                tmp_path / "nowhere"), "does not exist")
    assert sorted(p.name for p in root.iterdir()) == before
    assert not Project.open(root).sources


def test_create_refuses_to_overwrite(tmp_path, datum):
    root = tmp_path / "p"
    assert datum("project", "create", "-o", root).code == 0
    assert_one_line_error(datum("project", "create", "-o", root), "--overwrite")
    assert datum("project", "create", "-o", root, "--overwrite").code == 0


def test_model_run_saves_predictions_as_a_datumaro_dataset(tmp_path, datum):
    """``datum model run`` on the committed known-answer project."""
    import json

    root = tmp_path / "known"
    shutil.copytree(Path(__file__).parents[1] / "sample_projects" / "known_answer", root)
    out = tmp_path / "preds"
    result = datum("model", "run", "-p", root, "-m", "classifier", "-o", out, "images")
    assert result.code == 0, result
    data = json.loads((out / "annotations" / "default.json").read_text())
    labels = [c["name"] for c in data["categories"]["label"]["labels"]]
    items = {item["id"]: item for item in data["items"]}
    assert set(items) == {"noise", "top_right", "boxes"}
    best = max(items["top_right"]["annotations"], key=lambda a: a["attributes"]["score"])
    assert labels[best["label_id"]] == "top_right"

    result = datum("model", "run", "-p", root, "-m", "detector", root / "images" / "boxes.png")
    assert result.code == 0, result
    data = json.loads((root / "predictions" / "detector" / "annotations" / "default.json")
                      .read_text())
    assert len(data["items"][0]["annotations"]) == 3  # the detector's three fixed boxes
    assert_one_line_error(datum("model", "run", "-p", root, "-m", "detector", "images"),
                          "not empty", "--overwrite")
