"""``segments``: random subsets of superpixels at several scales, a ridge fit per scale.

Each mask keeps a random subset (probability ``--prob``) of the superpixels of
one of several segmentations (coarse to fine, ``--levels``), so occlusions follow
the image's edges instead of RISE's smooth grid cells. Per level, a ridge
regression of the target's score on the kept-segment bits gives each segment its
contribution (LIME's estimator, without its kernel); the map is the sum over
levels of each pixel's segment contribution per unit of segment area, so fine
levels sharpen what coarse levels find. Masks are known ahead (open loop: many
batches in flight) and made by one gather per batch.

Then ``--refine`` (a share of the same budget) reorders the map's top: a greedy
search over the finest segments, closed loop, that keeps its order only if it
beats the map's own on the same evaluations (``refine.py``).
"""
from __future__ import annotations

import time
from contextlib import closing
from typing import Iterator

import click
import numpy as np

from explain_plugin.methods.base import ExplainMethod, NothingToExplain, ProgressFn, Snapshot
from explain_plugin.methods.occlusion import MASK_VALUES

MAP_SIDE = 96  # superpixels and maps at most this many pixels a side
RIDGE = 1.0  # ridge penalty, in units of one sample's bit variance


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 2:
        raise click.BadParameter(f"expected comma-separated segment counts >= 2, got {text!r}")
    return levels


def parse_probs(text) -> list[float]:
    try:
        probs = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        probs = []
    if not probs or not all(0 < v < 1 for v in probs):
        raise click.BadParameter(f"expected comma-separated probabilities in (0, 1), got {text!r}")
    return probs


def fit_levels(bits: list[np.ndarray], scores: list[np.ndarray], probs: list[float]
               ) -> list[np.ndarray]:
    """Per level: contributions [T, K] from keep bits [n, K] and scores [n, T] (ridge, float64,
    solved without BLAS-order dependence worth a rank flip: einsum products)."""
    out = []
    for z, y, prob in zip(bits, scores, probs):
        k, t = z.shape[1], y.shape[1]
        if len(z) < 2:
            out.append(np.zeros((t, k)))
            continue
        z = z.astype(np.float64) - z.mean(axis=0)
        y = y.astype(np.float64) - y.mean(axis=0)
        gram = np.einsum("nk,nj->kj", z, z, optimize=False)
        gram[np.diag_indices(k)] += RIDGE * prob * (1 - prob) * max(1.0, len(z) / k) ** 0.5
        rhs = np.einsum("nk,nt->kt", z, y, optimize=False)
        out.append(np.linalg.solve(gram, rhs).T)
    return out


class Segments(ExplainMethod):
    name = "segments"
    help = "Multi-scale superpixel sampling with a ridge fit per scale."
    presentation_options = frozenset({"batch_size"})
    takes_item = True

    @classmethod
    def options(cls) -> list[click.Parameter]:
        from explain_plugin.methods.metrics import metric_options
        from explain_plugin.methods.targets import detection_options

        opt = click.Option
        return [
            opt(["-s", "--max-samples"], type=click.IntRange(min=1), default=1000,
                show_default=True, help="Number of masks."),
            opt(["--levels"], default="16,48,128", show_default=True,
                callback=lambda ctx, param, v: (parse_levels(v), v)[1],
                help="Superpixels per segmentation, comma-separated (one scale each)."),
            opt(["--prob"], default="0.7", show_default=True,
                callback=lambda ctx, param, v: (parse_probs(v), v)[1],
                help="Probability that a segment is kept; several (comma-separated) take "
                     "turns, each with its own fit (e.g. 0.8,0.4: dense and sparse contexts)."),
            opt(["--refine"], type=click.FloatRange(0, 0.9), default=0.3, show_default=True,
                help="Share of --max-samples spent on greedy refinement of the map's top "
                     "segments (finest level); 0: none."),
            opt(["--refine-candidates"], type=click.IntRange(min=1), default=16,
                show_default=True, help="Segments tried per refinement step."),
            opt(["--refine-add"], type=click.IntRange(min=1), default=1, show_default=True,
                help="Segments taken per refinement step."),
            opt(["--compactness"], type=click.FloatRange(min=0, min_open=True), default=10.0,
                show_default=True, help="Superpixel shape: higher follows colour less."),
            *detection_options(),
            opt(["-b", "--batch-size"], type=click.IntRange(min=1), default=None,
                help="Masks per step (default: the launcher's batch)."),
            opt(["--seed"], type=int, default=0, show_default=True, help="Random seed."),
            opt(["--targets"], default=None,
                help="What to explain: top:K, all, or label names/ids (comma-separated). "
                     "Default: the top class; every box for detectors."),
            opt(["--mask-value"], type=click.Choice(MASK_VALUES), default="0",
                show_default=True, help="What masked pixels become."),
            *metric_options(),
        ]

    def explain(self, launcher, image: np.ndarray, progress: ProgressFn | None = None,
                item=None) -> Iterator[Snapshot]:
        from threadpoolctl import threadpool_limits

        from explain_plugin.methods.engine import Evaluator
        from explain_plugin.methods.normalize import normalize_maps
        from explain_plugin.methods.occlusion import Occlusion
        from explain_plugin.methods.segments.render import SegmentRenderer
        from explain_plugin.methods.segments.superpixels import superpixels, upscale_labels
        from explain_plugin.methods.targets import parse_targets, resolve
        from explain_plugin.methods.view import view_of

        p = self.params
        total = int(p["max_samples"])
        levels = parse_levels(p.get("levels") or "16,48,128")
        probs = parse_probs(p.get("prob") or "0.7")
        groups = [(lv, pr) for pr in probs for lv in range(len(levels))]  # taking turns
        labels_names = [c.name for c in launcher.categories]
        spec = parse_targets(p.get("targets"), labels_names)

        view = view_of(launcher, image)
        vh, vw = view.hw
        scale = min(1.0, MAP_SIDE / max(vh, vw))
        mh, mw = max(1, round(vh * scale)), max(1, round(vw * scale))
        occlusion = Occlusion.of(view.pixels, str(p.get("mask_value", "0")),
                                 max(vh, vw) / np.sqrt(max(levels)))
        scorer, targets = resolve(launcher, view, spec, conf=p.get("det_conf_thresh", 0.0),
                                  nms=p.get("nms_iou_thresh", 0.0), iou=p.get("iou_thresh", 0.0))
        if not targets:
            raise NothingToExplain("the model found nothing to explain in the image "
                                   "(no detections above --conf): lower --conf or check the model")
        from explain_plugin.methods.segments import refine

        cands = int(p.get("refine_candidates") or 16)
        steps, refined = refine.plan(int(round(total * float(p.get("refine") or 0))),
                                     len(targets), cands)
        if total - refined < 2 * len(groups):
            steps, refined = 0, 0
        sampled = total - refined
        started = time.perf_counter()
        small = [superpixels(view.pixels, n, (mh, mw), float(p.get("compactness") or 10.0))
                 for n in levels]
        render = [SegmentRenderer(upscale_labels(s, vh, vw)) for s in small]
        sizes = [int(s.max()) + 1 for s in small]
        # one stream per level: the masks never depend on the batch size
        rngs = [np.random.default_rng(s) for s in
                np.random.SeedSequence(int(p.get("seed") or 0)).spawn(len(groups))]
        step = int(p.get("batch_size") or launcher.batch_size or 1)
        bits: list[list[np.ndarray]] = [[] for _ in groups]
        scores: list[list[np.ndarray]] = [[] for _ in groups]

        def masks():
            done = 0
            while done < sampled:
                count = min(step, sampled - done)
                group = (done + np.arange(count)) % len(groups)
                out = np.empty((count, vh, vw), np.float32)
                keep = []
                for g, (lv, prob) in enumerate(groups):
                    rows = np.flatnonzero(group == g)
                    keep.append(rngs[g].random((len(rows), sizes[lv])) < prob)
                    out[rows] = render[lv](keep[g])
                done += count
                yield (group, keep), out

        def fit(first: int) -> np.ndarray:
            """The map [T, mh, mw] of the first ``first`` samples (sample i is group i % G),
            whatever the batches that brought them."""
            counts = [len(range(g, first, len(groups))) for g in range(len(groups))]
            coefs = fit_levels([np.concatenate(b)[:n] for b, n in zip(bits, counts)],
                               [np.concatenate(s)[:n] for s, n in zip(scores, counts)],
                               [pr for _, pr in groups])
            out = np.zeros((len(targets), mh, mw), np.float64)
            for coef, (lv, _) in zip(coefs, groups):
                out += coef[:, small[lv]] * (sizes[lv] / len(groups))  # per unit of area
            return out

        fine = int(np.argmax(sizes))
        add = int(p.get("refine_add") or 1)
        # The greedy steps wait on each other: they start on the map of the samples
        # answered so far and ride along with the last sampling batches (one session),
        # so the device never idles between steps.
        start = max(len(groups) * 2, sampled - refined // 2) if steps else sampled + 1
        evaluator = Evaluator(launcher, view, scorer, occlusion)
        answers = evaluator.imap(masks(), purpose="segments")
        used, joined = 0, False
        with threadpool_limits(limits=1, user_api="blas"), closing(answers):
            for (group, keep), answer in answers:
                for g in range(len(groups)):
                    bits[g].append(keep[g])
                    scores[g].append(answer.scores[np.flatnonzero(group == g)])
                used += len(group)
                if used >= start and not joined:
                    joined, prior = True, fit(start)
                    for t in range(len(targets)):
                        answers.join(refine.greedy(
                            refine.segment_means(prior[t], small[fine], sizes[fine]),
                            render[fine], t, steps, cands, add), purpose="segments")
                if progress:
                    progress(evaluator.counts.get("segments", used), total)
            raw = fit(sampled)
        if steps:
            raw = np.stack([refine.lift(raw[t], small[fine], c)
                            for t, c in enumerate(answers.results)])
            used = evaluator.counts.get("segments", used)
            if progress:
                progress(used, total)
        raw = raw.astype(np.float32)
        snap = Snapshot(normalize_maps(raw), targets, used, final=True, raw=raw,
                        baseline=np.zeros(len(targets), np.float32),
                        evaluations=dict(evaluator.counts))
        snap.extra["seconds"] = time.perf_counter() - started
        snap.extra["segments"] = sizes
        if p.get("metrics", False):
            from explain_plugin.methods.metrics import evaluate_maps

            snap.metrics = evaluate_maps(evaluator, snap.maps, targets, item=item,
                                         steps=int(p.get("metric_steps") or 20))
            snap.evaluations = dict(evaluator.counts)
        yield snap
