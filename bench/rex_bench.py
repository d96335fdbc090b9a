"""ReX on a real classifier: evaluations per image, wall time over the async inference
bound of the same evaluations, and the quality of the maps.

Model: EfficientNet-Lite0 (as bench/rise_bench.py loads it, from the sample cache).
Photos: 8 real photos (skimage, matplotlib and registry samples; see samples/photos.py).
For each setting (--iters 5, 10, 20 and 20 with --converge) and photo, one run of
``Rex.explain`` with the top-1 class as target:

* evaluations: masks the model saw for the search and the extraction (metrics apart);
* ratio = wall time of the explanation (metrics excluded) / bound, where bound = the
  time ``launcher.stream`` takes for the same number of pre-made images of the view
  size (first-result latency + N / steady images/s), the mean of one measurement
  right before and one right after the timed run. 1.0 means ReX costs nothing
  beyond inference;
* quality (the package's metrics, through the same engine, 20 steps): the explanation's
  area (fraction of the view), the metric's sufficient area (smallest inserted
  fraction that gives the class back), deletion AUC (lower is better) and insertion AUC.

Medians over the photos. The machine is shared: compare ratios, not seconds.

    .venv/bin/python bench/rex_bench.py                 # all settings, 8 photos (~10 min)
    .venv/bin/python bench/rex_bench.py --quick         # iters 5 on 2 photos
    options: --photos chelsea,coffee  --settings 5,10,20,20c  --extra 'search_limit=40'
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rise_bench import _stream_bound, cache_dir, launcher, model_files  # noqa: E402

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "grace_hopper", "puppy", "black_cat",
          "camera")
POOL = 32
REX_XAI = {"evaluations": 2260, "ratio": 1.42}  # issue 9: rex-xai 0.4.1, same model and class


def pool_images(view: np.ndarray, count: int, seed: int = 0) -> list[np.ndarray]:
    """Masked copies of the view (random boxes kept), as ReX's mutants look."""
    rng = np.random.default_rng(seed)
    h, w = view.shape[:2]
    out = []
    for _ in range(count):
        y, x = rng.integers(1, h), rng.integers(1, w)
        keep = np.zeros((h, w), np.float32)
        keep[: y, : x] = 1
        out.append(view * keep[..., None])
    return out


def run_one(launch, image: np.ndarray, setting: str, extra: dict) -> dict:
    from explain_plugin.methods.rex.method import Rex
    from explain_plugin.methods.view import view_of

    iters = int(setting.rstrip("c"))
    params = {"iters": iters, "converge": setting.endswith("c"), "metrics": True, **extra}
    pool = pool_images(view_of(launch, image).pixels, POOL)
    _stream_bound(launch, pool, 2 * launch.batch_size)  # warm-up
    method = Rex.with_defaults(**params)
    n = list(method.explain(launch, image))[-1].evaluations.get("rex", 0)  # same seed: same n
    before, _ = _stream_bound(launch, pool, n)
    start = time.perf_counter()
    snap = list(method.explain(launch, image))[-1]
    total = time.perf_counter() - start
    rex = snap.extra["rex"]
    after, _ = _stream_bound(launch, pool, n)
    bound = (before + after) / 2  # the machine is shared: the bound on both sides
    stats = rex["targets"][0]
    metric = (snap.metrics or [{}])[0] or {}
    return {"evaluations": n, "wall": rex["seconds"], "total": total, "bound": bound,
            "ratio": rex["seconds"] / bound, "iterations": stats["iterations"],
            "exp_area": stats["explanation_area"], "area": metric.get("area"),
            "deletion": metric.get("deletion_auc"), "insertion": metric.get("insertion_auc"),
            "depth": stats["max_depth_reached"], "label": snap.targets[0].name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=",".join(PHOTOS))
    parser.add_argument("--settings", default="5,10,20,20c",
                        help="iterations per run; a trailing c adds --converge")
    parser.add_argument("--extra", default="", help="more Rex parameters: k=v,k=v")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.settings = "chelsea,coffee", "5"
    extra = {}
    for pair in filter(None, args.extra.split(",")):
        k, _, v = pair.partition("=")
        extra[k.strip()] = int(v) if v.strip().lstrip("-").isdigit() else v.strip()

    from explain_plugin.samples.photos import sample_photos

    every = sample_photos(cache_dir())
    names = [n for n in args.photos.split(",") if n in every]
    with tempfile.TemporaryDirectory() as tmp:
        files = model_files(Path(tmp))
        launch = launcher(files)
        print(f"model: {files['name']}; batch {launch.batch_size}; photos: {', '.join(names)}")
        print(f"rex-xai 0.4.1 (issue 9, same model): median {REX_XAI['evaluations']} "
              f"evaluations, {REX_XAI['ratio']}x the bound\n")
        header = (f"{'setting':>8} {'photo':>12} {'evals':>6} {'iters':>5} {'wall s':>7} "
                  f"{'bound s':>7} {'ratio':>6} {'exp.area':>8} {'area':>5} {'del':>6} "
                  f"{'ins':>6} {'depth':>5}  class")
        print(header)
        summary = []
        for setting in args.settings.split(","):
            rows = []
            for name in names:
                r = run_one(launch, every[name], setting, extra)
                rows.append(r)
                print(f"{setting:>8} {name:>12} {r['evaluations']:6d} {r['iterations']:5d} "
                      f"{r['wall']:7.2f} {r['bound']:7.2f} {r['ratio']:6.3f} "
                      f"{r['exp_area'] or 0:8.3f} {r['area'] if r['area'] is not None else -1:5.2f} "
                      f"{r['deletion']:6.3f} {r['insertion']:6.3f} {r['depth']:5d}  {r['label']}",
                      flush=True)
            summary.append((setting, rows))
        med = statistics.median
        print("\nmedians over the photos")
        print(f"{'setting':>8} {'evals':>6} {'iters':>5} {'ratio':>6} {'exp.area':>8} "
              f"{'area':>5} {'del':>6} {'ins':>6}")
        for setting, rows in summary:
            areas = [r["area"] for r in rows if r["area"] is not None]
            print(f"{setting:>8} {med(r['evaluations'] for r in rows):6.0f} "
                  f"{med(r['iterations'] for r in rows):5.0f} {med(r['ratio'] for r in rows):6.3f} "
                  f"{med(r['exp_area'] or 0 for r in rows):8.3f} "
                  f"{med(areas) if areas else float('nan'):5.2f} "
                  f"{med(r['deletion'] for r in rows):6.3f} {med(r['insertion'] for r in rows):6.3f}")


if __name__ == "__main__":
    main()
