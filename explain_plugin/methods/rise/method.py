"""RISE (Petsiuk et al., BMVC 2018) and, for detectors, D-RISE (CVPR 2021).

Random binary grids, upsampled with a sub-cell shift at the image's aspect ratio,
blend the image with a mask value; the model scores every masked image and
saliency = sum(weight * mask) / (N * p). Images are masked at the size the
launcher scales them to (``methods.view``), masks stream open-loop through the
evaluation engine (many batches in flight), and saliency accumulates at a few
pixels per cell, with one float32 matrix product per step.
"""
from __future__ import annotations

import time
from contextlib import closing
from typing import Iterator

import click
import numpy as np

from explain_plugin.methods.base import ExplainMethod, NothingToExplain, ProgressFn, Snapshot
from explain_plugin.methods.occlusion import MASK_VALUES
from explain_plugin.methods.rise.accumulator import SaliencyAccumulator
from explain_plugin.methods.rise.masks import MaskGenerator

SALIENCY_PIXELS_PER_CELL = 8  # maps are bilinear in the cells: 8 px per cell loses nothing


class Rise(ExplainMethod):
    name = "rise"
    help = "RISE: randomized input sampling (D-RISE for detectors)."
    presentation_options = frozenset({"display", "batch_size"})
    takes_item = True

    @classmethod
    def options(cls) -> list[click.Parameter]:
        from explain_plugin.methods.metrics import metric_options
        from explain_plugin.methods.targets import detection_options

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
            *detection_options(),
            opt(["-b", "--batch-size"], type=click.IntRange(min=1), default=None,
                help="Masks per accumulation step (default: the launcher's batch); "
                     "inference always runs in the launcher's full batches."),
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
            *metric_options(),
        ]

    def explain(self, launcher, image: np.ndarray, progress: ProgressFn | None = None,
                item=None) -> Iterator[Snapshot]:
        from threadpoolctl import threadpool_limits

        from explain_plugin.methods.engine import Evaluator
        from explain_plugin.methods.occlusion import Occlusion
        from explain_plugin.methods.schedule import SnapshotSchedule
        from explain_plugin.methods.targets import parse_targets, resolve
        from explain_plugin.methods.view import view_of

        p = self.params
        n_total, prob = int(p["max_samples"]), float(p["prob"])
        gh, gw = int(p["mask_height"]), int(p["mask_width"])
        labels = [c.name for c in launcher.categories]
        spec = parse_targets(p.get("targets"), labels)

        view = view_of(launcher, image)
        wh, ww = view.hw
        sh, sw = min(wh, gh * SALIENCY_PIXELS_PER_CELL), min(ww, gw * SALIENCY_PIXELS_PER_CELL)
        occlusion = Occlusion.of(view, str(p.get("mask_value", "0")), max(wh / gh, ww / gw))
        scorer, targets = resolve(launcher, view, spec, conf=p.get("det_conf_thresh", 0.0),
                                  nms=p.get("nms_iou_thresh", 0.0), iou=p.get("iou_thresh", 0.0))
        if not targets:
            raise NothingToExplain("the model found nothing to explain in the image "
                                   "(no detections above --conf): lower --conf or check the model")

        evaluator = Evaluator(launcher, view, scorer, occlusion)
        gen = MaskGenerator(gh, gw, prob, int(p.get("seed") or 0))
        acc = SaliencyAccumulator(len(targets), sh, sw, prob,
                                  density=p.get("normalize", "density") == "density")
        schedule = SnapshotSchedule(n_total, int(p.get("snapshot_every") or 100),
                                    wanted=bool(p.get("progressive") or p.get("display")),
                                    tolerance=p.get("converge"))
        step = int(p.get("batch_size") or launcher.batch_size or 1)

        def masks():
            for count in schedule.chunks(step):
                grids, shifts = gen.sample(count)
                yield (grids, shifts), gen.render(grids, shifts, wh, ww)

        def snapshot(**kwargs) -> Snapshot:
            snap = acc.snapshot(targets, **kwargs)
            snap.evaluations = dict(evaluator.counts)
            snap.show = bool(p.get("display"))
            return snap

        started = time.perf_counter()
        final = None
        answers = evaluator.imap(masks(), purpose="rise")
        # numpy's BLAS threads would fight OpenVINO's for the cores: one thread here.
        with threadpool_limits(limits=1, user_api="blas"), closing(answers):
            for (grids, shifts), answer in answers:
                acc.add(np.ascontiguousarray(answer.scores.T),
                        gen.render(grids, shifts, sh, sw).reshape(len(grids), -1))
                if progress:
                    progress(acc.used, n_total)
                if schedule.due(acc.used):
                    noise = acc.noise()
                    converged = schedule.converged(noise)
                    snap = snapshot(final=converged, converged=converged, extra={"noise": noise},
                                    save=bool(p.get("progressive")))
                    if converged:
                        final = snap
                        break
                    yield snap
            if final is None:
                final = snapshot(final=True, extra={"noise": acc.noise()})
            acc.release()  # the maps hold the result: free the sums before the metrics run
            final.extra["seconds"] = time.perf_counter() - started
            final.extra["padding"] = evaluator.padding  # never counted as masks
            if p.get("metrics", False):
                from explain_plugin.methods.metrics import evaluate_maps

                final.metrics = evaluate_maps(evaluator, final.maps, targets, item=item,
                                              steps=int(p.get("metric_steps") or 20))
                final.evaluations = dict(evaluator.counts)
        yield final
