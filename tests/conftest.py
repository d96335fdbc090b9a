"""Shared fixtures: run ``datum`` in-process, small image folders, known-answer models."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from explain_plugin.cli import main


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def datum(capsys):
    """``datum(*args)`` -> Result(code, out, err), run in this process."""

    def run(*args, pm=None) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args], pm=pm)
        except SystemExit as e:  # argparse inside datumaro's own commands
            code = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def write_images(folder: Path, count: int = 3, size=(40, 60), seed: int = 0) -> Path:
    """A flat folder of random PNG images."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        cv2.imwrite(str(folder / f"img{i}.png"), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return folder


@pytest.fixture
def image_dir(tmp_path) -> Path:
    return write_images(tmp_path / "images")


@pytest.fixture(scope="session")
def known_models(tmp_path_factory) -> dict[str, Path]:
    """Known-answer models and their interpreter scripts, built once."""
    from explain_plugin.samples import known_answer

    out = tmp_path_factory.mktemp("known_models")
    scripts = Path(known_answer.__file__).parent / "interpreters"
    return {
        "classifier": known_answer.build_classifier(out),
        "classifier_b1": known_answer.build_classifier(out, batch=1, name="classifier_b1"),
        "detector": known_answer.build_detector(out),
        "classifier_0x": scripts / "known_classifier_0x.py",
        "classifier_1x": scripts / "known_classifier_1x.py",
        "detector_0x": scripts / "known_detector_0x.py",
        "detector_1x": scripts / "known_detector_1x.py",
    }


def _known_launcher(known_models, model: str, script: str):
    from explain_plugin.launchers.openvino import OpenVinoLauncher

    xml = known_models[model]
    return OpenVinoLauncher(description=str(xml), weights=str(xml.with_suffix(".bin")),
                            interpreter=str(known_models[script]))


@pytest.fixture(scope="module")
def classifier(known_models):
    """The known-answer quadrant classifier with its 0.x script."""
    return _known_launcher(known_models, "classifier", "classifier_0x")


@pytest.fixture(scope="module")
def detector(known_models):
    """The known-answer 3-box detector with its 0.x script."""
    return _known_launcher(known_models, "detector", "detector_0x")


def grey_noise(h: int, w: int, seed: int = 3) -> np.ndarray:
    """A flat-ish grey image (no quadrant brighter than another)."""
    rng = np.random.default_rng(seed)
    return rng.integers(100, 156, (h, w, 3), dtype=np.uint8)


def quads_project(proj: Path, data: Path, known_models: dict) -> Path:
    """A project at ``proj`` with the Datumaro-format dataset ``data`` as source 'quads'
    and the known-answer classifier (0.x script) as model 'cls'."""
    xml = known_models["classifier"]
    for args in (["project", "create", "-o", proj],
                 ["project", "import", "-p", proj, "-n", "quads", "-f", "datumaro", data],
                 ["model", "add", "-p", proj, "-n", "cls", "-l", "openvino", "--", "-d", xml,
                  "-w", xml.with_suffix(".bin"), "-i", known_models["classifier_0x"]]):
        assert main([str(a) for a in args]) == 0, args
    return proj


def lit_quadrant(k: int, h: int, w: int) -> np.ndarray:
    """A dark h x w BGR image with quadrant k of the known-answer classifier lit."""
    from explain_plugin.samples import known_answer

    image = np.full((h, w, 3), 60, np.uint8)
    y0, y1, x0, x1 = known_answer.classifier_regions(h, w)[k]
    image[y0:y1, x0:x1] = 230
    return image
