"""SSD-MobileNetV2 (Open Images, 24 classes) as an OpenVINO IR, from an npm package.

``@mediapipe/objectron`` (Apache-2.0) packs a label map and a TFLite detector
into one asset file; OpenVINO reads the TFLite directly. The saved IR follows
the Datumaro 0.x convention: input ``input`` [1,3,300,300] f32 BGR raw 0..255
(stretched, no aspect-ratio keeping); outputs ``box_encodings`` [1,1917,4] and
``class_logits`` [1,1917,24], decoded with numpy by :func:`decode`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from explain_plugin.atomic import atomic_write_text
from explain_plugin.samples.fetch import npm_package_file
from explain_plugin.samples.photos import as_bgr

NPM_SPEC = "@mediapipe/objectron@0.4.1675468480"
ASSETS_MEMBER = "objectron_solution_packed_assets.data"
# byte ranges from objectron_solution_packed_assets_loader.js
LABELS_RANGE = (0, 184)  # /object_detection_oidv4_labelmap.txt
TFLITE_RANGE = (184, 9_987_912)  # object_detection_ssd_mobilenetv2_oidv4_fp16.tflite

NAME = "ssd_mobilenet_v2_oidv4"
INPUT_SIZE = 300
NUM_CLASSES = 24  # class 0 is background
SCORE_THRESHOLD = 0.3
IOU_THRESHOLD = 0.45
MAX_DETECTIONS = 100
# MediaPipe's box coder: (ty, tx, th, tw) divided by these
BOX_SCALES = np.array([10.0, 10.0, 5.0, 5.0], np.float32)
# MediaPipe SsdAnchorsCalculator options of this model
ANCHOR_STRIDES = (16, 32, 64, 128, 256, 512)
ANCHOR_MIN_SCALE, ANCHOR_MAX_SCALE = 0.2, 0.95
ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 1 / 3)


def ssd_anchors(size: int = INPUT_SIZE) -> np.ndarray:
    """MediaPipe SSD anchors as [A,4] (y_centre, x_centre, h, w), normalised.

    Per cell: the lowest layer has 3 anchors (ratio 1 at scale 0.1, ratios 2 and
    0.5 at its scale); others have the 5 ratios plus a ratio-1 anchor at
    sqrt(s_i * s_i+1). Order: layer, row, column, anchor (the model's order).
    """
    n = len(ANCHOR_STRIDES)
    scales = ANCHOR_MIN_SCALE + (ANCHOR_MAX_SCALE - ANCHOR_MIN_SCALE) * np.arange(n + 1) / (n - 1)
    scales[n] = 1.0  # the interpolated anchor of the last layer uses 1.0 as "next"
    layers = []
    for i, stride in enumerate(ANCHOR_STRIDES):
        if i == 0:
            ratios, sc = np.array([1.0, 2.0, 0.5]), np.array([0.1, scales[0], scales[0]])
        else:
            ratios = np.array([*ASPECT_RATIOS, 1.0])
            sc = np.array([scales[i]] * len(ASPECT_RATIOS) + [np.sqrt(scales[i] * scales[i + 1])])
        hw = np.stack([sc / np.sqrt(ratios), sc * np.sqrt(ratios)], axis=1)  # [K,2] (h, w)
        fm = -(-size // stride)
        c = (np.arange(fm) + 0.5) / fm
        yy, xx = np.meshgrid(c, c, indexing="ij")  # [fm,fm]
        centres = np.stack([yy, xx], axis=-1)[:, :, None, :]  # [fm,fm,1,2]
        centres = np.broadcast_to(centres, (fm, fm, len(sc), 2))
        sizes = np.broadcast_to(hw, (fm, fm, len(sc), 2))
        layers.append(np.concatenate([centres, sizes], axis=-1).reshape(-1, 4))
    return np.concatenate(layers).astype(np.float32)


def _nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float) -> np.ndarray:
    """Per-class NMS; returns kept indices, best first."""
    import cv2

    if len(scores) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), labels.tolist(), 0.0, iou)
    keep = np.asarray(keep, np.int64).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")]


def decode(box_encodings: np.ndarray, class_logits: np.ndarray, image_hw: tuple[int, int],
           score_threshold: float = SCORE_THRESHOLD, iou_threshold: float = IOU_THRESHOLD,
           max_detections: int = MAX_DETECTIONS) -> dict[str, np.ndarray]:
    """Decode one image's raw outputs ([1917,4], [1917,24], any leading 1s).

    Returns ``boxes`` [K,4] (x1, y1, x2, y2) in pixels of an image of size
    ``image_hw``, ``labels`` [K] (raw class indices, 0 = background never
    returned), ``scores`` [K] and ``probs`` [K,24] (per-class sigmoid).
    """
    enc = np.asarray(box_encodings, np.float32).reshape(-1, 4)
    logits = np.asarray(class_logits, np.float32).reshape(enc.shape[0], -1)
    anchors = _anchors_cached(enc.shape[0])
    probs = 1.0 / (1.0 + np.exp(-logits))
    labels = 1 + np.argmax(probs[:, 1:], axis=1)
    scores = probs[np.arange(len(probs)), labels]
    sel = np.flatnonzero(scores >= score_threshold)
    t = enc[sel] / BOX_SCALES
    a = anchors[sel]
    yc, xc = t[:, 0] * a[:, 2] + a[:, 0], t[:, 1] * a[:, 3] + a[:, 1]
    h, w = np.exp(t[:, 2]) * a[:, 2], np.exp(t[:, 3]) * a[:, 3]
    ih, iw = image_hw
    boxes = np.stack([(xc - w / 2) * iw, (yc - h / 2) * ih, (xc + w / 2) * iw, (yc + h / 2) * ih], axis=1)
    boxes = np.clip(boxes, 0, [iw, ih, iw, ih]).astype(np.float32)
    keep = _nms(boxes, scores[sel], labels[sel], iou_threshold)[:max_detections]
    return {"boxes": boxes[keep], "labels": labels[sel][keep], "scores": scores[sel][keep],
            "probs": probs[sel][keep]}


_ANCHORS: dict[int, np.ndarray] = {}


def _anchors_cached(count: int) -> np.ndarray:
    if count not in _ANCHORS:
        anchors = ssd_anchors()
        if len(anchors) != count:
            raise ValueError(f"the model has {count} boxes but the SSD anchors are {len(anchors)}")
        _ANCHORS[count] = anchors
    return _ANCHORS[count]


def preprocess(image: np.ndarray) -> np.ndarray:
    """HWC BGR (or gray) image -> CHW float32 300x300, stretched (as the model was trained)."""
    import cv2

    img = as_bgr(np.asarray(image, np.float32))
    img = cv2.resize(img, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


def label_names(labelmap: bytes) -> list[str]:
    """The 24 class names; the map's '???' placeholder at index 0 is background."""
    names = [ln.strip() for ln in labelmap.decode("utf-8").splitlines() if ln.strip()]
    if len(names) != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} labels in the label map, got {len(names)}")
    return ["background"] + names[1:]


def build_model(tflite_path: str | os.PathLike):
    """Read the TFLite model and wrap it to take NCHW BGR 0..255 input."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    model = ov.Core().read_model(str(tflite_path))
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.f32).set_layout(ov.Layout("NCHW")) \
        .set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NHWC"))
    # RGB in [-1, 1]: (x - 127.5) / 127.5
    ppp.input().preprocess().convert_color(ColorFormat.RGB).mean(127.5).scale(127.5)
    model = ppp.build()
    model.input().get_tensor().set_names({"input"})
    for out in model.outputs:
        name = out.get_any_name()
        out.get_tensor().set_names({"box_encodings" if "box" in name else "class_logits"})
    return model


def build(cache_dir: str | os.PathLike) -> dict[str, Path]:
    """Build (once) the IR and ``labels.txt`` in ``cache_dir/ssd_mobilenet_v2_oidv4``."""
    out_dir = Path(cache_dir) / NAME
    paths = {"xml": out_dir / f"{NAME}.xml", "bin": out_dir / f"{NAME}.bin", "labels": out_dir / "labels.txt"}
    if all(p.is_file() for p in paths.values()):
        return paths
    import openvino as ov

    assets = npm_package_file(NPM_SPEC, ASSETS_MEMBER, cache_dir).read_bytes()
    if len(assets) < TFLITE_RANGE[1]:
        raise RuntimeError(f"{ASSETS_MEMBER} of {NPM_SPEC} is {len(assets)} bytes, expected {TFLITE_RANGE[1]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(paths["labels"], "\n".join(label_names(assets[slice(*LABELS_RANGE)])) + "\n")
    os.chmod(paths["labels"], 0o644)  # atomic writes are 0600; the cache may be shared
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tflite = Path(tmp) / "model.tflite"
        tflite.write_bytes(assets[slice(*TFLITE_RANGE)])
        ov.save_model(build_model(tflite), Path(tmp) / paths["xml"].name, compress_to_fp16=False)
        os.replace(Path(tmp) / paths["bin"].name, paths["bin"])
        os.replace(Path(tmp) / paths["xml"].name, paths["xml"])  # last: marks a complete build
    return paths
