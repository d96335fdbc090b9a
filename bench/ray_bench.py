"""Dataset runs over Ray against the local executor, on the same items of a real model.

The dataset and project are dataset_bench.py's (sample photos at several sizes,
EfficientNet-Lite0 from ~/.cache/explain-plugin). Each configuration is one
``datum explain ... -q rise -s M`` command in its own process, over the same N items:

* local: the default executor;
* ray-1, ray-2: ``--executor ray --workers 1|2``, a fresh local Ray instance each
  time (the command starts it: its start-up is part of the command's wall time).

Figures per configuration (medians of --reps): whole-command items/s; loop items/s
(the item loop alone: run.json ``times.seconds`` for local; for Ray the dispatch
loop after every actor has loaded its model); Ray start-up (ray.init plus the actors
compiling the model); and the overhead Ray adds per item with one worker, two ways:
the driver's own time per item (the dispatch loop minus its waits on the actors,
over N: reading the image, the hand-over, taking the answer; what limits how many
workers one driver feeds), and (ray-1 loop - local loop) / N, both executors keeping
two items in flight on one model. With --costs-out, the per-item seconds measured
inside the actors and the driver's time per item are saved for bench/scaling_sim.py.

    .venv/bin/python bench/ray_bench.py                # 40 items x 100 masks, 3 reps
    .venv/bin/python bench/ray_bench.py --quick        # 12 items x 30 masks, 1 rep
    options: --items 40 --masks 100 --reps 3 --costs-out bench/item_costs.json

The machine has 2 cores and is shared with other work: compare ratios, not seconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import run_worker  # noqa: E402

CONFIGS = {"local": [], "ray-1": ["--executor", "ray", "--workers", "1"],
           "ray-2": ["--executor", "ray", "--workers", "2"]}


def worker(args) -> None:
    """One command in this process; prints one JSON line."""
    from explain_plugin.cli import main

    captured = {}
    if args.config != "local":
        from explain_plugin.executors import ray_executor

        real_run = ray_executor.RayPipeline.run

        def run(self, *a, **kw):
            captured["pipe"] = self
            return real_run(self, *a, **kw)

        ray_executor.RayPipeline.run = run
    name = f"{args.config}-{time.time_ns()}"
    start = time.perf_counter()
    code = main(["explain", "-p", str(Path(args.root) / "proj"), "-m", "effnet", "-n", name,
                 "--limit", str(args.n), "-q", *CONFIGS[args.config],
                 "rise", "-s", str(args.masks)])
    wall = time.perf_counter() - start
    if code:
        raise SystemExit(f"run failed ({code})")
    run = json.loads((Path(args.root) / "proj" / "explanations" / name / "run.json").read_text())
    out = {"wall": wall, "loop": run["times"]["seconds"], "n": args.n}
    pipe = captured.get("pipe")
    if pipe is not None:
        out.update(loop=pipe.seconds["dispatch"], startup=pipe.seconds["startup"],
                   driver=pipe.seconds["dispatch"] - pipe.seconds["waiting"],
                   inside=sum(pipe.timings), timings=pipe.timings)
    print(json.dumps(out))


def spawn(root: Path, config: str, n: int, masks: int) -> dict:
    return run_worker(__file__, "--root", root, "--config", config, "--n", n, "--masks", masks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--masks", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--costs-out", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.items, args.masks, args.reps = 12, 30, 1
    from dataset_bench import make_project

    results: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        root = Path(tmp)
        make_project(root, args.items)
        for rep in range(args.reps):
            for config in CONFIGS:
                r = spawn(root, config, args.items, args.masks)
                results[config].append(r)
                extra = (f", start-up {r['startup']:.1f} s" if "startup" in r else "")
                print(f"rep {rep} {config}: {args.items / r['wall']:.2f} items/s whole, "
                      f"{args.items / r['loop']:.2f} items/s loop{extra}", flush=True)
    n = args.items
    med = {c: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "timings"}
           for c, rs in results.items()}
    local = med["local"]
    print(f"\nmedians over {args.reps} rep(s), {n} items x {args.masks} masks "
          "(2-core machine, shared and loaded: compare ratios):")
    for c, m in med.items():
        line = (f"  {c:6s} whole {n / m['wall']:.2f} items/s ({m['wall'] / local['wall']:.2f}x "
                f"local's time), loop {n / m['loop']:.2f} items/s "
                f"({m['loop'] / local['loop']:.2f}x local's loop)")
        if "startup" in m:
            line += f", Ray start-up {m['startup']:.1f} s"
        print(line)
    one = med["ray-1"]
    driver = one["driver"] / n
    print(f"  Ray overhead per item, 1 worker: the driver's own work {driver * 1e3:.1f} ms/item "
          f"({driver / (one['inside'] / n):.1%} of an item's seconds in the actor); "
          f"vs the local loop {(one['loop'] - local['loop']) / n * 1e3:+.1f} ms/item")
    print(f"  2 workers vs 1: loop speed-up {one['loop'] / med['ray-2']['loop']:.2f}x "
          "(2 cores: each actor's OpenVINO competes for both)")
    print(f"  driver's own work per item with 2 workers: "
          f"{med['ray-2']['driver'] / n * 1e3:.1f} ms")
    if args.costs_out:
        costs = [t for r in results["ray-1"] for t in r["timings"]]
        Path(args.costs_out).write_text(json.dumps({
            "source": f"bench/ray_bench.py, ray-1, {n} items x {args.masks} masks x "
                      f"{args.reps} reps, EfficientNet-Lite0 RISE, 2-core shared machine",
            "driver_s": driver, "seconds": [round(t, 5) for t in costs]}, indent=1) + "\n")
        print(f"  per-item costs ({len(costs)}) saved to {args.costs_out}")


if __name__ == "__main__":
    main()
