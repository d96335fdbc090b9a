"""A dataset run's items explained by Ray actors, one compiled model per actor.

Dispatch is dynamic: the driver (this process) reads the next unfinished item and
hands it to whichever actor has room; each actor holds only the items it is
working on (two at once on one model, like a local run, when the launcher allows),
so a slow item or a slow node never holds items that others could take, and an
actor that dies loses only its items in progress. They go back to the front of the
queue for other actors (a replacement actor is started in its place); an item
that kills ``MAX_ATTEMPTS`` workers is not explained and named at the end (the run
ends incomplete; a rerun retries it). Once no item is left to hand out, actors with
room also run copies of items that run far longer than the median (a hung or slow
node), and the first copy to finish counts: the run never waits on a straggler.

Actors open the project by path, load its model once and run the local run's own
per-item code (``item_pipeline.ItemPipeline._explain`` and ``_write``). They write each
item's files straight into the run directory when they can see it (a shared
filesystem); otherwise they send the item's results back and the driver writes
them. Every file is written to a temp file and renamed, the shard last, and two
copies of an item write the same maps (fixed seeds; only their timings differ), so
a copy that is killed or finishes second changes nothing. A finished item is its
shard, which is all a resumed run checks, whichever worker wrote it.
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import replace
from pathlib import Path

from explain_plugin.errors import CliError

MAX_ATTEMPTS = 3  # workers an item may take down before it is skipped
# Once no item is left to hand out, an idle actor also runs an item that has been
# running for STRAGGLER_AFTER x the median item (at least STRAGGLER_MIN_S); the
# first copy to finish counts, the other is killed at the end of the run.
STRAGGLER_AFTER = 3.0
STRAGGLER_MIN_S = 1.0
STRAGGLER_CHECK_S = 0.5  # how often idle actors look for a straggler
INSTALL_HINT = "pip install explain-plugin[ray]"


def import_ray():
    """Ray, or a one-line error saying how to get it."""
    try:
        import ray
    except ImportError:
        raise CliError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}"
                       ) from None
    return ray


class ItemWorker:
    """One Ray actor: the project's model compiled once, then items, explained and
    written by the local run's own per-item code (``item_pipeline.ItemPipeline``). Like a
    local run it takes ``in_flight`` items at once (two when the launcher takes
    concurrent submits: one item's latency-bound steps overlap the other's masks)."""

    def __init__(self, req, project_dir: str, run_root: str, digest: str, spec,
                 dataset_labels, labels):
        from threadpoolctl import threadpool_limits

        from explain_plugin.item_pipeline import ItemPipeline
        from explain_plugin.models import load_launcher
        from explain_plugin.project import Project
        from explain_plugin.store.item_writer import ItemWriter
        from explain_plugin.store.layout import RunLayout

        # numpy's BLAS threads would fight OpenVINO's for this actor's cores.
        self._blas = threadpool_limits(limits=1, user_api="blas")
        layout = RunLayout(Path(run_root))
        self.direct = _sees_run(layout, digest)
        writer = ItemWriter(layout, req.method_cls.name, digest) if self.direct else None
        self.launcher = load_launcher(Project.open(project_dir), req.model_name)
        self.pipeline = ItemPipeline(req, self.launcher, writer, spec, dataset_labels, labels)

    def ready(self) -> dict:
        return {"pid": os.getpid(), "direct": self.direct, "in_flight": self.pipeline.in_flight}

    def explain(self, key: str, k: tuple[str, str], image, gt) -> dict:
        """Explain one item and write it when this process sees the run directory;
        otherwise return the result for the driver to write."""
        started = time.perf_counter()
        result = self.pipeline._explain(key, image, gt, None)
        if self.direct:
            self.pipeline._write(k, key, image, gt, result)
            result = None
        elif result.get("explanation") is not None:  # the driver has the image already
            result = {**result, "explanation": replace(result["explanation"], image=None)}
        return {"pid": os.getpid(), "seconds": time.perf_counter() - started,
                "result": result}


def _sees_run(layout, digest: str) -> bool:
    """Whether this process sees the driver's run directory (its run.json, same digest)."""
    try:
        return json.loads(layout.manifest.read_text(encoding="utf-8")).get("digest") == digest
    except (OSError, ValueError):
        return False


class RayPipeline:
    """The run's items over Ray actors; the interface of the local ItemPipeline
    (``run``, ``unreadable``, ``written``), whose item reading and writing it reuses."""

    def __init__(self, executor, req, writer, spec, dataset_labels, labels):
        from explain_plugin.item_pipeline import ItemPipeline

        self.executor, self.req, self.writer = executor, req, writer
        self.spec, self.dataset_labels, self.labels = spec, dataset_labels, labels
        # This process's half of the item code: it reads the items and writes what
        # actors that cannot see the run directory send back (no model needed).
        self.local = ItemPipeline(req, None, writer, spec, dataset_labels, labels)
        # "key: reason" per item not explained: unreadable images, and items that took
        # down MAX_ATTEMPTS workers (the run then ends "incomplete"; a rerun retries them)
        self.unreadable: list[str] = self.local.unreadable
        self.written = 0  # items whose shard is on disk (written by any worker or here)
        self.lost_workers = 0
        self.timings: list[float] = []  # seconds per item inside the actors
        # actors ready; the item loop; the part of it the driver spent waiting on actors
        # (the rest is its own work per item: reading images, handing over, answers)
        self.seconds = {"startup": 0.0, "dispatch": 0.0, "waiting": 0.0}

    def run(self, dataset, done: set, total: int) -> int:
        import click

        ray = import_ray()
        self._t0 = time.perf_counter()
        owned = not ray.is_initialized()
        if owned:
            _init(ray, self.executor.address)
        try:
            return self._run(ray, dataset, done, total)
        finally:
            if owned:
                ray.shutdown()
            if self.lost_workers:
                click.echo(f"{self.lost_workers} worker(s) lost; their items were retried",
                           err=True)

    def _run(self, ray, dataset, done: set, total: int) -> int:
        from explain_plugin.item_pipeline import progress_bar

        todo = total - len(done)
        if todo <= 0:
            return 0
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        per = self.executor.cpus_per_worker
        n = min(todo, self.executor.workers or max(1, int(cpus // per)))
        # The CPUs asked for, or an equal share when they are more than the cluster has.
        actor_cls = ray.remote(num_cpus=min(per, cpus / n), max_restarts=0,
                               max_concurrency=2)(ItemWorker)
        root = str(Path(self.writer.layout.root).resolve())
        args = (self.req, self.executor.project_dir, root, self.writer.digest, self.spec,
                self.dataset_labels, self.labels)

        actors = [actor_cls.remote(*args) for _ in range(n)]
        generation = [0] * n  # bumped when slot k's actor is replaced
        bar = None
        started = time.perf_counter()
        explained = 0
        inflight: dict = {}  # ObjectRef -> (actor slot, generation, job, dispatched at)
        try:
            per_actor = self._check_started(ray, actors)
            started = time.perf_counter()
            self.seconds["startup"] = started - self._t0
            budget = n * MAX_ATTEMPTS  # replacement actors, all told
            bar = progress_bar(total, len(done), self.req.quiet)

            def skipped() -> None:
                if bar is not None:
                    bar.update(1)

            source = ({"entry": entry, "tries": 0, "copies": 0, "done": False}
                      for entry in self.local._pending(dataset, done, skipped))
            retry: deque = deque()  # a dead worker's items, before any new one
            free = deque(slot for _ in range(per_actor) for slot in range(n))
            exhausted = False
            failure = None  # an item's error: the items in progress finish, then it is raised

            def send(slot: int, job: dict) -> None:
                free.remove(slot)
                job["copies"] += 1
                ref = actors[slot].explain.remote(*job["entry"])
                inflight[ref] = (slot, generation[slot], job, time.perf_counter())

            while True:
                while free and (retry or not exhausted):
                    job = retry.popleft() if retry else next(source, None)
                    if job is None:
                        exhausted = True
                        break
                    send(free[0], job)
                if exhausted and not retry and failure is None:  # copies of slow items
                    for slot in dict.fromkeys(free):
                        job = self._straggler(inflight, slot)
                        if job is not None:
                            send(slot, job)
                if not any(not job["done"] for _, _, job, _ in inflight.values()):
                    if failure is not None:
                        _reraise(failure)
                    break  # copies still running are killed below
                waited = time.perf_counter()
                ready, _ = ray.wait(list(inflight), num_returns=1,
                                    timeout=STRAGGLER_CHECK_S if exhausted and free else None)
                self.seconds["waiting"] += time.perf_counter() - waited
                for ref in ready:
                    slot, gen, job, _ = inflight.pop(ref)
                    job["copies"] -= 1
                    try:
                        out = ray.get(ref)
                    except ray.exceptions.RayActorError:
                        if gen == generation[slot]:  # first news of this actor's death
                            self.lost_workers += 1
                            if budget <= 0:
                                raise CliError(f"{self.lost_workers} Ray workers died; stopping"
                                               " (see the Ray logs, e.g. "
                                               "/tmp/ray/session_latest)") from None
                            budget -= 1
                            ray.kill(actors[slot])  # unreachable but alive: no late writes
                            actors[slot] = actor_cls.remote(*args)
                            generation[slot] += 1
                            free.extend([slot] * per_actor)
                        if job["done"] or job["copies"]:
                            continue  # its other copy carries the item
                        if failure is not None:  # the run is stopping: no retries
                            job["done"] = True
                            continue
                        job["tries"] += 1
                        if job["tries"] >= MAX_ATTEMPTS:
                            job["done"] = True
                            self.unreadable.append(
                                f"{job['entry'][0]}: it took down {MAX_ATTEMPTS} Ray workers "
                                "(see the Ray logs, e.g. /tmp/ray/session_latest/logs)")
                            skipped()
                        else:
                            retry.append(job)
                        continue
                    except ray.exceptions.RayTaskError as e:
                        job["done"] = True
                        if failure is None:  # as locally: no new items, the others finish
                            failure, exhausted = e, True
                            retry.clear()
                        continue
                    if gen == generation[slot]:
                        free.append(slot)
                    if job["done"]:
                        continue  # the other copy was first (same seed: the same maps)
                    job["done"] = True
                    if out["result"] is not None:  # the actor could not see the run dir
                        key, k, image, gt = job["entry"]
                        self.local._write(k, key, image, gt, out["result"])
                    self.timings.append(out["seconds"])
                    explained += 1
                    self.written += 1
                    if bar is not None:
                        bar.update(1)
        finally:
            self.seconds["dispatch"] = time.perf_counter() - started
            for actor in actors:  # also ends the items still in flight
                ray.kill(actor)
            if inflight:  # killed mid-item: once they are gone, their temp files go too
                from explain_plugin.run_lock import RunLock

                ray.wait(list(inflight), num_returns=len(inflight), timeout=10)
                RunLock(Path(root)).remove_stale_temps()
            if bar is not None:
                bar.close()
        return explained

    def _straggler(self, inflight: dict, slot: int) -> dict | None:
        """For an idle actor (``slot``): the longest-running item elsewhere with one copy,
        past ``STRAGGLER_AFTER`` x the median item (and ``STRAGGLER_MIN_S``)."""
        if len(self.timings) < 3:
            return None
        import statistics

        limit = max(STRAGGLER_MIN_S, STRAGGLER_AFTER * statistics.median(self.timings))
        now = time.perf_counter()
        slow = [(t0, job) for on, _, job, t0 in inflight.values()
                if on != slot and not job["done"] and job["copies"] == 1 and now - t0 > limit]
        return min(slow, key=lambda s: s[0])[1] if slow else None

    def _check_started(self, ray, actors: list) -> int:
        """Every actor loaded its model (a bad model is one error, not n restarts);
        returns how many items each takes at once."""
        try:
            return min(r["in_flight"] for r in ray.get([a.ready.remote() for a in actors]))
        except ray.exceptions.RayActorError as e:
            # The creation task's traceback comes as text; its last line is the error.
            last = [line for line in str(e).splitlines() if line.strip()][-1:] or [""]
            prefix = f"{CliError.__module__}.{CliError.__name__}: "
            if last[0].startswith(prefix):
                raise CliError(last[0][len(prefix):]) from None
            raise CliError(f"Ray workers could not start: {last[0].strip()}") from None
        except ray.exceptions.RayTaskError as e:
            _reraise(e)


def _init(ray, address: str | None) -> None:
    import logging

    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR,
                 configure_logging=True)
    except ConnectionError as e:
        raise CliError(f"cannot join the Ray cluster at '{address}': {_first_line(str(e))} "
                       "(start one with 'ray start --head', or omit --address)") from None


def _reraise(error) -> None:
    cause = getattr(error, "cause", None)
    if isinstance(cause, CliError):
        raise CliError(str(cause)) from None
    if isinstance(cause, BaseException):
        raise cause
    raise error


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else text
