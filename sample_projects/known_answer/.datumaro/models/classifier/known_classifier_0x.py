# Interpreter for the known-answer quadrant classifier (explain_plugin.samples.known_answer),
# written the Datumaro 0.x way: module-level functions, star import from extractor.

from datumaro.components.extractor import *
from datumaro.util.annotation_util import softmax

LABELS = ["top_left", "top_right", "bottom_left", "bottom_right"]


def process_outputs(inputs, outputs):
    # inputs = original images; list of (H, W, C) arrays
    # outputs = model output "logits"; shape = (B, 4)
    # results = conversion result; [[ Label, ... ], ... ], all 4 labels with their scores
    results = []
    for input, output in zip(inputs, outputs):
        probs = softmax(output)
        results.append(
            [Label(label, attributes={"score": float(p)}) for label, p in enumerate(probs)]
        )
    return results


def get_categories():
    return {AnnotationType.label: LabelCategories.from_iterable(LABELS)}
