"""``datum explain ... rex``: causal responsibility maps (ReX, Chockler et al.) and the
explanations extracted from them, for classifiers and detectors.

Per image: the model's answer on the whole view fixes the targets; one probe
(the whole view and the fully occluded view) gives each target's reference score
and rank, and finds targets that need no pixel at all (nothing to explain).
Then every iteration of every target is a producer of the evaluation engine,
which packs their mutants into full batches; the extraction of every target runs
the same way. See ``search`` and ``extract`` for the algorithms.
"""
from __future__ import annotations

import time
from typing import Any, Iterator

import click
import numpy as np

from explain_plugin.errors import CliError
from explain_plugin.methods.base import ExplainMethod, NothingToExplain, ProgressFn, Snapshot
from explain_plugin.methods.rex import extract as ex
from explain_plugin.methods.rex.config import DEFAULTS, config_callback, settings
from explain_plugin.methods.rex.search import (
    IterationResult, Judge, SearchConfig, iteration, multiplex, rank_of,
)

CONVERGE_TOL = 0.03  # mean abs change of the normalised map that one more iteration makes
# (it falls as ~1/n: on EfficientNet-Lite0 photos 0.03 is reached after 7-12 iterations)
CONVERGE_MIN_ITERS = 6
CONVERGE_WIDTH = 6  # iterations in flight per target while --converge watches (closed at the stop)


class Rex(ExplainMethod):
    name = "rex"
    help = "ReX: causal responsibility maps and minimal sufficient explanations."
    presentation_options = frozenset({"batch_size"})
    takes_item = True

    @classmethod
    def options(cls) -> list[click.Parameter]:
        from explain_plugin.methods.metrics import metric_options
        from explain_plugin.methods.targets import detection_options

        opt = click.Option
        d = DEFAULTS
        return [
            opt(["--iters"], type=click.IntRange(min=1), default=None,
                help=f"Random partition trees per target [default: {d['iters']}]."),
            opt(["--tree-depth"], type=click.IntRange(min=1), default=None,
                help=f"Deepest split [default: {d['tree_depth']}]."),
            opt(["--min-box-size"], type=click.IntRange(min=1), default=None,
                help=f"Smallest average child box, in pixels [default: {d['min_box_size']}]."),
            opt(["--queue-len"], default=None,
                help="Passing mutants refined per level, smallest first: N or 'all' "
                     f"[default: {d['queue_len']}]."),
            opt(["--search-limit"], type=click.IntRange(min=0), default=None,
                help="Evaluations per iteration after which it stops "
                     f"[default: {d['search_limit']}; 0: none]."),
            opt(["--confidence-filter"], type=click.FloatRange(0, 1), default=None,
                help="A mutant passes only with score >= this x the whole image's "
                     f"[default: {d['confidence_filter']}]."),
            opt(["--mask-value"], type=click.Choice(["0", "mean", "blur"]), default=None,
                help=f"What occluded pixels become [default: {d['mask_value']}]."),
            opt(["--distribution"], type=click.Choice(["uniform", "betabinom"]), default=None,
                help=f"Where boxes split [default: {d['distribution']}]."),
            opt(["--strategy"], type=click.Choice(list(ex.STRATEGIES)), default=None,
                help=f"How explanations are extracted [default: {d['strategy']}]."),
            opt(["--multi"], type=click.IntRange(min=1), default=None,
                help=f"--strategy multi: explanations wanted [default: {d['multi']}]."),
            opt(["--seed"], type=int, default=None, help=f"Random seed [default: {d['seed']}]."),
            opt(["--converge"], is_flag=True, default=False,
                help="Stop iterating when one more iteration no longer changes the map "
                     f"(mean change < {CONVERGE_TOL} twice running).",),
            opt(["-c", "--config"], type=click.Path(dir_okay=False), default=None,
                callback=config_callback,
                help="A ReX config file (rex.toml): its [rex], [causal] and [explanation] "
                     "keys that apply; options given here win."),
            opt(["--targets"], default=None,
                help="What to explain: top:K, all, or label names/ids (comma-separated). "
                     "Default: the top class; every box for detectors."),
            *detection_options(0.5, "Detections: a mutant passes when a box of the target's "
                                    "label with at least this IoU survives."),
            opt(["-b", "--batch-size"], type=click.IntRange(min=1), default=None,
                help="Images per inference batch (default: the launcher's)."),
            *metric_options(),
        ]

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.settings = settings(params)

    def explain(self, launcher, image: np.ndarray, progress: ProgressFn | None = None,
                item=None) -> Iterator[Snapshot]:
        from threadpoolctl import threadpool_limits

        # numpy's BLAS threads would fight OpenVINO's for the cores: one thread here.
        with threadpool_limits(limits=1, user_api="blas"):
            yield self._explain(launcher, image, progress, item)

    # ------------------------------------------------------------------
    def _explain(self, launcher, image: np.ndarray, progress: ProgressFn | None,
                 item=None) -> Snapshot:
        from explain_plugin.methods.engine import Evaluator
        from explain_plugin.methods.normalize import normalize_maps
        from explain_plugin.methods.occlusion import Occlusion
        from explain_plugin.methods.targets import parse_targets, resolve
        from explain_plugin.methods.view import view_of

        s, p = self.settings, self.params
        started = time.perf_counter()
        labels = [c.name for c in launcher.categories]
        view = view_of(launcher, image)
        vh, vw = view.hw
        scorer, targets = resolve(launcher, view, parse_targets(p.get("targets"), labels),
                                  conf=p.get("det_conf_thresh") or 0.0,
                                  nms=p.get("nms_iou_thresh") or 0.0,
                                  iou=p.get("iou_thresh") or 0.0)
        if not targets:
            raise NothingToExplain("the model found nothing to explain in the image "
                                   "(no detections above --conf): lower --conf or check the model")
        occlusion = Occlusion.of(view, s["mask_value"], cell=max(vh, vw) / 8)
        ev = Evaluator(launcher, view, scorer, occlusion)
        if p.get("batch_size"):
            ev.batch = int(p["batch_size"])

        probe = _Probe(self, targets, (vh, vw))
        judges = [probe.judge(t) for t in range(len(targets))]
        results, used = self._search(ev, probe, judges, len(targets), (vh, vw), progress)
        notes = [f"{targets[t].name}: nothing to explain: the model gives it with the whole "
                 f"image occluded (--mask-value {s['mask_value']})"
                 for t in range(len(targets)) if probe.blank[t]]
        if all(probe.blank):
            raise NothingToExplain(notes[0] if len(notes) == 1 else
                                   "nothing to explain: the model gives every target with the "
                                   f"whole image occluded (--mask-value {s['mask_value']})")
        live = [t for t in range(len(targets)) if not probe.blank[t]]
        judges = probe.judges
        used = {t: used[t] if t in live else 0 for t in used}
        rmaps = np.zeros((len(targets), vh, vw), np.float64)
        for t in live:
            for r in results[t][: used[t]]:
                rmaps[t] += r.map(vh, vw)
        found = self._extract(ev, judges, live, rmaps)

        stats = []
        for t in range(len(targets)):
            its = results.get(t, [])[: used.get(t, 0)]
            stats.append({
                "iterations": len(its),
                "total_passing": sum(r.passing for r in its),
                "total_failing": sum(r.failing for r in its),
                "max_depth_reached": max((r.depth for r in its), default=0),
                "avg_box_size": float(np.mean([r.avg_box_size for r in its])) if its else 0.0,
                "search_evaluations": sum(r.evaluations for r in its),
            })
        explanations = []
        for t in range(len(targets)):
            f = found.get(t)
            if f is None:
                explanations.append([])
                continue
            if f.note:
                notes.append(f"{targets[t].name}: {f.note}")
            explanations.append(f.masks if f.masks else ([f.mask] if f.mask is not None else []))
        for t, st in enumerate(stats):
            st["explanations"] = len(explanations[t])
            st["explanation_area"] = (round(float(explanations[t][0].mean()), 6)
                                      if explanations[t] else None)
        raw = rmaps.astype(np.float32)
        seconds = time.perf_counter() - started
        metrics = None
        if p.get("metrics"):
            from explain_plugin.methods.metrics import evaluate_maps

            # Rank pixels as the extraction does (responsibility, ties by the blurred map).
            ranked = np.stack([1.0 - ex.ranking(m).reshape(m.shape) / m.size for m in rmaps])
            ranked[[t for t in range(len(targets)) if t not in live]] = 0.0
            metrics = evaluate_maps(ev, ranked.astype(np.float32), targets, item=item,
                                    steps=int(p.get("metric_steps") or 20))
        snap = Snapshot(normalize_maps(raw), targets, ev.counts.get("rex", 0), final=True,
                        converged=bool(p.get("converge")) and any(
                            used.get(t, 0) < s["iters"] for t in live),
                        raw=raw)
        snap.evaluations = dict(ev.counts)
        snap.notes = notes
        snap.metrics = metrics
        summary = {"strategy": s["strategy"], "iterations": max(used.values(), default=0),
                   "evaluations": ev.counts.get("rex", 0), "seconds": round(seconds, 4),
                   "targets": stats}
        snap.extra.update({"responsibility": raw, "explanations": explanations, "rex": summary,
                           "record": {"rex": summary}})
        return snap

    def write_outputs(self, out_dir, stem: str, image: np.ndarray, snap: Snapshot) -> list[str]:
        """ReX's files beside the heatmaps (see ``writers.rex``)."""
        from explain_plugin.writers.rex import write_rex

        return write_rex(out_dir, stem, image, snap)

    def _search(self, ev, probe, judges, count, shape, progress):
        """Every iteration of every target, with the probe in front of them (its answer
        comes first: the engine answers in order), so no round trip waits for it alone;
        a target the probe finds nothing to explain in stops after one round."""
        s, p = self.settings, self.params
        config = SearchConfig(
            tree_depth=int(s["tree_depth"]), min_box_size=int(s["min_box_size"]),
            queue_len=_queue_len(s["queue_len"]),
            search_limit=int(s["search_limit"] or 0) or None,
            distribution=s["distribution"],
            distribution_args=tuple(float(a) for a in s["distribution_args"]))
        iters = int(s["iters"])
        results = {t: [IterationResult() for _ in range(iters)] for t in range(count)}
        planned = iters * count

        def make(t, i):
            seq = np.random.SeedSequence(int(s["seed"]), spawn_key=(t, i))
            gen = iteration(*shape, judges[t], np.random.default_rng(seq), config,
                            results[t][i])
            return _unless(gen, lambda: probe.blank[t])

        def report():
            if progress:
                progress(sum(r.done for rs in results.values() for r in rs), planned)

        if not p.get("converge"):
            producers = [_reporting(make(t, i), report) for t in range(count)
                         for i in range(iters)]
            ev.run([probe.producer()] + producers, purpose="rex")
            return results, {t: iters for t in range(count)}

        ev.run([probe.producer()], purpose="rex")
        live = [t for t in range(count) if not probe.blank[t]]
        watchers = {t: _Convergence(results[t], shape) for t in live}
        groups = []
        for t in live:
            source = (make(t, i) for i in range(iters))
            for _ in range(CONVERGE_WIDTH):
                groups.append(multiplex(source, 1, more=watchers[t].more))
        ev.run([_reporting(g, report) for g in groups], purpose="rex")
        return results, {t: watchers[t].used() if t in watchers else 0 for t in range(count)}

    def _extract(self, ev, judges, live, rmaps) -> dict[int, ex.Found]:
        s = self.settings
        shape = rmaps.shape[1:]
        chunk = max(1, int(s["chunk_size"]))
        radius = float(s["spatial_radius"]) * min(shape) / 224.0
        strategy = s["strategy"]
        found: dict[int, ex.Found] = {}
        producers, multi = [], {}
        for t in live:
            judge = judges[t]
            if s["minimum_confidence_threshold"]:
                judge = Judge(judge.column, judge.score0, judge.label, judge.rank0,
                              max(judge.confidence_filter, float(s["minimum_confidence_threshold"])))
            rmap = rmaps[t]
            f = found[t] = ex.Found()
            if strategy == "global":
                producers.append(ex.prefix_search(ex.ranking(rmap), shape, judge, rmap.size, f,
                                                  resolution=chunk))
            elif strategy == "contrastive":
                producers.append(ex.prefix_search(ex.ranking(rmap), shape, judge, rmap.size, f,
                                                  resolution=chunk, contrastive=True))
            elif strategy == "spatial":
                producers.append(ex.spatial_search(rmap, judge, f, radius=radius,
                                                   eta=float(s["spatial_eta"]), resolution=chunk))
            else:
                parts = [ex.Found() for _ in ex.peaks(rmap, 2 * int(s["multi"]), radius)]
                multi[t] = parts
                producers.append(ex.prefix_search(ex.ranking(rmap), shape, judge, rmap.size, f,
                                                  resolution=chunk))
                for centre, part in zip(ex.peaks(rmap, len(parts), radius), parts):
                    producers.append(ex.spatial_search(
                        rmap, judge, part, centre=centre, radius=radius,
                        eta=float(s["spatial_eta"]), expansions=int(s["no_expansions"]),
                        resolution=chunk))
        ev.run(producers, purpose="rex")
        for t, parts in multi.items():
            masks = [found[t].mask] + [part.mask for part in parts]
            keep = ex.distinct(masks, int(s["multi"]), float(s["permitted_overlap"]))
            found[t].masks = [masks[i] for i in keep]
        for t in live:
            f = found[t]
            if f.mask is None and not f.masks and not f.note:
                f.note = ("no set of pixels is both sufficient and necessary for it"
                          if strategy == "contrastive" else "no explanation found")
        return found


class _Probe:
    """The whole view and the fully occluded view, evaluated once per image: each
    target's reference score and rank (its ``Judge``), and whether it needs any pixel."""

    def __init__(self, method: Rex, targets, shape):
        self.method, self.targets, self.shape = method, targets, shape
        self.judges: list[Judge] | None = None
        self.blank: list[bool] | None = None

    def producer(self):
        answer = yield np.stack([np.ones(self.shape, bool), np.zeros(self.shape, bool)])
        cf = float(self.method.settings["confidence_filter"])
        classes = answer.classes
        self.judges = [
            Judge(t, float(answer.scores[0, t]), target.label,
                  None if classes is None else rank_of(np.asarray(classes[0]), target.label), cf)
            for t, target in enumerate(self.targets)]
        blank = answer.rows(1, 2)
        self.blank = [bool(j(blank)[0]) for j in self.judges]

    def judge(self, t: int):
        def judge(answer):
            if self.judges is None:
                raise RuntimeError("rex: a mutant was answered before the probe")
            return self.judges[t](answer)
        return judge


def _unless(gen, stop):
    """``gen``, closed as soon as ``stop()`` is true after an answer."""
    try:
        masks = next(gen)
        while True:
            answer = yield masks
            if stop():
                gen.close()
                return
            masks = gen.send(answer)
    except StopIteration:
        return


class _Convergence:
    """Iterations of one target, finished in any order, merged in index order: ``more()``
    is False once adding iteration i changed the normalised map by < CONVERGE_TOL for
    two iterations running (so the map never depends on timing)."""

    def __init__(self, results: list[IterationResult], shape):
        self.results, self.shape = results, shape
        self.total = None
        self.merged = 0
        self.calm = 0
        self.stop_at: int | None = None

    def more(self) -> bool:
        while self.stop_at is None and self.merged < len(self.results) \
                and self.results[self.merged].done:
            new = self.results[self.merged].map(*self.shape)
            before = self.total
            self.total = new if before is None else before + new
            self.merged += 1
            if before is not None:
                change = float(np.abs(_unit(self.total) - _unit(before)).mean())
                self.calm = self.calm + 1 if change < CONVERGE_TOL else 0
            if self.calm >= 2 and self.merged >= CONVERGE_MIN_ITERS:
                self.stop_at = self.merged
        return self.stop_at is None

    def used(self) -> int:
        self.more()
        return self.stop_at if self.stop_at is not None else len(self.results)


def _unit(m: np.ndarray) -> np.ndarray:
    top = m.max()
    return m / top if top > 0 else m


def _queue_len(value) -> int | None:
    if value is None or value == "all":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise CliError(f"bad --queue-len '{value}': give a number >= 1 or 'all'")
    return n


def _reporting(gen, report):
    """``gen``, calling ``report()`` after each answer (progress bar)."""
    answer = None
    try:
        masks = next(gen)
        while True:
            answer = yield masks
            masks = gen.send(answer)
            report()
    except StopIteration:
        report()
