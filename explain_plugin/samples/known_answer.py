"""Tiny OpenVINO models whose correct explanation is known in advance.

Both models take the Datumaro 0.x input: ``input``, [N,3,H,W] f32, BGR, raw
0..255 values (N dynamic unless ``batch`` is given). Every score depends only
on the pixels of one fixed region, so a good saliency map for that score must
light up that region and nothing else.

- classifier: 4 classes, one per image quadrant; logit k = GAIN * mean(quadrant k) / 255.
- detector: 3 fixed boxes with fixed labels; conf k = mean(box k) / 255, as a
  DetectionOutput tensor [1,1,N*K,7] of ``[image_id, label, conf, x0, y0, x1, y1]``.

Built from opset ops (no downloads); the numpy references give the exact answers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
from openvino import opset13 as ops

GAIN = 8.0
CLASSIFIER_LABELS = ["top_left", "top_right", "bottom_left", "bottom_right"]
DETECTOR_LABELS = ["cat", "dog", "car"]
# Normalised (x_min, y_min, x_max, y_max); disjoint and of different sizes.
DETECTOR_BOXES = np.array(
    [
        [0.05, 0.05, 0.45, 0.40],
        [0.55, 0.10, 0.95, 0.60],
        [0.20, 0.60, 0.70, 0.95],
    ],
    dtype=np.float32,
)


def classifier_regions(h: int, w: int) -> list[tuple[int, int, int, int]]:
    """Pixel region (y0, y1, x0, x1), half-open, of each class in CLASSIFIER_LABELS order."""
    hh, hw = h // 2, w // 2
    return [(0, hh, 0, hw), (0, hh, hw, w), (hh, h, 0, hw), (hh, h, hw, w)]


def detector_regions(h: int, w: int) -> list[tuple[int, int, int, int]]:
    """Pixel region (y0, y1, x0, x1), half-open, that each box's conf is computed over."""
    px = np.rint(DETECTOR_BOXES * [w, h, w, h]).astype(int)
    return [(int(y0), int(y1), int(x0), int(x1)) for x0, y0, x1, y1 in px]


def _masks(regions: list[tuple[int, int, int, int]], h: int, w: int) -> np.ndarray:
    masks = np.zeros((len(regions), h, w), dtype=bool)
    for mask, (y0, y1, x0, x1) in zip(masks, regions):
        mask[y0:y1, x0:x1] = True
    return masks


def classifier_region_masks(h: int, w: int) -> np.ndarray:
    """[4,h,w] bool: the pixels each class's score depends on, at image size (h, w)."""
    return _masks(classifier_regions(h, w), h, w)


def detector_region_masks(h: int, w: int) -> np.ndarray:
    """[K,h,w] bool: the pixels each box's confidence depends on, at image size (h, w)."""
    return _masks(detector_regions(h, w), h, w)


def _region_means(nchw: np.ndarray, regions) -> np.ndarray:
    """[N,len(regions)] mean over channels and pixels of each region."""
    x = np.asarray(nchw, dtype=np.float64)
    return np.stack(
        [x[:, :, y0:y1, x0:x1].mean(axis=(1, 2, 3)) for y0, y1, x0, x1 in regions], axis=1
    )


def classifier_reference(nchw: np.ndarray) -> np.ndarray:
    """Ground-truth logits [N,4] f32 of the classifier for a [N,3,H,W] input."""
    h, w = nchw.shape[2:]
    return (GAIN * _region_means(nchw, classifier_regions(h, w)) / 255).astype(np.float32)


def detector_reference(nchw: np.ndarray) -> np.ndarray:
    """Ground-truth DetectionOutput [1,1,N*K,7] f32 of the detector for a [N,3,H,W] input."""
    n, (h, w), k = len(nchw), nchw.shape[2:], len(DETECTOR_BOXES)
    conf = _region_means(nchw, detector_regions(h, w)) / 255
    rows = np.empty((n, k, 7), dtype=np.float32)
    rows[..., 0] = np.arange(n)[:, None]
    rows[..., 1] = np.arange(k)
    rows[..., 2] = conf
    rows[..., 3:] = DETECTOR_BOXES
    return rows.reshape(1, 1, n * k, 7)


def _input(batch: int, height: int, width: int) -> ov.Node:
    param = ops.parameter([batch, 3, height, width], np.float32, name="input")
    param.output(0).get_tensor().set_names({"input"})
    return param


def _region_mean_nodes(x: ov.Node, regions) -> ov.Node:
    """[N,len(regions)]: ReduceMean of a spatial slice per region, concatenated."""
    cols = []
    for y0, y1, x0, x1 in regions:
        part = ops.slice(x, [y0, x0], [y1, x1], [1, 1], axes=[2, 3])
        cols.append(ops.reduce_mean(part, [1, 2, 3], keep_dims=True))  # [N,1,1,1]
    return ops.reshape(ops.concat(cols, axis=1), [0, -1], special_zero=True)


def _save(result: ov.Node, output_name: str, param: ov.Node, out_dir, name: str) -> Path:
    result.output(0).get_tensor().set_names({output_name})
    model = ov.Model([ops.result(result)], [param], name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / f"{name}.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def build_classifier(
    out_dir: str | Path, *, batch: int = -1, height: int = 48, width: int = 64,
    name: str = "classifier",
) -> Path:
    """Write the quadrant classifier as ``<out_dir>/<name>.xml/.bin``; return the .xml path.

    Output ``logits`` [N,4] f32.
    """
    x = _input(batch, height, width)
    means = _region_mean_nodes(x, classifier_regions(height, width))
    logits = ops.multiply(means, np.float32(GAIN / 255))
    return _save(logits, "logits", x, out_dir, name)


def build_detector(
    out_dir: str | Path, *, batch: int = -1, height: int = 64, width: int = 64,
    name: str = "detector",
) -> Path:
    """Write the fixed-box detector as ``<out_dir>/<name>.xml/.bin``; return the .xml path.

    Output ``detection_out`` [1,1,N*K,7] f32, rows ``[image_id, label, conf, x0, y0, x1, y1]``.
    """
    k = len(DETECTOR_BOXES)
    x = _input(batch, height, width)
    conf = ops.divide(_region_mean_nodes(x, detector_regions(height, width)), np.float32(255))
    conf = ops.unsqueeze(conf, [2])  # [N,K,1]

    # Image ids come from the runtime batch size so the graph stays batch-agnostic.
    n = ops.gather(ops.shape_of(x), np.int64(0), np.int64(0))
    ids = ops.range(np.float32(0), ops.convert(n, np.float32), np.float32(1), "f32")

    def per_image(tail: list[int]) -> ov.Node:  # runtime shape [N, *tail]
        return ops.concat([ops.unsqueeze(n, [0]), ops.constant(np.array(tail, np.int64))], 0)

    ids = ops.broadcast(ops.reshape(ids, [-1, 1, 1], special_zero=False), per_image([k, 1]))
    labels = ops.broadcast(np.arange(k, dtype=np.float32).reshape(1, k, 1), per_image([k, 1]))
    boxes = ops.broadcast(DETECTOR_BOXES[None], per_image([k, 4]))

    rows = ops.concat([ids, labels, conf, boxes], axis=2)  # [N,K,7]
    out = ops.reshape(rows, [1, 1, -1, 7], special_zero=False)
    return _save(out, "detection_out", x, out_dir, name)
