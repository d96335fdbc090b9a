"""RISE (Petsiuk et al., BMVC 2018) and, for detectors, D-RISE (CVPR 2021).

Random binary grids, upsampled with a sub-cell shift at the image's aspect ratio,
blend the image with a mask value; the model scores every masked image and
saliency = sum(weight * mask) / (N * p). Images are masked at about the model's
input resolution (a 4000x3000 photo costs what a 300x225 one does) and saliency
accumulates at a few pixels per cell, with one float32 matrix product per batch.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Iterator

import click
import numpy as np

from explain_plugin.methods.base import (
    ExplainMethod, NothingToExplain, ProgressFn, Snapshot, normalize_maps,
)
from explain_plugin.methods.masks import MaskGenerator
from explain_plugin.methods.target_select import parse_targets, select_boxes, select_classes

SALIENCY_PIXELS_PER_CELL = 8  # maps are bilinear in the cells: 8 px per cell loses nothing
MASK_VALUES = ("0", "mean", "blur")


def working_size(image_hw: tuple[int, int], input_hw: tuple[int, int]) -> tuple[int, int]:
    """The smallest size, at the image's aspect ratio, that still gives the model
    every pixel it would see of the original image (never larger than the image)."""
    h, w = image_hw
    scale = min(1.0, max(input_hw[0] / h, input_hw[1] / w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def mask_base(image: np.ndarray, value: str, cell: float) -> np.ndarray:
    """What a masked-out pixel becomes: 0, the image's mean colour, or a blurred image."""
    import cv2

    if value == "0":
        return np.zeros((1, 1, 3), dtype=np.float32)
    if value == "mean":
        return image.reshape(-1, 3).mean(axis=0).reshape(1, 1, 3).astype(np.float32)
    return cv2.GaussianBlur(image, (0, 0), sigmaX=max(1.0, cell / 2))


class Rise(ExplainMethod):
    name = "rise"
    help = "RISE: randomized input sampling (D-RISE for detectors)."

    @classmethod
    def options(cls) -> list[click.Parameter]:
        opt = click.Option
        return [
            opt(["-s", "--max-samples"], type=click.IntRange(min=1), default=1000,
                show_default=True, help="Number of masks."),
            opt(["--mw", "--mask-width", "mask_width"], type=click.IntRange(min=1), default=7,
                show_default=True, help="Mask grid width, in cells."),
            opt(["--mh", "--mask-height", "mask_height"], type=click.IntRange(min=1), default=7,
                show_default=True, help="Mask grid height, in cells."),
            opt(["--prob"], type=click.FloatRange(0, 1, min_open=True, max_open=True),
                default=0.5, show_default=True, help="Probability that a cell is kept."),
            opt(["--iou", "--iou-thresh", "iou_thresh"], type=click.FloatRange(0, 1), default=0.9,
                show_default=True, help="Detections: min IoU for a masked detection to count."),
            opt(["--nms", "--nms-iou-thresh", "nms_iou_thresh"], type=click.FloatRange(0, 1),
                default=0.0, show_default=True,
                help="Detections: NMS IoU threshold on the clean image's boxes (0: off)."),
            opt(["--conf", "--det-conf-thresh", "det_conf_thresh"], type=click.FloatRange(0, 1),
                default=0.0, show_default=True,
                help="Detections: min confidence of a clean-image box to explain."),
            opt(["-b", "--batch-size"], type=click.IntRange(min=1), default=None,
                help="Masks per inference batch (default: the launcher's)."),
            opt(["--seed"], type=int, default=0, show_default=True, help="Random seed."),
            opt(["--targets"], default=None,
                help="What to explain: top:K, all, or label names/ids (comma-separated). "
                     "Default: the top class; every box for detectors."),
            opt(["--mask-value"], type=click.Choice(MASK_VALUES), default="0",
                show_default=True, help="What masked pixels become."),
            opt(["--converge"], type=click.FloatRange(min=0, min_open=True), default=None,
                help="Stop when the maps change less than TOL (mean abs) between snapshots."),
            opt(["--normalize", "normalize"], type=click.Choice(["density", "expected"]),
                default="density", show_default=True,
                help="Divide by how often each pixel was actually kept (density: a constant "
                     "model gives a flat map, less noise) or by N * p (the paper's)."),
            opt(["--every", "--snapshot-every", "snapshot_every"], type=click.IntRange(min=1),
                default=100, show_default=True,
                help="Masks between snapshots (--progressive, --display, --converge)."),
            opt(["--progressive"], is_flag=True, help="Save intermediate maps too."),
            opt(["--display"], is_flag=True, help="Show the maps in a window while they build."),
        ]

    def explain(self, launcher, image: np.ndarray, progress: ProgressFn | None = None
                ) -> Iterator[Snapshot]:
        from explain_plugin.methods.scoring import (
            BoxScorer, ClassScorer, box_targets, class_targets, nms_keep, subset,
        )
        from explain_plugin.launchers.predictions import (
            detections_from_annotations, scores_from_annotations,
        )
        import cv2

        p = self.params
        n_total = int(p["max_samples"])
        prob = float(p["prob"])
        batch = int(p.get("batch_size") or launcher.batch_size or 1)
        labels = [c.name for c in launcher.categories]
        spec = parse_targets(p.get("targets"), labels)

        h0, w0 = image.shape[:2]
        wh, ww = working_size((h0, w0), launcher.input_size)
        work = image.astype(np.float32)
        if (wh, ww) != (h0, w0):
            work = cv2.resize(work, (ww, wh), interpolation=cv2.INTER_AREA)
        sh = min(wh, p["mask_height"] * SALIENCY_PIXELS_PER_CELL)
        sw = min(ww, p["mask_width"] * SALIENCY_PIXELS_PER_CELL)
        base = mask_base(work, str(p.get("mask_value", "0")),
                         max(wh / p["mask_height"], ww / p["mask_width"]))
        delta = work - base

        clean = launcher.predict([work])[0]
        num_classes = len(labels)
        if any(_is_box(a) for a in clean):
            det = detections_from_annotations(clean, num_classes)
            keep = np.flatnonzero(det.scores >= p.get("det_conf_thresh", 0.0))
            det = subset(det, keep)
            if p.get("nms_iou_thresh"):
                det = subset(det, nms_keep(det, p["nms_iou_thresh"]))
            det = subset(det, select_boxes(det.labels, det.scores, spec))
            scorer = BoxScorer(det, num_classes, p.get("iou_thresh", 0.0))
            targets = box_targets(det, labels, (w0 / ww, h0 / wh))
        else:
            scores = scores_from_annotations([clean], num_classes)[0]
            ids = select_classes(scores, spec)
            scorer = ClassScorer(ids, num_classes)
            targets = class_targets(ids, scores, labels)
        if not targets:
            raise NothingToExplain("the model found nothing to explain in the image "
                                   "(no detections above --conf): lower --conf or check the model")

        density = p.get("normalize", "density") == "density"
        gen = MaskGenerator(p["mask_height"], p["mask_width"], prob, int(p.get("seed") or 0))
        acc = np.zeros((len(targets), sh * sw), dtype=np.float32)
        weight_sum = np.zeros(len(targets), dtype=np.float64)
        coverage = np.zeros(sh * sw, dtype=np.float32)  # sum of masks at each pixel
        pending: deque = deque()

        snapshots = bool(p.get("progressive") or p.get("display") or p.get("converge"))
        every = int(p.get("snapshot_every") or 100)

        def batches():
            planned = 0
            while planned < n_total:
                count = min(batch, n_total - planned)
                # Batches end on snapshot boundaries whether or not snapshots are taken,
                # so a progressive run computes exactly what a plain one does.
                count = min(count, every - planned % every)
                grids, shifts = gen.sample(count)
                pending.append((grids, shifts))
                masks = gen.render(grids, shifts, wh, ww)[..., None]
                yield base + masks * delta
                planned += count

        next_snap, used, previous = every, 0, None
        started = time.perf_counter()
        for anns in launcher.stream(batches()):
            grids, shifts = pending.popleft()
            small = gen.render(grids, shifts, sh, sw).reshape(len(grids), -1)
            weights = scorer(anns)
            acc += weights @ small
            coverage += small.sum(axis=0)
            weight_sum += weights.sum(axis=1)
            used += len(grids)
            if progress:
                progress(used, n_total)
            if snapshots and used >= next_snap and used < n_total:
                next_snap += every
                maps = self._maps(acc, coverage, used, prob, sh, sw, density)
                change = None if previous is None else float(np.abs(maps - previous).mean())
                previous = maps
                converged = bool(p.get("converge") and change is not None
                                 and change < p["converge"])
                yield Snapshot(maps, targets, used, final=converged, converged=converged,
                               raw=self._raw(acc, coverage, used, prob, sh, sw, density),
                               baseline=(weight_sum / used).astype(np.float32),
                               extra={"change": change})
                if converged:
                    return
        maps = self._maps(acc, coverage, used, prob, sh, sw, density)
        yield Snapshot(maps, targets, used, final=True, raw=self._raw(acc, coverage, used, prob, sh, sw, density),
                       baseline=(weight_sum / used).astype(np.float32),
                       extra={"seconds": time.perf_counter() - started})

    @staticmethod
    def _raw(acc: np.ndarray, coverage: np.ndarray, used: int, prob: float, h: int, w: int,
             density: bool) -> np.ndarray:
        """E[weight | pixel kept]: over the masks' actual coverage of each pixel
        (``density``), or over its expectation N * p as in the paper."""
        if density:
            return (acc / np.maximum(coverage, 1e-6)).reshape(-1, h, w)
        return (acc / (used * prob)).reshape(-1, h, w)

    @classmethod
    def _maps(cls, *args) -> np.ndarray:
        return normalize_maps(cls._raw(*args))


def _is_box(annotation) -> bool:
    from datumaro.components.annotation import Bbox

    return isinstance(annotation, Bbox)
