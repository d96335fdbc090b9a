"""Writing a big image's results holds one full-size uint8 array at a time, and saves
maps no bigger than useful (float16, at most MAP_MAX_SIDE a side, scale in run.json)."""
from __future__ import annotations

import tracemalloc

import cv2
import numpy as np

from explain_plugin.methods.base import ExplainedTarget, Snapshot
from explain_plugin.writers.images import MAP_MAX_SIDE, ImageWriter, map_info, overlay


def test_big_image_results_are_written_lean_and_maps_capped(tmp_path):
    h, w = 3000, 4500
    image = np.full((h, w, 3), 90, np.uint8)
    yy, xx = np.mgrid[0:56, 0:56]
    maps = np.stack([np.exp(-((yy - 14) ** 2 + (xx - 42) ** 2) / 60.0),
                     np.exp(-((yy - 40) ** 2 + (xx - 10) ** 2) / 60.0)]).astype(np.float32)
    targets = [ExplainedTarget(0, "a", 0.9), ExplainedTarget(1, "b", 0.5, (10, 10, 200, 300))]
    snap = Snapshot(maps, targets, 100, final=True)
    tracemalloc.start()
    try:
        files = ImageWriter(tmp_path).write_final("big", image, snap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The overlay (h*w*3 bytes), its PNG and small bands; one float32 map at full size
    # would add 1.33x by itself (the old writer peaked above 3x).
    assert peak < 1.5 * image.nbytes, (peak / image.nbytes)
    assert len(files) == 6
    sal = np.load(tmp_path / "big-a.npy")
    info = map_info((h, w))
    assert sal.dtype == np.float16 and sal.shape == tuple(info["array_size"])
    assert max(sal.shape) == MAP_MAX_SIDE and info["scale"] == [h / sal.shape[0], w / sal.shape[1]]
    y, x = np.unravel_index(np.argmax(sal), sal.shape)
    assert y < sal.shape[0] / 2 < x  # the peak stays where the map put it (top right)
    heat = cv2.imread(str(tmp_path / "big-heatmap-0.png"), cv2.IMREAD_UNCHANGED)
    over = cv2.imread(str(tmp_path / "big-b-overlay.png"))
    assert heat.shape == (h, w) and over.shape == (h, w, 3)  # PNGs keep the image's size


def test_banded_overlay_matches_a_full_size_resize():
    rng = np.random.default_rng(0)
    sal = cv2.GaussianBlur(rng.random((56, 56)).astype(np.float32), (0, 0), 3)
    sal = (sal - sal.min()) / (sal.max() - sal.min())
    image = rng.integers(0, 256, (700, 1000, 3), np.uint8)
    target = ExplainedTarget(0, "x", 0.5)
    banded = overlay(image, sal, target)
    full = overlay(image, cv2.resize(sal, (1000, 700), interpolation=cv2.INTER_LINEAR), target)
    diff = np.abs(banded.astype(int) - full)[60:]  # below the label box
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 8
