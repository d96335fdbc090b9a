"""RISE (Petsiuk et al., BMVC 2018) and, for detectors, D-RISE (CVPR 2021).

Random binary grids, upsampled with a sub-cell shift at the image's aspect ratio,
blend the image with a mask value; the model scores every masked image and
saliency = sum(weight * mask) / (N * p). Images are masked at the size the
launcher scales them to (a 4000x3000 photo costs what a 300x225 one does, and
the launcher has nothing left to resize) and saliency
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


def mask_base(image: np.ndarray, value: str, cell: float) -> np.ndarray:
    """What a masked-out pixel becomes: 0, the image's mean colour, or a blurred image."""
    import cv2

    if value == "0":
        return np.zeros((1, 1, image.shape[2]), dtype=np.float32)
    if value == "mean":
        return image.reshape(-1, image.shape[2]).mean(axis=0).reshape(1, 1, -1).astype(np.float32)
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
                help="Stop at the first snapshot where the maps' estimated noise (mean abs, "
                     "from two independent half-maps) is below TOL, e.g. 0.045."),
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
        p = self.params
        n_total = int(p["max_samples"])
        prob = float(p["prob"])
        batch = int(p.get("batch_size") or launcher.batch_size or 1)
        labels = [c.name for c in launcher.categories]
        spec = parse_targets(p.get("targets"), labels)

        h0, w0 = image.shape[:2]
        work = launcher.view_image(image)  # in the launcher's input space
        wh, ww = work.shape[:2]
        sh = min(wh, p["mask_height"] * SALIENCY_PIXELS_PER_CELL)
        sw = min(ww, p["mask_width"] * SALIENCY_PIXELS_PER_CELL)
        base = launcher.occlusion_base(work)
        if base is None:
            base = mask_base(work, str(p.get("mask_value", "0")),
                             max(wh / p["mask_height"], ww / p["mask_width"]))

        scorer, targets = self._scorer(launcher, work, (h0, w0), labels, spec)
        if not targets:
            raise NothingToExplain("the model found nothing to explain in the image "
                                   "(no detections above --conf): lower --conf or check the model")

        from threadpoolctl import threadpool_limits

        gen = MaskGenerator(p["mask_height"], p["mask_width"], prob, int(p.get("seed") or 0))
        acc = SaliencyAccumulator(len(targets), sh, sw, prob,
                                  density=p.get("normalize", "density") == "density")
        every = int(p.get("snapshot_every") or 100)
        snapshots = bool(p.get("progressive") or p.get("display") or p.get("converge"))
        tolerance = p.get("converge")
        pending: deque = deque()
        blend = Blender(work, base)

        def batches():
            planned = 0
            while planned < n_total:
                # Batches end on snapshot boundaries whether or not snapshots are taken,
                # so a progressive run computes exactly what a plain one does.
                count = min(batch, n_total - planned, every - planned % every)
                grids, shifts = gen.sample(count)
                pending.append((grids, shifts))
                yield blend(gen.render(grids, shifts, wh, ww))
                planned += count

        next_snap = every
        started = time.perf_counter()
        # numpy's BLAS threads would fight OpenVINO's for the cores: one thread here.
        with threadpool_limits(limits=1, user_api="blas"):
            for anns in launcher.stream_views(batches()):
                grids, shifts = pending.popleft()
                acc.add(scorer(anns), gen.render(grids, shifts, sh, sw).reshape(len(grids), -1))
                if progress:
                    progress(acc.used, n_total)
                if snapshots and next_snap <= acc.used < n_total:
                    next_snap += every
                    noise = acc.noise()
                    converged = bool(tolerance and noise < tolerance)
                    yield acc.snapshot(targets, final=converged, converged=converged,
                                       extra={"noise": noise})
                    if converged:
                        return
        yield acc.snapshot(targets, final=True, extra={
            "noise": acc.noise(), "seconds": time.perf_counter() - started})

    def _scorer(self, launcher, work: np.ndarray, image_hw: tuple[int, int], labels: list[str],
                spec: tuple[str, object]):
        """What to explain, from the model's answer on the clean image: classes (RISE)
        or boxes after --conf and --nms (D-RISE); and how to weigh a masked image."""
        from explain_plugin.launchers.predictions import (
            detections_from_annotations, scores_from_annotations,
        )
        from explain_plugin.methods.scoring import (
            BoxScorer, ClassScorer, box_targets, class_targets,
        )

        p = self.params
        (h0, w0), (wh, ww) = image_hw, work.shape[:2]
        clean = launcher.predict_views([work])[0]
        num_classes = len(labels)
        if any(_is_box(a) for a in clean):
            det = detections_from_annotations(clean, num_classes)
            det = det.subset(np.flatnonzero(det.scores >= p.get("det_conf_thresh", 0.0)))
            if p.get("nms_iou_thresh"):
                det = det.subset(det.nms(p["nms_iou_thresh"]))
            det = det.subset(select_boxes(det.labels, det.scores, spec))
            return (BoxScorer(det, num_classes, p.get("iou_thresh", 0.0)),
                    box_targets(det, labels, (w0 / ww, h0 / wh)))
        scores = scores_from_annotations([clean], num_classes)[0]
        ids = select_classes(scores, spec)
        return ClassScorer(ids, num_classes), class_targets(ids, scores, labels)


class Blender:
    """Masked images ``base + mask * (image - base)``, written plane by plane:
    broadcasting a (1, 1, 3) base would make numpy loop over 3-value chunks."""

    def __init__(self, image: np.ndarray, base: np.ndarray):
        delta = image - base
        self.planes = [np.ascontiguousarray(delta[..., c]) for c in range(image.shape[2])]
        self.base = None if not base.any() else np.ascontiguousarray(
            np.broadcast_to(base, image.shape), dtype=np.float32)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        out = np.empty((*masks.shape, len(self.planes)), dtype=np.float32)
        for c, plane in enumerate(self.planes):
            np.multiply(masks, plane, out=out[..., c])
        if self.base is not None:
            out += self.base
        return out


class SaliencyAccumulator:
    """Sums of weight x mask for each target, in two halves (alternate batches).

    The two half-maps are independent estimates of the same map, so half their
    difference measures the noise left in the full map: ``--converge`` stops on
    that, not on how much the map moved since the last snapshot.
    """

    def __init__(self, targets: int, height: int, width: int, prob: float, density: bool):
        self.shape, self.prob, self.density = (height, width), prob, density
        self.sums = np.zeros((2, targets, height * width), dtype=np.float32)
        self.coverage = np.zeros((2, height * width), dtype=np.float32)  # sum of masks per pixel
        self.weight_sums = np.zeros((2, targets), dtype=np.float64)
        self.counts = [0, 0]
        self._batches = 0

    @property
    def used(self) -> int:
        return self.counts[0] + self.counts[1]

    def add(self, weights: np.ndarray, masks: np.ndarray) -> None:
        """``weights`` [T, B] for flattened ``masks`` [B, h*w]."""
        half = self._batches % 2
        self._batches += 1
        self.sums[half] += weights @ masks
        self.coverage[half] += masks.sum(axis=0)
        self.weight_sums[half] += weights.sum(axis=1)
        self.counts[half] += masks.shape[0]

    def raw(self, halves=(0, 1)) -> np.ndarray:
        """E[weight | pixel kept], over the masks' actual coverage of each pixel
        (``density``) or over its expectation N * p (the paper's)."""
        halves = list(halves)
        sums = self.sums[halves].sum(axis=0)
        if self.density:
            sums = sums / np.maximum(self.coverage[halves].sum(axis=0), 1e-6)
        else:
            sums = sums / (max(sum(self.counts[h] for h in halves), 1) * self.prob)
        return sums.reshape(-1, *self.shape)

    def noise(self) -> float:
        """Mean absolute noise of the normalised maps (worst target), from the halves."""
        if not all(self.counts):
            return float("inf")
        a, b = normalize_maps(self.raw([0])), normalize_maps(self.raw([1]))
        return float(np.abs(a - b).reshape(len(a), -1).mean(axis=1).max() / 2)

    def snapshot(self, targets, **kwargs) -> Snapshot:
        raw = self.raw()
        baseline = (self.weight_sums.sum(axis=0) / max(self.used, 1)).astype(np.float32)
        return Snapshot(normalize_maps(raw), targets, self.used, raw=raw, baseline=baseline,
                        **kwargs)


def _is_box(annotation) -> bool:
    from datumaro.components.annotation import Bbox

    return isinstance(annotation, Bbox)
