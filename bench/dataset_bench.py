"""Dataset runs on a real classifier: items/s against the inference bound, and memory.

A 200-item ``image_dir`` dataset is made from the sample photos at several sizes
(160 px .. 1600 px on the long side, JPEG) and imported into a fresh project with
EfficientNet-Lite0 (see rise_bench.py: cached in ~/.cache/explain-plugin). Each
configuration runs in its own process:

* run: ``datum explain -p P -m effnet --limit N -q rise -s M`` in-process (model
  load, the item pipeline, the dataset/CSV/report assembly: the whole command);
* bound: right before and right after, in the same process, ``launcher.stream`` of pre-made
  masked images at the sizes RISE feeds (the view size of each photo size),
  cycled; steady images/s (mean of before and after). bound = E / rate, E the
  evaluations the run made (run.json: masks, clean passes and the --metrics curves)
  at pure-inference speed;
* ratio = run wall time / bound (1.00 = the run costs nothing beyond inference);
  CPU ratio = the run's process CPU / (E x the bound's process CPU per evaluation);
  loop ratio = the item loop alone (run.json ``times.seconds``) / bound;
* peak RSS: the process's high-water mark during the run minus its RSS right
  before (the run compiles its own model: that is most of it), for N = 50 and 200.

Medians of --reps runs; the machine is shared: compare ratios, not seconds.

    .venv/bin/python bench/dataset_bench.py                 # 200 items x 100 masks, 3 reps
    .venv/bin/python bench/dataset_bench.py --quick         # 40 items x 30 masks, 1 rep
    options: --items 200 --small 50 --masks 100 --reps 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import Rss, run_worker  # noqa: E402

SIZES = [160, 320, 480, 640, 1024, 1600]  # long side, px
POOL = 48


def make_project(root: Path, items: int) -> Path:
    import cv2

    from explain_plugin.cli import main
    from explain_plugin.samples.photos import sample_photos
    from rise_bench import model_files

    photos = sample_photos()
    names = sorted(photos)
    data = root / "photos"
    data.mkdir(parents=True)
    for i in range(items):
        image = photos[names[i % len(names)]]
        side = SIZES[(i // len(names)) % len(SIZES)]
        h, w = image.shape[:2]
        scale = side / max(h, w)
        resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                             interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(data / f"{i:04d}_{names[i % len(names)]}_{side}.jpg"), resized)
    files = model_files(root)
    proj = root / "proj"
    for args in (["project", "create", "-o", proj],
                 ["project", "import", "-p", proj, "-n", "photos", "-f", "image_dir", data],
                 ["model", "add", "-p", proj, "-n", "effnet", "-l", "openvino", "--",
                  "-d", files["xml"], "-w", files["bin"], "-i", files["interpreter"],
                  "--rescale", "crop"]):
        if main([str(a) for a in args]):
            raise SystemExit(f"setup failed: {args}")
    (root / "model.json").write_text(json.dumps({k: str(v) for k, v in files.items()}))
    return proj


def worker(args) -> None:
    """One run in this process; prints one JSON line."""
    import cv2

    from explain_plugin.cli import main
    from explain_plugin.launchers.openvino import OpenVinoLauncher
    from explain_plugin.methods.masks import MaskGenerator
    from rise_bench import _stream_bound

    root = Path(args.root)
    files = json.loads((root / "model.json").read_text())
    launch = OpenVinoLauncher(description=files["xml"], weights=files["bin"],
                              interpreter=files["interpreter"], rescale="crop")
    # Pre-made masked images at the sizes RISE masks the dataset's photos.
    images = sorted((root / "photos").glob("*.jpg"))[: args.n]
    pool, gen = [], MaskGenerator(7, 7, 0.5, seed=1)
    for path in images[:: max(1, len(images) // POOL)][:POOL]:
        image = cv2.imread(str(path)).astype(np.float32)
        vh, vw = launch.view_size(image.shape[:2])
        work = cv2.resize(image, (vw, vh), interpolation=cv2.INTER_AREA)
        pool.append(gen.next(1, vh, vw)[0][..., None] * work)
    _stream_bound(launch, pool, 4 * launch.batch_size)  # warm-up
    cpu0 = time.process_time()
    _, rate_before = _stream_bound(launch, pool, 400)
    bound_cpu = time.process_time() - cpu0
    name = f"b{args.n}-{os.getpid()}"
    with Rss() as rss:
        cpu0 = time.process_time()
        start = time.perf_counter()
        code = main(["explain", "-p", str(root / "proj"), "-m", "effnet", "-n", name,
                     "--limit", str(args.n), "-q", "rise", "-s", str(args.masks)])
        wall = time.perf_counter() - start
    if code:
        raise SystemExit(f"run failed ({code})")
    # The machine is shared: the bound brackets the run (mean of before and after).
    run_cpu = time.process_time() - cpu0
    cpu0 = time.process_time()
    _, rate_after = _stream_bound(launch, pool, 400)
    # CPU per evaluation at pure inference (both bound passes): less sensitive than wall
    # time to other processes on a shared machine.
    cpu_per_eval = (bound_cpu + time.process_time() - cpu0) / 800
    rate = (rate_before + rate_after) / 2
    run = json.loads((root / "proj" / "explanations" / name / "run.json").read_text())
    # Every evaluation the run made (masks, clean passes, --metrics curves), per run.json.
    evaluations = sum(sum(entry.get("evaluations", {}).values()) or entry.get("masks_used", 0)
                      for entry in run["items"].values())
    bound = evaluations / rate
    print(json.dumps({"n": args.n, "evaluations": evaluations, "wall": wall, "loop": run["times"]["seconds"],
                      "bound": bound, "rate": rate, "rate_spread": abs(rate_before - rate_after) / rate, "items_per_s": args.n / wall,
                      "ratio": wall / bound, "loop_ratio": run["times"]["seconds"] / bound,
                      "cpu_ratio": run_cpu / (evaluations * cpu_per_eval),
                      "rss_mb": rss.peak_mb}))


def spawn(root: Path, n: int, masks: int) -> dict:
    return run_worker(__file__, "--root", root, "--n", n, "--masks", masks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--small", type=int, default=50)
    ap.add_argument("--masks", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.items, args.small, args.masks, args.reps = 40, 10, 30, 1
    with tempfile.TemporaryDirectory(prefix="dataset-bench-") as tmp:
        root = Path(tmp)
        make_project(root, args.items)
        results = {args.small: [], args.items: []}
        for rep in range(args.reps):
            for n in (args.items, args.small):
                r = spawn(root, n, args.masks)
                results[n].append(r)
                print(f"rep {rep}: {n} items x {args.masks} masks: {r['items_per_s']:.2f} items/s,"
                      f" ratio {r['ratio']:.3f} (loop {r['loop_ratio']:.3f}, CPU {r['cpu_ratio']:.3f}), "
                      f"bound rate {r['rate']:.0f} img/s, peak RSS +{r['rss_mb']:.0f} MB",
                      flush=True)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for n, rs in results.items()}
    big, small = med[args.items], med[args.small]
    print(f"\nmedians over {args.reps} rep(s), {args.masks} masks per item (machine shared):")
    print(f"  {args.items} items: {big['items_per_s']:.2f} items/s; ratio to the inference "
          f"bound {big['ratio']:.3f} (whole command), {big['loop_ratio']:.3f} (item loop), "
          f"{big['cpu_ratio']:.3f} (process CPU over the bound's CPU per evaluation)")
    print(f"  peak RSS: +{small['rss_mb']:.0f} MB at {args.small} items, "
          f"+{big['rss_mb']:.0f} MB at {args.items} items "
          f"(ratio {big['rss_mb'] / max(small['rss_mb'], 1e-9):.3f})")
    print(f"  goals: ratio <= 1.05: {'met' if big['ratio'] <= 1.05 else 'MISSED'}; "
          f"RSS within 10%: "
          f"{'met' if big['rss_mb'] <= 1.10 * small['rss_mb'] else 'MISSED'}")


if __name__ == "__main__":
    main()
