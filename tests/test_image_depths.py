"""Images of every depth Datumaro imports are explained as what they show: 16-bit
files scaled (Datumaro's own reader wraps them modulo 256), float files in 0..1 scaled."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from bad_input_world import World, build_template


@pytest.fixture(scope="module")
def template(tmp_path_factory, known_models):
    return build_template(tmp_path_factory.mktemp("depth_template"), known_models)


@pytest.fixture
def world(tmp_path, template):
    return World(tmp_path / "w", template)


def quadrants_16bit() -> np.ndarray:
    """top_right is brightest when scaled (0xFF00 -> 254) but black modulo 256 (0x00);
    bottom_left (0x2080 -> 32) would be brightest modulo 256 (0x80 = 128)."""
    image = np.full((48, 64, 3), 0x4040, np.uint16)
    image[:24, 32:] = 0xFF00
    image[24:, :32] = 0x2080
    return image


@pytest.mark.parametrize("name, image", [
    ("q16.png", quadrants_16bit()),
    ("q16.tiff", quadrants_16bit()),
    ("q16grey.png", quadrants_16bit()[..., 0]),
    ("qfloat.tiff", quadrants_16bit().astype(np.float32) / 65535),
])
def test_deep_images_are_scaled_not_wrapped(world, datum, name, image):
    path = world.image(name, image)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == image.dtype
    wrapped = (image % 256).astype(np.uint8) if image.dtype == np.uint16 else None
    if wrapped is not None:  # the wrong reading really would give another class
        assert wrapped.reshape(2, 24, 2, 32, -1).mean(axis=(1, 3, 4)).argmax() == 2
    out = world.base / "out"
    result = datum("explain", "-p", world.proj, "-m", "clf", "-o", out, "-t", path,
                   "rise", "-s", "200")
    assert result.code == 0, result
    item = json.loads((out / "run.json").read_text())["items"][path.stem]
    assert item["targets"][0]["name"] == "top_right", item["targets"]
    sal = np.load(out / f"{path.stem}-top_right.npy").astype(np.float32)
    assert sal[:24, 32:].mean() > sal[24:, :32].mean()


def test_a_nan_box_in_a_dataset_run_leaves_earlier_items_whole_and_none_of_its_own(
        world, datum):
    from bad_input_world import DETECTOR_SCRIPT

    # NaN for c.png only: the one image with colour (a and b are grey, masked or not).
    cv2.imwrite(str(world.proj / "images" / "c.png"), np.full((40, 60, 3), (200, 90, 10),
                                                              np.uint8))
    script = world.script("nan_for_c.py", DETECTOR_SCRIPT.format(
        x="float('nan') if (inputs[0][..., 0] - inputs[0][..., 2]).max() > 50 else 30"))
    world.use_script("det", script)
    out = world.base / "out"
    result = datum("explain", "-p", world.proj, "-m", "det", "-o", out, "images",
                   "rise", "-s", "16", "-b", "1")
    assert result.code == 1 and "NaN Bbox coordinate" in result.err, result
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith(".tmp")], files
    # Finished items are the shards (items/*.json); each lists its files, all there.
    shards = [json.loads(p.read_text()) for p in sorted(out.glob("items/*.json"))]
    done = sorted(shard["id"] for shard in shards)
    assert done and "c" not in done, (done, result)  # items in progress finish; c is not saved
    listed = {f for shard in shards for f in shard["record"]["files"]}
    assert all(len(shard["record"]["files"]) == 4 for shard in shards)  # 2 boxes x (npy, png)
    assert listed == {f for f in files if f.startswith(("heatmaps/", "images/"))}, files
    assert json.loads((out / "run.json").read_text())["status"] == "running"
