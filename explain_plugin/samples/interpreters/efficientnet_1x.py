# Interpreter for EfficientNet-Lite0 (explain_plugin.samples.efficientnet_lite0),
# written the Datumaro 1.5-1.11 way: one IModelInterpreter subclass.
# labels.txt (1000 ImageNet names) is written next to the model by the build step.

import os
from typing import List, Tuple

import numpy as np

from datumaro.components.abstracts.model_interpreter import IModelInterpreter, ModelPred, PrepInfo
from datumaro.components.annotation import Annotation, AnnotationType, Label, LabelCategories
from datumaro.components.dataset_base import DatasetItem

from explain_plugin.samples.efficientnet_lite0 import preprocess as prepare_image, softmax, top_k


class EfficientNetLite0Interpreter(IModelInterpreter):
    top_k = 5  # enough for RISE to see the main competing classes

    def preprocess(self, inp: DatasetItem) -> Tuple[np.ndarray, PrepInfo]:
        # shorter side to 256, centre crop 224; normalisation is inside the IR
        img = inp.media.data  # (H, W, C) BGR
        return prepare_image(img), img.shape[:2]

    def postprocess(self, pred: ModelPred, info: PrepInfo) -> List[Annotation]:
        probs = softmax(np.asarray(pred["logits"], dtype=np.float64).reshape(-1))
        return [Label(i, attributes={"score": p}) for i, p in top_k(probs, self.top_k)]

    def get_categories(self):
        path = os.path.join(os.path.dirname(__file__), "labels.txt")
        with open(path, encoding="utf-8") as f:
            names = [line.rstrip("\n") for line in f if line.strip()]
        return {AnnotationType.label: LabelCategories.from_iterable(names)}
