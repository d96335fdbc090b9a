"""The known-answer sample project: tiny exact models, both interpreter styles, images."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from explain_plugin.samples import known_answer

SCRIPTS = Path(__file__).parent / "interpreters"
MODELS = {  # model name -> (builder, interpreter script)
    "classifier": (known_answer.build_classifier, "known_classifier_0x.py"),
    "classifier-1x": (known_answer.build_classifier, "known_classifier_1x.py"),
    "detector": (known_answer.build_detector, "known_detector_0x.py"),
    "detector-1x": (known_answer.build_detector, "known_detector_1x.py"),
}


def sample_images(seed: int = 0) -> dict[str, np.ndarray]:
    """Non-square BGR images: noise, and one quadrant / one box lit on grey."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    quadrant = np.full((120, 160, 3), 60, np.uint8)
    quadrant[:60, 80:] = 230  # top_right is the answer
    boxes = np.full((128, 128, 3), 90, np.uint8)
    return {"noise": noise, "top_right": quadrant, "boxes": boxes}


def build(out_dir: Path, overwrite: bool = False) -> Path:
    """Create the project with ``datum`` commands, as a user would."""
    from explain_plugin.cli import main

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = tmp / "images"
        images.mkdir()
        for name, image in sample_images().items():
            cv2.imwrite(str(images / f"{name}.png"), image)
        _run(main, "project", "create", "-o", out_dir, *(["--overwrite"] if overwrite else []))
        for name in ("images",):
            shutil.rmtree(out_dir / name, ignore_errors=True)
        _run(main, "project", "import", "-p", out_dir, "-n", "images", "-f", "image_dir", images)
        for name, (builder, script) in MODELS.items():
            xml = builder(tmp / name)
            _run(main, "model", "add", "-p", out_dir, "-n", name, "-l", "openvino", "--copy",
                 "--", "-d", xml, "-w", xml.with_suffix(".bin"), "-i", SCRIPTS / script)
    return out_dir


def _run(main, *args) -> None:
    code = main([str(a) for a in args])
    if code:
        raise SystemExit(code)
