"""The items of a dataset run, from the dataset to their shards in the run store.

A loader thread reads the next images (and their ground truth); explain threads
each drive one item through the method (two at once on launchers that take
concurrent submits); a writer thread writes each item's files and, last, its shard.
``executors`` reuse ``ItemPipeline._explain`` and ``_write`` per item.
"""
from __future__ import annotations

import contextvars
import queue
import sys
import threading
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from explain_plugin.errors import CliError
from explain_plugin.selection import SelectionStats, item_key, select_items

if TYPE_CHECKING:
    from explain_plugin.dataset_run import RunRequest

_DONE = object()


class _Stopped(Exception):
    """Raised inside a method (through its progress callback) when the run stops."""


class ItemPipeline:
    """Loader thread -> explain threads -> writer thread, one run-level bar.

    With a launcher that takes ``concurrent_submits``, two items share the compiled
    model at once: while one waits on its latency-bound steps (the clean pass, a
    closed-loop search, the metrics, the last batches), the other's masks keep the
    device's requests full.
    """

    def __init__(self, req: RunRequest, launcher, writer, spec, dataset_labels, labels):
        self.req, self.launcher, self.writer = req, launcher, writer
        self.in_flight = 2 if getattr(launcher, "concurrent_submits", False) else 1
        self.spec, self.dataset_labels, self.labels = spec, dataset_labels, labels
        self.unreadable: list[str] = []  # why each skipped item's image cannot be read
        self.written = 0  # items whose shard is on disk (this process)
        self.stop = threading.Event()

    def run(self, dataset, done: set, total: int) -> int:
        loaded: queue.Queue = queue.Queue(maxsize=self.in_flight)
        written: queue.Queue = queue.Queue(maxsize=self.in_flight)
        stop, errors = self.stop, []
        bar = progress_bar(total, len(done), self.req.quiet)
        lock = threading.Lock()
        explained = [0]

        def bar_update():
            if bar is not None:
                with lock:
                    bar.update(1)

        # ``stop``: end now (Ctrl-C, a failed write; methods stop at their next progress
        # call). ``draining``: an item failed; the items in progress finish and are saved.
        draining = threading.Event()

        def guarded(body, on_error):
            def run():
                try:
                    body()
                except _Stopped:
                    pass
                except BaseException as e:  # noqa: BLE001 - handed to the main thread
                    errors.append(e)
                    on_error.set()
            return run

        def load():
            try:
                for entry in self._pending(dataset, done, bar_update):
                    if stop.is_set() or draining.is_set():
                        return
                    if not _put(loaded, entry, stop):
                        return
            finally:
                for _ in range(self.in_flight):
                    _put(loaded, _DONE, stop)

        def explain():
            while not (stop.is_set() or draining.is_set()):
                try:
                    entry = loaded.get(timeout=0.1)
                except queue.Empty:
                    continue
                if entry is _DONE:
                    return
                key, k, image, gt = entry
                result = self._explain(key, image, gt, bar)
                if not _put(written, (k, key, image, gt, result), stop):
                    return
                with lock:
                    explained[0] += 1

        def write():
            while True:
                job = written.get()
                if job is _DONE:
                    return
                try:
                    self._write(*job)
                    self.written += 1
                finally:
                    bar_update()

        # Datumaro keeps its image backend in a ContextVar: threads run in a copy of ours.
        def thread(body, name, on_error):
            t = threading.Thread(target=contextvars.copy_context().run,
                                 args=(guarded(body, on_error),), name=name, daemon=True)
            t.start()
            return t

        loader = thread(load, "explain-load", draining)
        workers = [thread(explain, f"explain-{i}", draining) for i in range(self.in_flight)]
        saver = thread(write, "explain-write", stop)
        try:
            for t in workers:
                while t.is_alive():
                    t.join(0.2)  # in slices: Ctrl-C reaches this thread at once
        except BaseException:
            stop.set()  # the methods stop at their next progress call
            for t in workers:
                t.join()
            raise
        finally:
            while saver.is_alive():  # what the explain threads finished is written first
                try:
                    written.put(_DONE, timeout=0.1)
                    break
                except queue.Full:
                    pass
            saver.join()
            stop.set()
            loader.join(timeout=5)
            if bar is not None:
                bar.close()
        if errors:
            raise errors[0]
        return explained[0]

    def _pending(self, dataset, done: set, on_skip):
        """``(key, (subset, id), image, gt)`` of each selected item not in ``done``; an
        unreadable image is counted in ``unreadable`` and reported by ``on_skip()``."""
        from explain_plugin.item_targets import item_ground_truth
        from explain_plugin.targets import item_image

        for item in select_items(dataset, self.req.selection, SelectionStats()):
            k = (item.subset or "default", item.id)
            if k in done:
                continue
            gt = item_ground_truth(item, self.dataset_labels)
            try:
                image = item_image(item)
            except CliError as e:  # a corrupt file: skip and count, go on
                self.unreadable.append(str(e))
                on_skip()
                continue
            yield item_key(item), k, image, gt

    def _explain(self, key: str, image: np.ndarray, gt, bar) -> dict:
        from explain_plugin.api import run_method
        from explain_plugin.item_targets import method_targets_param, resolve_item_targets
        from explain_plugin.methods.base import ItemInfo, NothingToExplain

        params = dict(self.req.method_params)
        roles: dict[int, str] = {}
        missing: list[str] = []
        if self.spec.per_item:
            resolved = resolve_item_targets(self.spec, gt, self.labels,
                                            lambda: _class_scores(self.launcher, image,
                                                                  len(self.labels)))
            roles, missing = resolved.roles, resolved.missing_gt
            if not resolved.class_ids:
                return {"note": "no ground-truth label the model knows"
                        + (f" (unknown: {', '.join(missing)})" if missing else "")}
            params["targets"] = method_targets_param(resolved.class_ids)
        elif "targets" in params:
            params["targets"] = self.spec.pred_spec or None
        method = self.req.method_cls(**params)

        def progress(n: int, planned: int) -> None:
            if self.stop.is_set():
                raise _Stopped
            if bar is not None:
                bar.set_postfix_str(f"{key} {n}/{planned}", refresh=False)

        try:
            result = run_method(method, self.launcher, image, progress=progress,
                                item=ItemInfo(key, list(gt.boxes), list(gt.names)))
        except NothingToExplain as e:
            return {"note": str(e)}
        return {"explanation": result, "roles": roles, "missing": missing}

    def _write(self, k, key: str, image: np.ndarray, gt, result: dict) -> None:
        from explain_plugin.run_metrics import target_metrics
        from explain_plugin.store.item_writer import (
            TOP_REGION, _resize_mask, store_size, top_region,
        )
        from explain_plugin.store.layout import item_dir, safe_part, subset_dir
        from explain_plugin.writers.images import upsample

        subset, item_id = k
        info: dict[str, Any] = {"gt": gt.names}
        explanation = result.get("explanation")
        if explanation is None:
            info["record"] = {"files": [], "targets": [], "note": result.get("note")}
            self.writer.write(key=key, subset=subset, item_id=item_id, image=image,
                              maps=np.zeros((0, 1, 1), np.float32), targets=[], regions=[],
                              info={**info, "note": result.get("note")})
            return
        snap = explanation.snapshot
        roles = result["roles"]
        h0, w0 = image.shape[:2]
        h, w = store_size(h0, w0)
        maps = upsample(snap.maps, h, w) if len(snap.maps) else snap.maps
        method_regions = _method_regions(snap)
        core_metrics = snap.metrics or []
        targets, regions = [], []
        for j, (t, sal) in enumerate(zip(snap.targets, maps)):
            region = None
            if method_regions is not None and method_regions[j] is not None:
                region = _resize_mask(method_regions[j], h, w)
            shown = region if region is not None else top_region(sal, sample=snap.maps[j])
            boxes = [b for name, b in gt.boxes if name == t.name]
            core = core_metrics[j] if j < len(core_metrics) else None
            targets.append({"label": t.label, "name": t.name, "score": t.score, "box": t.box,
                            "role": roles.get(t.label, "pred"),
                            "region_kind": "method" if region is not None
                            else f"top{int(TOP_REGION * 100)}",
                            "metrics": target_metrics(sal, shown, boxes, (h0, w0), core)})
            regions.append(shown)
        # The method's own files (e.g. ReX's responsibility and explanation masks).
        rel = f"outputs/{subset_dir(subset)}/{item_dir(item_id)}"
        own = explanation.method.write_outputs(self.writer.layout.root / rel,
                                               safe_part(item_id.rsplit("/", 1)[-1]),
                                               image, snap)
        record = explanation.record([f"{rel}/{f}" for f in own])
        for entry, t in zip(record["targets"], targets):
            entry["role"] = t["role"]
            entry["metrics"] = t["metrics"]
        pred = [t for t in targets if "pred" in t["role"]]
        info["pred"] = max(pred, key=lambda t: t["score"])["name"] if pred else None
        info["correct"] = (info["pred"] in gt.names) if (gt.names and info["pred"]) else None
        info["evaluations"] = int(snap.masks_used)
        info["seconds"] = round(explanation.seconds, 4)
        for note in snap.notes:
            click.echo(f"{key}: {note}", err=True)
        if result["missing"]:
            info["note"] = f"GT labels unknown to the model: {', '.join(result['missing'])}"
        info["record"] = record
        self.writer.write(key=key, subset=subset, item_id=item_id, image=image, maps=maps,
                          targets=targets, regions=regions, info=info)


def _method_regions(snap) -> list | None:
    """Per target, the method's own explanation region (ReX: the union of its
    explanations), or None where the method has none."""
    extra = snap.extra if isinstance(snap.extra, dict) else {}
    if extra.get("regions") is not None:
        return list(extra["regions"])
    found = extra.get("explanations")
    if found is None:
        return None
    return [np.logical_or.reduce([np.asarray(m, bool) for m in masks]) if masks else None
            for masks in found]


def _class_scores(launcher, image: np.ndarray, num_classes: int) -> np.ndarray:
    """The clean image's score per class: class scores, or each class's best box."""
    from datumaro.components.annotation import Bbox

    from explain_plugin.launchers.predictions import (
        detections_from_annotations, scores_from_annotations,
    )

    anns = launcher.predict([image])[0]
    if any(isinstance(a, Bbox) for a in anns):
        det = detections_from_annotations(anns, num_classes)
        scores = np.full(num_classes, -np.inf, dtype=np.float32)
        np.maximum.at(scores, det.labels.astype(np.int64), det.scores.astype(np.float32))
        return scores
    return scores_from_annotations([anns], num_classes)[0]


def _put(q: queue.Queue, value, stop: threading.Event) -> bool:
    """Put ``value``, waiting for room; False when ``stop`` is set first."""
    while True:
        try:
            q.put(value, timeout=0.1)
            return True
        except queue.Full:
            if stop.is_set():
                return False


def progress_bar(total: int, initial: int, quiet: bool):
    """The run-level bar (items done/total, items/s, ETA), or None when quiet or not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="item", desc="explain", dynamic_ncols=True,
                smoothing=0.1)
