# Interpreter for SSD-MobileNetV2 on Open Images (explain_plugin.samples.ssd_mobilenet),
# written the Datumaro 1.5-1.11 way: one IModelInterpreter subclass.
# labels.txt (24 names, 0 = background) is written next to the model by the build step;
# label ids are the model's raw class indices.

import os
from typing import List, Tuple

import numpy as np

from datumaro.components.abstracts.model_interpreter import IModelInterpreter, ModelPred, PrepInfo
from datumaro.components.annotation import Annotation, AnnotationType, Bbox, LabelCategories
from datumaro.components.dataset_base import DatasetItem

from explain_plugin.samples.ssd_mobilenet import decode, preprocess as prepare_image


class SsdMobileNetInterpreter(IModelInterpreter):
    conf_thresh = 0.3
    iou_thresh = 0.45
    max_det = 100

    def preprocess(self, inp: DatasetItem) -> Tuple[np.ndarray, PrepInfo]:
        # stretched to 300x300; BGR->RGB and scaling to [-1, 1] are inside the IR
        img = inp.media.data  # (H, W, C) BGR
        return prepare_image(img), img.shape[:2]

    def postprocess(self, pred: ModelPred, info: PrepInfo) -> List[Annotation]:
        det = decode(pred["box_encodings"], pred["class_logits"], info,
                     self.conf_thresh, self.iou_thresh, self.max_det)
        return [
            Bbox(x0, y0, x1 - x0, y1 - y0, label=label, attributes={"score": score, "probs": probs})
            for (x0, y0, x1, y1), label, score, probs in zip(
                det["boxes"].tolist(), det["labels"].tolist(), det["scores"].tolist(), det["probs"].tolist())
        ]

    def get_categories(self):
        path = os.path.join(os.path.dirname(__file__), "labels.txt")
        with open(path, encoding="utf-8") as f:
            names = [line.rstrip("\n") for line in f if line.strip()]
        return {AnnotationType.label: LabelCategories.from_iterable(names)}
