"""A throw-away world for bad-input tests: a project, and victims next to it.

``World.snapshot()`` hashes every file under the world's folder (project and
victims), so a test proves that a refused command changed nothing anywhere.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml

from explain_plugin.samples import known_answer


def build_template(root: Path, known_models: dict) -> Path:
    """A project with two copied models ('clf', 'det') and one source ('images')."""
    from explain_plugin.cli import main

    images = root / "src_images"
    images.mkdir(parents=True)
    quadrant = np.full((40, 60, 3), 60, np.uint8)
    quadrant[:20, 30:] = 230
    cv2.imwrite(str(images / "a.png"), quadrant)
    cv2.imwrite(str(images / "b.png"), quadrant[:, ::-1])
    proj = root / "proj"
    scripts = Path(known_answer.__file__).parent / "interpreters"
    commands = [
        ["project", "create", "-o", proj],
        ["project", "import", "-p", proj, "-n", "images", "-f", "image_dir", images],
    ]
    for name, xml, script in (("clf", known_models["classifier"], "known_classifier_0x.py"),
                              ("det", known_models["detector"], "known_detector_0x.py")):
        commands.append(["model", "add", "-p", proj, "-n", name, "-l", "openvino", "--copy",
                         "--", "-d", xml, "-w", xml.with_suffix(".bin"), "-i", scripts / script])
    for args in commands:
        assert main([str(a) for a in args]) == 0, args
    return proj


class World:
    def __init__(self, base: Path, template: Path):
        self.base = base
        self.proj = base / "proj"
        shutil.copytree(template, self.proj, symlinks=True)
        for victim in ("victim", "victim2"):
            (base / victim).mkdir()
            (base / victim / "keep.txt").write_text(f"{victim} must survive\n")
        self.config = self.proj / ".datumaro" / "config.yml"
        self.tree = self.proj / ".datumaro" / "tree" / "config.yml"

    def snapshot(self) -> dict[str, str]:
        """Relative path -> sha256 of every file and symlink under the world."""
        out = {}
        for path in sorted(self.base.rglob("*")):
            rel = path.relative_to(self.base).as_posix()
            if path.is_symlink():
                out[rel] = "link:" + str(path.readlink())
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
        return out

    def edit(self, path: Path, change) -> None:
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def add_model_entry(self, name: str, entry: dict | None = None) -> None:
        def change(cfg):
            cfg["models"][name] = entry or dict(cfg["models"]["clf"])
        self.edit(self.config, change)

    def add_source_entry(self, name: str, **fields) -> None:
        def change(tree):
            tree["sources"][name] = {**tree["sources"]["images"], **fields}
        self.edit(self.tree, change)

    def model_file(self, model: str, suffix: str) -> Path:
        folder = self.proj / ".datumaro" / "models" / model
        return next(p for p in folder.iterdir() if p.suffix == suffix)

    def image(self, name: str, array: np.ndarray | None = None) -> Path:
        """A test image outside the project (in the world, so it is hashed too)."""
        path = self.base / "inputs" / name
        path.parent.mkdir(exist_ok=True)
        if array is not None:
            assert cv2.imwrite(str(path), array), path
        return path

    def dataset(self, ids: list[str], subset: str = "train") -> Path:
        """A Datumaro-format dataset outside the project with these item ids."""
        from datumaro import Dataset
        from datumaro.components.dataset_base import DatasetItem
        from datumaro.components.media import Image

        image = np.full((40, 60, 3), 60, np.uint8)
        image[:20, 30:] = 230
        path = self.base / "inputs" / "ds"
        items = [DatasetItem(id=i, subset=subset, media=Image.from_numpy(image)) for i in ids]
        Dataset.from_iterable(items).export(str(path), "datumaro", save_media=True)
        return path

    def script(self, name: str, body: str) -> Path:
        """An interpreter script outside the project."""
        path = self.base / "inputs" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(body)
        return path

    def use_script(self, model: str, script: Path) -> None:
        def change(cfg):
            options = cfg["models"][model]["options"]
            for key in ("description", "weights"):
                options[key] = str(self.proj / ".datumaro" / "models" / model / options[key])
            options["interpreter"] = str(script)
        self.edit(self.config, change)

    def nan_model(self) -> Path:
        """A 4-class [N,C] model whose weights hold a NaN (read by the built-in interpreter)."""
        import openvino as ov
        from openvino import opset13 as ops

        x = ops.parameter([-1, 3, 48, 64], ov.Type.f32, name="input")
        means = ops.reduce_mean(x, np.array([2, 3], np.int64), keep_dims=False)
        weights = np.ones((3, 4), np.float32)
        weights[1, 2] = np.nan
        logits = ops.matmul(means, ops.constant(weights), False, False)
        model = ov.Model([logits], [x], "nan_model")
        model.outputs[0].get_tensor().set_names({"logits"})
        xml = self.base / "inputs" / "nan_model.xml"
        xml.parent.mkdir(exist_ok=True)
        ov.save_model(model, str(xml), compress_to_fp16=False)
        return xml


CLASSIFIER_SCRIPT = """\
from datumaro.components.extractor import *

LABELS = ["top_left", "top_right", "bottom_left", "bottom_right"]


def process_outputs(inputs, outputs):
    results = []
    for image, row in zip(inputs, outputs):
        scores = [float(v) for v in row]
        {change}
        results.append([Label(i, attributes={{"score": s}}) for i, s in enumerate(scores)])
    return results


def get_categories():
    return {{AnnotationType.label: LabelCategories.from_iterable(LABELS)}}
"""

DETECTOR_SCRIPT = """\
from datumaro.components.extractor import *


def process_outputs(inputs, outputs):
    return [[Bbox(5, 5, 10, 10, label=0, attributes={{"score": 0.9}}),
             Bbox({x}, 20, 10, 10, label=1, attributes={{"score": 0.8}})] for _ in inputs]


def get_categories():
    return {{AnnotationType.label: LabelCategories.from_iterable(["cat", "dog", "car"])}}
"""
