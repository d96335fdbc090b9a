# Interpreter for EfficientNet-Lite0 (explain_plugin.samples.efficientnet_lite0),
# written the Datumaro 0.x way: module-level functions, star import from extractor.
# Register the model with `--rescale crop` (shorter side to 256, centre crop 224 is
# what it was trained with); the IR does BGR->RGB and (x - 127) / 128 itself.
# labels.txt (1000 ImageNet names) is written next to the model by the build step.

import os

import numpy as np

from datumaro.components.extractor import *
from datumaro.util.annotation_util import softmax

TOP_K = 5  # enough for RISE to see the main competing classes


def _read_labels():
    path = os.path.join(os.path.dirname(__file__), "labels.txt")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def process_outputs(inputs, outputs):
    # inputs = original images; list of (H, W, C) arrays
    # outputs = model output "logits"; shape = (B, 1000)
    # results = conversion result; [[ Label, ... ], ... ], top-5 labels with their scores
    results = []
    for input, output in zip(inputs, outputs):
        output = np.asarray(output, dtype=np.float64)
        probs = softmax(output - output.max())  # shifted: exp() must not overflow
        top = np.argsort(-probs, kind="stable")[:TOP_K]
        results.append([Label(int(i), attributes={"score": float(probs[i])}) for i in top])
    return results


def get_categories():
    return {AnnotationType.label: LabelCategories.from_iterable(_read_labels())}
