"""The Python API: load a model, explain an image, get maps, targets, stats, metrics; save."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from explain_plugin import api
from explain_plugin.errors import CliError

SAMPLE = Path(__file__).parents[1] / "sample_projects" / "known_answer"


def test_explain_from_a_project_and_from_files(tmp_path, known_models):
    model = api.load_model(SAMPLE, "classifier")
    image = np.full((60, 80, 3), 80, np.uint8)
    image[30:, :40] = 210  # bottom_left
    result = api.explain(model, image, "rise", max_samples=300, seed=3, metric_steps=8)
    assert [t.name for t in result.targets] == ["bottom_left"]
    assert result.maps.shape == (1, 60, 80) and result.maps.dtype == np.float32
    assert result.maps[0][30:, :40].mean() > 2 * result.maps[0][:30].mean()
    assert result.stats["masks_used"] == 300
    assert result.stats["evaluations"]["rise"] == 300
    assert 2 * 9 + 2 <= result.stats["evaluations"]["metrics"] <= 2 * 9 + 2 + 3
    assert set(result.metrics[0]) >= {"deletion_auc", "insertion_auc", "area"}
    assert result.overlay().shape == (60, 80, 3)
    files = result.save(tmp_path / "out", stem="pic")
    assert (tmp_path / "out" / "pic-bottom_left.npy").is_file() and len(files) == 3
    json.dumps(result.record(files))

    xml = known_models["classifier"]
    direct = api.load_model(description=str(xml), interpreter=str(known_models["classifier_0x"]))
    path = tmp_path / "pic.png"
    cv2.imwrite(str(path), image)
    again = api.explain(direct, path, max_samples=300, seed=3, metrics=False)
    np.testing.assert_allclose(again.maps, result.maps, atol=1e-5)
    assert again.metrics is None and again.stats["evaluations"] == {"rise": 300}


def test_api_errors_are_one_line():
    with pytest.raises(CliError, match="unknown method 'lime'"):
        api.method_class("lime")
    with pytest.raises(CliError, match="description"):
        api.load_model()
    with pytest.raises(TypeError, match="unknown parameters"):
        api.explain(api.load_model(SAMPLE, "classifier"), np.zeros((8, 8, 3), np.uint8),
                    max_sample=3)


def test_a_method_adds_its_own_files_and_record_entries(tmp_path):
    import click

    from explain_plugin.methods.base import ExplainedTarget, ExplainMethod, Snapshot

    class Marker(ExplainMethod):
        name = "marker"

        @classmethod
        def options(cls):
            return [click.Option(["--size"], type=int, default=4)]

        def explain(self, launcher, image, progress=None):
            n = self.params["size"]
            snap = Snapshot(np.ones((1, n, n), np.float32), [ExplainedTarget(0, "x", 1.0)], 1,
                            final=True)
            snap.extra["record"] = {"marker": {"size": n}}
            yield snap

        def write_outputs(self, out_dir, stem, image, snap):
            (out_dir / f"{stem}-mark.txt").write_text("m")
            return [f"{stem}-mark.txt"]

    result = api.run_method(Marker.with_defaults(size=3), None, np.zeros((6, 6, 3), np.uint8))
    files = result.save(tmp_path, "a")
    assert "a-mark.txt" in files and (tmp_path / "a-mark.txt").is_file()
    assert result.record(files)["marker"] == {"size": 3}
