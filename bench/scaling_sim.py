"""A discrete-event simulation of the Ray executor's dispatch at cluster scale.

It replays the policy of explain_plugin/executors/ray_executor.py: one driver
that, for every finished item, spends ``--driver-ms`` (read the next image, hand
it over, take the answer) and gives the worker its next item; each worker holds
one item at a time (a worker here is one item slot: an actor taking two items at
once is two workers, whose items take the seconds measured with two at once); once no item is left, idle workers run copies of items
running for over 3x the median item (the first copy counts). Against it: the
same without copies, and fixed shards (N / W items per worker, decided up front).

Per-item costs are drawn (bootstrap) from seconds measured inside the actors by
``bench/ray_bench.py --costs-out bench/item_costs.json`` (EfficientNet-Lite0 RISE
on this 2-core machine), times ``--cost-scale``. The cluster is not uniform:
``--slow-frac`` of the workers run ``--slow-factor`` times slower (old nodes,
noisy neighbours), and workers die at random (``--mtbf-h`` hours mean time
between failures, each): a dead worker loses its in-flight item, which goes back
to the queue, and a replacement joins after ``--restart-s`` (actor start + model
compile). Fixed shards lose nothing on a failure but wait for the replacement.
``--hang-frac`` of the items hang ``--hang-h`` hours on their first attempt.

    .venv/bin/python bench/scaling_sim.py                      # 10^6 items, 100 workers
    .venv/bin/python bench/scaling_sim.py --items 100000 --workers 1000 --driver-ms 2

Prints, per policy: makespan, efficiency (ideal makespan = total work / W over the
makespan), the tail (last 1% of items), items retried, tail copies, driver utilisation.
"""
from __future__ import annotations

import argparse
import heapq
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def load_costs(path: Path) -> tuple[np.ndarray, float | None, str]:
    if path.is_file():
        data = json.loads(path.read_text())
        driver = data.get("driver_s", data.get("actor_idle_s"))
        return np.asarray(data["seconds"], float), driver, data["source"]
    # No measurement at hand: a log-normal around 1 s (median), 20% spread.
    rng = np.random.default_rng(0)
    return rng.lognormal(0.0, 0.2, 1000), None, "log-normal stand-in (no measured costs)"


def worker_speed(rng, workers: int, slow_frac: float, slow_factor: float) -> np.ndarray:
    slow = np.zeros(workers, bool)
    slow[rng.permutation(workers)[: int(round(slow_frac * workers))]] = True
    return np.where(slow, slow_factor, 1.0)


def dynamic(costs, speed, driver_s, mtbf_s, restart_s, rng, hang_s=None, copies=True,
            after=3.0, min_s=1.0) -> dict:
    """The executor's policy: one item per worker, the next one when it answers; once
    the queue is empty, an idle worker also runs a copy of an item that has been
    running for ``after`` x the median item (at least ``min_s``), and the first copy
    to finish counts. ``hang_s[i]``: extra seconds item i's first attempt takes."""
    n, w = len(costs), len(speed)
    events: list = []  # (time, kind, worker, item, generation)
    gen = np.zeros(w, int)
    queue_head = 0
    retry: list[int] = []
    idle: list[int] = []
    driver_free = 0.0
    driver_busy = 0.0
    finished, retried, copied, done_times = 0, 0, 0, np.empty(n)
    done = np.zeros(n, bool)
    running = np.zeros(n, int)  # copies of each item in flight
    attempts = np.zeros(n, int)
    holding: dict[int, tuple[int, float]] = {}  # worker -> (item, started)
    limit = max(min_s, after * float(np.median(costs)))
    life = rng.exponential(mtbf_s, w) if mtbf_s > 0 else np.full(w, np.inf)

    def straggler(t: float) -> tuple[int | None, float | None]:
        """The longest-running single-copy item past the limit, or when one will be."""
        best, first = None, None
        for item, started in holding.values():
            if done[item] or running[item] != 1:
                continue
            if t - started > limit and (best is None or started < best[1]):
                best = (item, started)
            elif t - started <= limit:
                first = started + limit if first is None else min(first, started + limit)
        return (best[0] if best else None), first

    def dispatch(t: float, wk: int) -> None:
        nonlocal queue_head, driver_free, driver_busy, copied
        if retry:
            item = retry.pop()
        elif queue_head < n:
            item, queue_head = queue_head, queue_head + 1
        else:
            item, later = straggler(t) if copies else (None, None)
            if item is None:
                if later is not None:  # look again when the next item gets slow
                    heapq.heappush(events, (later + 1e-6, 3, wk, -1, gen[wk]))
                else:
                    idle.append(wk)
                return
            copied += 1
        start = max(t, driver_free)  # the driver hands items over one at a time
        driver_free = start + driver_s
        driver_busy += driver_s
        cost = costs[item] * speed[wk]
        if hang_s is not None and attempts[item] == 0:
            cost += hang_s[item]
        attempts[item] += 1
        running[item] += 1
        holding[wk] = (item, start)
        end = driver_free + cost
        if end >= life[wk]:  # the worker dies holding this item
            heapq.heappush(events, (max(life[wk], start), 1, wk, item, gen[wk]))
        else:
            heapq.heappush(events, (end, 0, wk, item, gen[wk]))

    for wk in range(w):
        dispatch(0.0, wk)
    while events and finished < n:
        t, kind, wk, item, g = heapq.heappop(events)
        if g != gen[wk]:
            continue
        if kind == 0:
            running[item] -= 1
            del holding[wk]
            if not done[item]:  # else the other copy was first
                done[item] = True
                done_times[finished] = t
                finished += 1
            dispatch(t, wk)
        elif kind == 1:  # death: the item goes back; a replacement starts
            running[item] -= 1
            del holding[wk]
            if not done[item] and not running[item]:
                retried += 1
                retry.append(item)
            gen[wk] += 1
            life[wk] = t + restart_s + (rng.exponential(mtbf_s) if mtbf_s > 0 else np.inf)
            heapq.heappush(events, (t + restart_s, 2, wk, -1, gen[wk]))
            if idle and retry:  # an idle worker (the queue ran dry) takes the retried item now
                dispatch(t, idle.pop())
        else:  # the replacement is up, or an idle worker looks for a straggler again
            dispatch(t, wk)
    done_times = np.sort(done_times[:finished])
    return {"makespan": done_times[-1], "p99": done_times[int(0.99 * n) - 1],
            "retried": retried, "copied": copied, "driver_util": driver_busy / done_times[-1]}


def static(costs, speed, mtbf_s, restart_s, rng, hang_s=None) -> dict:
    """Fixed shards: worker k takes items k, k+W, ... whatever happens elsewhere."""
    n, w = len(costs), len(speed)
    finish = np.empty(w)
    done_times = []
    for wk in range(w):
        work = costs[wk::w] * speed[wk]
        if hang_s is not None:
            work = work + hang_s[wk::w]
        t = np.cumsum(work)
        if mtbf_s > 0:  # each failure costs the lost item's partial work plus a restart
            fails = rng.poisson(t[-1] / mtbf_s)
            t = t + fails * restart_s * np.linspace(0, 1, len(t)) \
                + fails * float(np.mean(work)) / 2 * np.linspace(0, 1, len(t))
        finish[wk] = t[-1]
        done_times.append(t)
    done = np.sort(np.concatenate(done_times))
    return {"makespan": finish.max(), "p99": done[int(0.99 * n) - 1], "retried": 0,
            "copied": 0, "driver_util": 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=100)
    ap.add_argument("--costs", type=Path, default=HERE / "item_costs.json")
    ap.add_argument("--cost-scale", type=float, default=1.0)
    ap.add_argument("--driver-ms", type=float, default=None,
                    help="driver time per item (default: the one measured with the costs)")
    ap.add_argument("--slow-frac", type=float, default=0.05)
    ap.add_argument("--slow-factor", type=float, default=3.0)
    ap.add_argument("--mtbf-h", type=float, default=24.0, help="per worker; 0: none")
    ap.add_argument("--restart-s", type=float, default=30.0)
    ap.add_argument("--hang-frac", type=float, default=0.0,
                    help="fraction of items whose first attempt hangs (a stuck read, a sick "
                         "node) for --hang-h more")
    ap.add_argument("--hang-h", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    sample, measured, source = load_costs(args.costs)
    driver_s = args.driver_ms / 1e3 if args.driver_ms is not None else (measured or 0.005)
    rng = np.random.default_rng(args.seed)
    costs = rng.choice(sample, args.items) * args.cost_scale
    speed = worker_speed(rng, args.workers, args.slow_frac, args.slow_factor)
    hang_s = None
    if args.hang_frac > 0:
        hang_s = np.where(rng.random(args.items) < args.hang_frac, args.hang_h * 3600, 0.0)
    ideal = float(costs.sum() / np.sum(1.0 / speed))  # every worker busy to the end
    print(f"{args.items} items, {args.workers} workers; item cost from {source}: "
          f"median {np.median(sample) * args.cost_scale:.3f} s, p90 "
          f"{np.quantile(sample, 0.9) * args.cost_scale:.3f} s; driver {driver_s * 1e3:.1f} ms/item;"
          f" {args.slow_frac:.0%} of workers {args.slow_factor:g}x slower; MTBF "
          f"{args.mtbf_h:g} h/worker, restart {args.restart_s:g} s")
    print(f"ideal makespan (all workers busy to the end, no overheads): {ideal / 3600:.2f} h")
    if hang_s is not None:
        print(f"{int(np.count_nonzero(hang_s))} item(s) hang {args.hang_h:g} h on their "
              "first attempt")
    mtbf_s = args.mtbf_h * 3600
    policies = {
        "dynamic (executor)": lambda r: dynamic(costs, speed, driver_s, mtbf_s, args.restart_s,
                                                r, hang_s),
        "dynamic, no copies": lambda r: dynamic(costs, speed, driver_s, mtbf_s, args.restart_s,
                                                r, hang_s, copies=False),
        "fixed shards": lambda r: static(costs, speed, mtbf_s, args.restart_s, r, hang_s),
    }
    for name, policy in policies.items():
        res = policy(np.random.default_rng(args.seed + 1))
        m = res["makespan"]
        print(f"  {name:19s} makespan {m / 3600:.2f} h, efficiency {ideal / m:.1%}, "
              f"last 1% of items took {(m - res['p99']) / 60:.1f} min, "
              f"items retried {res['retried']}, tail copies {res['copied']}, "
              f"driver busy {res['driver_util']:.1%}")
    rate = args.workers / (np.mean(sample) * args.cost_scale)
    print(f"driver limit: {1 / driver_s:.0f} items/s vs {rate:.0f} items/s wanted by "
          f"{args.workers} workers (the driver saturates near "
          f"{int(np.mean(sample) * args.cost_scale / driver_s)} workers)")


if __name__ == "__main__":
    main()
