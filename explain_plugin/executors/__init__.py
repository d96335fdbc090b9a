"""Where a dataset run's items are explained: this process (the default) or a Ray cluster.

An executor is chosen with ``datum explain --executor ray [--address A] [--workers N]``.
The run loop (dataset_run.py) asks ``ExecutorSpec.pipeline(...)`` for an object with
``run(dataset, done, total) -> explained`` and ``unreadable``, like its own local
pipeline; nothing here imports Ray until a Ray run starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import click

from explain_plugin.errors import CliError

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorSpec:
    """How to run a dataset's items elsewhere than in this process."""

    kind: str
    project_dir: str  # absolute: workers open the project (and its model) themselves
    address: str | None = None  # None: start a local Ray instance; "auto": join a running one
    workers: int | None = None  # None: as many as the cluster's CPUs allow
    cpus_per_worker: float = 1.0  # Ray CPUs each actor reserves

    def pipeline(self, req, launcher, writer, spec, dataset_labels, labels):
        if self.kind == "ray":
            from explain_plugin.executors.ray_executor import RayPipeline

            return RayPipeline(self, req, writer, spec, dataset_labels, labels)
        raise CliError(f"unknown executor '{self.kind}' (known: {', '.join(EXECUTORS)})")


def executor_spec(kind: str | None, address: str | None, workers: int | None,
                  project_dir: str, cpus_per_worker: float | None = None
                  ) -> ExecutorSpec | None:
    """The spec for ``--executor/--address/--workers/--cpus-per-worker`` (None: run in
    this process)."""
    if kind in (None, "local"):
        if address is not None or cpus_per_worker is not None:
            raise CliError(f"--{'address' if address is not None else 'cpus-per-worker'} "
                           "needs --executor ray")
        return None
    return ExecutorSpec(kind, project_dir, address, workers, cpus_per_worker or 1.0)


def executor_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--executor``, ``--address``, ``--workers``, ``--cpus-per-worker`` for ``explain``."""
    f = click.option("--cpus-per-worker", "cpus_per_worker",
                     type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Dataset runs with --executor ray: CPUs each actor reserves "
                          "(default 1; a node's core count: one actor, one model per node).")(f)
    f = click.option("--workers", "workers", type=click.IntRange(min=1), default=None,
                     help="Dataset runs with --executor ray: worker actors (default: the "
                          "cluster's CPUs / --cpus-per-worker).")(f)
    f = click.option("--address", "address", default=None, metavar="ADDR|auto",
                     help="Dataset runs with --executor ray: the cluster to join "
                          "(default: start a local one; 'auto': the running one).")(f)
    f = click.option("--executor", "executor", type=click.Choice(EXECUTORS), default=None,
                     help="Dataset runs: where items are explained (ray: over a Ray "
                          "cluster; needs pip install explain-plugin[ray]).")(f)
    return f
