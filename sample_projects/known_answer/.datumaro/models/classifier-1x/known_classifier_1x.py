# Interpreter for the known-answer quadrant classifier (explain_plugin.samples.known_answer),
# written the Datumaro 1.5-1.11 way: one IModelInterpreter subclass.

from typing import List, Tuple

import cv2
import numpy as np

from datumaro.components.abstracts.model_interpreter import IModelInterpreter, ModelPred, PrepInfo
from datumaro.components.annotation import Annotation, AnnotationType, Label, LabelCategories
from datumaro.components.dataset_base import DatasetItem

LABELS = ["top_left", "top_right", "bottom_left", "bottom_right"]


class KnownClassifierInterpreter(IModelInterpreter):
    h_model = 48
    w_model = 64

    def preprocess(self, inp: DatasetItem) -> Tuple[np.ndarray, PrepInfo]:
        img = inp.media.data  # (H, W, C) BGR
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        info = img.shape[:2]
        img = cv2.resize(img, (self.w_model, self.h_model))
        return img.transpose(2, 0, 1).astype(np.float32), info

    def postprocess(self, pred: ModelPred, info: PrepInfo) -> List[Annotation]:
        logits = np.asarray(pred["logits"], dtype=np.float64).reshape(-1)
        exp = np.exp(logits - logits.max())  # shifted for stability
        probs = exp / exp.sum()
        return [Label(label, attributes={"score": float(p)}) for label, p in enumerate(probs)]

    def get_categories(self):
        return {AnnotationType.label: LabelCategories.from_iterable(LABELS)}
