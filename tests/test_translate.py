"""Native errors to one actionable line; no map from non-finite numbers."""
from __future__ import annotations

import numpy as np
import pytest

from explain_plugin.errors import CliError
from explain_plugin.methods.base import ExplainedTarget, Snapshot
from explain_plugin.translate import openvino_reason, root_reason
from explain_plugin.writers.images import ImageWriter

# OpenVINO 2025 messages as read_model raises them (C++ file paths and all).
OV_MESSAGES = {
    "Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'is_valid_weights_range(m_weights_"
    "provider->size(), offset, size)' failed at src/core/xml_util/src/xml_deserialize_util.cpp:"
    "900:\nIncorrect weights in bin file!\n": "the .bin does not match the .xml",
    "Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'is_axis_valid(axis, r)' failed at "
    "src/core/src/validation_util.cpp:336:\nWhile validating node 'opset8::Slice Slice_242'":
        "the .bin does not match the .xml",
    "Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'res.status == pugi::status_ok' "
    "failed at src/frontends/ir/src/input_model.cpp:219:\nStart-end tags mismatch at offset 7051":
        "the .xml is not a readable OpenVINO IR",
    'Exception from src/inference/src/cpp/core.cpp:84:\nException from src/inference/src/'
    'model_reader.cpp:148:\nUnable to read the model: "e.xml" Please check that model format':
        "the .xml is not a readable OpenVINO IR",
}


@pytest.mark.parametrize("message, hint", OV_MESSAGES.items())
def test_openvino_messages_become_one_actionable_line(message, hint):
    line = openvino_reason(RuntimeError(message), "read model 'm.xml'")
    assert line.startswith("cannot read model 'm.xml': " + hint), line
    assert "\n" not in line and ".cpp" not in line


def test_unknown_openvino_message_keeps_its_first_meaningful_line():
    line = openvino_reason(RuntimeError(
        "Exception from src/inference/src/cpp/core.cpp:84:\nDevice with \"NOPE\" name is not "
        "registered in the OpenVINO Runtime\n"), "compile model 'm.xml' for device NOPE")
    assert line.endswith('Device with "NOPE" name is not registered in the OpenVINO Runtime')


def test_root_reason_digs_through_causes_and_contexts():
    try:
        try:
            raise ValueError("Dataset item 'id' must not contain '..' path components")
        except ValueError as inner:
            raise RuntimeError("Failed to import dataset 'datumaro' at 'x'.") from inner
    except RuntimeError as outer:
        assert root_reason(outer).startswith("Dataset item 'id' must not contain '..'")


@pytest.mark.parametrize("maps, target", [
    (np.full((1, 8, 8), np.nan, np.float32), ExplainedTarget(0, "a", 0.5)),
    (np.zeros((1, 8, 8), np.float32), ExplainedTarget(0, "a", float("inf"))),
    (np.zeros((1, 8, 8), np.float32), ExplainedTarget(0, "a", 0.5, (0, 0, float("nan"), 4))),
])
def test_no_file_is_written_from_non_finite_numbers(tmp_path, maps, target):
    snap = Snapshot(maps, [target], 10, final=True)
    with pytest.raises(CliError, match="non-finite|NaN or infinite"):
        ImageWriter(tmp_path).write_final("x", np.zeros((8, 8, 3), np.uint8), snap)
    assert not list(tmp_path.rglob("*"))
