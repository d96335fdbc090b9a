# Interpreter for the known-answer fixed-box detector (explain_plugin.samples.known_answer),
# written the Datumaro 1.5-1.11 way: one IModelInterpreter subclass.

from typing import List, Tuple

import cv2
import numpy as np

from datumaro.components.abstracts.model_interpreter import IModelInterpreter, ModelPred, PrepInfo
from datumaro.components.annotation import Annotation, AnnotationType, Bbox, LabelCategories
from datumaro.components.dataset_base import DatasetItem

LABELS = ["cat", "dog", "car"]


class KnownDetectorInterpreter(IModelInterpreter):
    h_model = 64
    w_model = 64
    max_det = 10
    conf_thresh = 0.0

    def preprocess(self, inp: DatasetItem) -> Tuple[np.ndarray, PrepInfo]:
        img = inp.media.data  # (H, W, C) BGR
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        info = img.shape[:2]
        img = cv2.resize(img, (self.w_model, self.h_model))
        return img.transpose(2, 0, 1).astype(np.float32), info

    def postprocess(self, pred: ModelPred, info: PrepInfo) -> List[Annotation]:
        # This item's rows [image_id, label, conf, x_min, y_min, x_max, y_max]; (K, 7) or (1, 1, K, 7).
        dets = np.asarray(pred["detection_out"]).reshape(-1, 7)
        dets = dets[dets[:, 0] >= 0]  # DetectionOutput pads with image_id == -1
        dets = dets[(-dets[:, 2]).argsort(kind="stable")][: self.max_det]
        height, width = info
        results = []
        for det in dets:
            conf = float(det[2])
            if conf < self.conf_thresh:
                continue
            x0, x1 = np.clip(det[[3, 5]] * width, 0, width)
            y0, y1 = np.clip(det[[4, 6]] * height, 0, height)
            results.append(
                Bbox(float(x0), float(y0), float(x1 - x0), float(y1 - y0),
                     label=int(det[1]), attributes={"score": conf})
            )
        return results

    def get_categories(self):
        return {AnnotationType.label: LabelCategories.from_iterable(LABELS)}
