"""The real-model sample project: EfficientNet-Lite0 and SSD-MobileNetV2 built from
package-registry files, their 0.x and 1.x interpreters, and real photos.

Models and photos are cached (``$EXPLAIN_PLUGIN_SAMPLE_CACHE`` or
``~/.cache/explain-plugin``); the project itself is assembled with ``datum``
commands, as a user would.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import cv2

SCRIPTS = Path(__file__).parent / "interpreters"
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "puppy", "street_dog")
# model name -> (builder module, interpreter script, launcher options)
MODELS = {
    "efficientnet": ("efficientnet_lite0", "efficientnet_0x.py", ["--rescale", "crop"]),
    "efficientnet-1x": ("efficientnet_lite0", "efficientnet_1x.py", []),
    "ssd": ("ssd_mobilenet", "ssd_0x.py", []),
    "ssd-1x": ("ssd_mobilenet", "ssd_1x.py", []),
}


def cache_dir() -> Path:
    return Path(os.environ.get("EXPLAIN_PLUGIN_SAMPLE_CACHE")
                or Path.home() / ".cache" / "explain-plugin")


def build(out_dir: Path, overwrite: bool = False) -> Path:
    import importlib

    from explain_plugin.cli import main
    from explain_plugin.samples.photos import sample_photos

    out_dir, cache = Path(out_dir), cache_dir()
    built = {}
    for module in {m for m, _, _ in MODELS.values()}:
        print(f"Building {module} (cached in {cache}) ...", flush=True)
        built[module] = importlib.import_module(f"explain_plugin.samples.{module}").build(cache)
    photos = sample_photos(cache)
    missing = [name for name in PHOTOS if name not in photos]
    if missing:
        print(f"Skipping photos that could not be had: {', '.join(missing)}")

    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "photos"
        images.mkdir()
        for name in PHOTOS:
            if name in photos:
                cv2.imwrite(str(images / f"{name}.jpg"), photos[name])
        _run(main, "project", "create", "-o", out_dir, *(["--overwrite"] if overwrite else []))
        shutil.rmtree(out_dir / "photos", ignore_errors=True)
        _run(main, "project", "import", "-p", out_dir, "-n", "photos", "-f", "image_dir", images)
    for name, (module, script, options) in MODELS.items():
        paths = built[module]
        shutil.rmtree(out_dir / ".datumaro" / "models" / name, ignore_errors=True)
        # --no-check: the interpreter reads labels.txt beside it, copied just after.
        _run(main, "model", "add", "-p", out_dir, "-n", name, "-l", "openvino", "--copy",
             "--no-check", "--", "-d", paths["xml"], "-w", paths["bin"], "-i", SCRIPTS / script,
             *options)
        shutil.copy2(paths["labels"], out_dir / ".datumaro" / "models" / name / "labels.txt")
        _run(main, "model", "info", "-p", out_dir, name)  # the check, now that it can load
    return out_dir


def _run(main, *args) -> None:
    code = main([str(a) for a in args])
    if code:
        raise SystemExit(code)
