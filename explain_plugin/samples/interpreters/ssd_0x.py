# Interpreter for SSD-MobileNetV2 on Open Images (explain_plugin.samples.ssd_mobilenet),
# written the Datumaro 0.x way: module-level functions, star import from extractor.
# The model sees the image stretched to 300x300 (register it without aspect keeping);
# boxes are returned in pixels of the original image.
# labels.txt (24 names, 0 = background) is written next to the model by the build step;
# label ids are the model's raw class indices.

import os

from datumaro.components.extractor import *

from explain_plugin.samples.ssd_mobilenet import decode

conf_thresh = 0.3
iou_thresh = 0.45
max_det = 100


def _read_labels():
    path = os.path.join(os.path.dirname(__file__), "labels.txt")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def process_outputs(inputs, outputs):
    # inputs = original images; list of (H, W, C) arrays
    # outputs = {"box_encodings": (B, 1917, 4), "class_logits": (B, 1917, 24)}
    # results = conversion result; [[ Bbox, ... ], ... ], each with its score and
    # per-class sigmoid vector "probs" (for D-RISE's class similarity)
    results = []
    for i, input in enumerate(inputs):
        det = decode(outputs["box_encodings"][i], outputs["class_logits"][i], input.shape[:2],
                     conf_thresh, iou_thresh, max_det)
        image_results = []
        for (x0, y0, x1, y1), label, score, probs in zip(det["boxes"].tolist(), det["labels"].tolist(),
                                                         det["scores"].tolist(), det["probs"].tolist()):
            image_results.append(Bbox(x0, y0, x1 - x0, y1 - y0, label=label,
                                      attributes={"score": score, "probs": probs}))
        results.append(image_results)
    return results


def get_categories():
    return {AnnotationType.label: LabelCategories.from_iterable(_read_labels())}
