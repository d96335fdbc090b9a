"""``datum explain`` on the real-model sample project: RISE on a cat, D-RISE on a street.

Needs the registries (or a filled sample cache) and scikit-image; skipped otherwise.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explain_plugin.samples import fetch, real_project

IMAGENET_CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    pytest.importorskip("skimage.data", reason="scikit-image (sample/test extra) is not installed")
    out = tmp_path_factory.mktemp("real") / "real"
    try:
        real_project.build(out)
    except fetch.FetchError as e:
        pytest.skip(f"sample packages cannot be fetched: {e}")
    return out


def explain(datum, project: Path, model: str, photo: str, *args) -> tuple[Path, dict]:
    out = project / "explanations" / f"{model}-{photo}"
    result = datum("explain", "-p", project, "-m", model, "-o", out,
                   "-t", project / "photos" / f"{photo}.jpg", "rise", *args)
    assert result.code == 0, result
    return out, json.loads((out / "run.json").read_text())["items"][photo]


def test_rise_puts_the_cat_class_peak_on_the_cat(datum, project):
    out, item = explain(datum, project, "efficientnet", "chelsea", "-s", "500")
    target = item["targets"][0]
    assert target["name"] in IMAGENET_CATS
    sal = np.load(out / f"chelsea-{target['name'].replace(' ', '_')}.npy")
    assert sal.shape == (300, 451)
    y, x = np.unravel_index(np.argmax(sal), sal.shape)
    assert x < 421  # the cat fills the photo but for a strip of window on the right


def test_drise_gives_one_map_per_box_peaking_inside_it(datum, project):
    if not (project / "photos" / "street_dog.jpg").is_file():
        pytest.skip("the street photo (Debian package darknet) could not be fetched")
    out, item = explain(datum, project, "ssd", "street_dog", "-s", "500", "--conf", "0.5")
    names = sorted(t["name"] for t in item["targets"])
    assert "Dog" in names and "Bicycle" in names
    heatmaps = sorted(out.glob("street_dog-heatmap-*.png"))
    assert len(heatmaps) == len(item["targets"]) == len(list(out.glob("*-overlay.png")))
    for j, target in enumerate(item["targets"]):
        npy = [f for f in item["files"] if f.endswith(".npy")][j]
        sal = np.load(out / npy)
        y, x = np.unravel_index(np.argmax(sal), sal.shape)
        x1, y1, x2, y2 = target["box"]
        assert x1 <= x <= x2 and y1 <= y <= y2, (target, (x, y))
