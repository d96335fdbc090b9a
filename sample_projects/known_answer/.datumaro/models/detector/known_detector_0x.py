# Interpreter for the known-answer fixed-box detector (explain_plugin.samples.known_answer),
# written the Datumaro 0.x way, after the detection example in Datumaro's docs.

from datumaro.components.extractor import *

LABELS = ["cat", "dog", "car"]

max_det = 10
conf_thresh = 0.0


def process_outputs(inputs, outputs):
    # inputs = original images; list of (H, W, C) arrays
    # outputs = model output "detection_out"; shape = (1, 1, B*K, 7)
    # det = [image_id, label(class id), conf, x_min, y_min, x_max, y_max], coords in [0, 1]
    # results = conversion result; [[ Bbox, ... ], ... ]
    detections = outputs.reshape(-1, 7)
    results = []
    for image_id, input in enumerate(inputs):
        input_height, input_width = input.shape[:2]
        # Rows of all images are interleaved in one tensor: pick this image's, best first.
        dets = detections[detections[:, 0] == image_id]
        dets = dets[(-dets[:, 2]).argsort(kind="stable")][:max_det]
        image_results = []
        for det in dets:
            conf = float(det[2])
            if conf < conf_thresh:
                continue
            x = max(float(det[3]) * input_width, 0)
            y = max(float(det[4]) * input_height, 0)
            w = min(float(det[5]) * input_width, input_width) - x
            h = min(float(det[6]) * input_height, input_height) - y
            image_results.append(Bbox(x, y, w, h, label=int(det[1]), attributes={"score": conf}))
        results.append(image_results)
    return results


def get_categories():
    return {AnnotationType.label: LabelCategories.from_iterable(LABELS)}
