"""Faithfulness of the package's maps next to SHAP's Partition explainer and LIME, in one run.

Same model (EfficientNet-Lite0 IR from the sample cache, Datumaro 0.x interpreter,
``rescale=crop``, as bench/rex_bench.py loads it), same images (real photos from the
samples), same target (the model's top-1 class on the clean image), same occlusion
(masked pixels of the launcher-scale view set to 0) for every explainer:

* ``rise`` (7x7 grid), ``rex`` (iterations 5 / 10 / 20 for budgets 500 / 1000 / 4000:
  ReX sets its own number of evaluations), ``segments`` (this package: multi-scale
  superpixel sampling, ridge fit per scale, then a greedy refinement of the top
  segments inside the same budget), all with ``--max-samples`` = budget;
* SHAP's Partition explainer (``shap.maskers.Image(0, shape)``, ``max_evals`` = budget);
* LIME (``lime_image``, quickshift superpixels as LIME's default, ``hide_color=0``,
  ``num_samples`` = budget).

SHAP and LIME see the same view pixels the package masks and call the same
launcher; their model function counts the images it scores (evaluations).
Quality from the package's own metrics (``methods.metrics.evaluate_maps``, 20 steps,
one engine): deletion AUC (lower is better), insertion AUC from a blurred start
(higher is better), pointing game and energy inside a hand-made box around the
object. Time over the inference bound: wall time of the explanation (metrics
apart) / the time ``launcher.stream`` takes for as many pre-made masked images of the
view size (first-result latency + n / steady images/s, measured per photo next to
the runs). CPU over the bound: the process's CPU time during the explanation / (evaluations x
the stream's CPU per image), steadier than wall time when other jobs share the cores.
``--reps R`` times each explanation R times, each against a bound measured right before it,
and keeps the median ratios. The machine is shared and loaded: compare ratios and medians.
``--seeds S`` explains with seeds 0..S-1 (every explainer but SHAP's Partition, which draws
nothing at random): a median over 8 photos moves by a few thousandths with the seed alone, so
the table adds, per explainer, the mean and the range of the per-seed medians.

Known answer: the quadrant classifier (``samples/known_answer.py``: class k's logit
is the mean of quadrant k) on a 96x144 grey-noise image, each of the 4 classes a
target; the box is its quadrant, so pointing and energy have an exact truth.

SHAP and LIME are not dependencies of the package: install them in a bench venv::

    python3 -m venv .benchvenv && .benchvenv/bin/pip install shap lime scikit-image
    .benchvenv/bin/pip install -e .
    .benchvenv/bin/python bench/faithfulness_bench.py                  # 8 photos, 3 budgets
    .benchvenv/bin/python bench/faithfulness_bench.py --quick          # 2 photos, 500
    options: --photos chelsea,coffee  --budgets 500,1000  --explainers rise,segments,shap  --reps 3
             --extra 'segments:refine=0,levels=16;48;128'  --skip-known  --json out.json
"""
from __future__ import annotations

import argparse
import json
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
# Hand-made boxes around the object, as fractions (x1, y1, x2, y2) of the photo.
BOXES = {
    "chelsea": (0.20, 0.15, 0.85, 0.95),  # the cat's face
    "coffee": (0.13, 0.00, 0.80, 0.95),  # cup and saucer
    "astronaut": (0.18, 0.00, 0.82, 1.00),  # the astronaut, helmet included
    "rocket": (0.43, 0.25, 0.57, 1.00),  # the rocket
    "grace_hopper": (0.10, 0.05, 0.90, 1.00),  # the person
    "puppy": (0.28, 0.30, 0.78, 0.85),  # the dog's head
    "black_cat": (0.25, 0.05, 0.75, 0.90),  # the cat's head
    "camera": (0.50, 0.35, 0.85, 0.72),  # the camera body
}
EXPLAINERS = ("rise", "rex", "segments", "shap", "lime")
REX_ITERS = {500: 5, 1000: 10, 4000: 20}
STEPS = 20
POOL = 32


# ------------------------------------------------------------------ model function for SHAP/LIME
class ScoreFn:
    """Scores of the target through the launcher, counting the images (evaluations)."""

    def __init__(self, launch, scorer):
        self.launch, self.scorer, self.count = launch, scorer, 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        b = self.launch.batch_size
        self.count += len(images)
        out = []
        for anns in self.launch.stream(list(images[i:i + b]) for i in range(0, len(images), b)):
            out.append(self.scorer.answer(anns).scores)
        return np.concatenate(out).astype(np.float64)  # [n, T]


def context(launch, image, targets: str | None):
    from explain_plugin.methods.targets import parse_targets, resolve
    from explain_plugin.methods.view import view_of

    view = view_of(launch, image)
    spec = parse_targets(targets, [c.name for c in launch.categories])
    scorer, found = resolve(launch, view, spec)
    return view, scorer, found


def run_package(name: str, launch, image, budget: int, targets: str | None, extra: dict):
    from explain_plugin.methods.rex.method import Rex
    from explain_plugin.methods.rise import Rise
    from explain_plugin.methods.segments import Segments

    if name == "rex":
        method = Rex.with_defaults(iters=REX_ITERS.get(budget, 10), metrics=False,
                                   targets=targets, **extra)
    else:
        cls = {"rise": Rise, "segments": Segments}[name]
        method = cls.with_defaults(max_samples=budget, metrics=False, targets=targets, **extra)
    start = time.perf_counter()
    snap = list(method.explain(launch, image))[-1]
    wall = time.perf_counter() - start
    evals = sum(v for k, v in snap.evaluations.items() if k != "metrics")
    return snap.maps[0], evals, wall


def run_shap(launch, image, budget: int, targets: str | None, seed: int = 0):
    import shap

    view, scorer, _ = context(launch, image, targets)
    fn = ScoreFn(launch, scorer)
    masker = shap.maskers.Image(0, view.pixels.shape)
    explainer = shap.Explainer(fn, masker, algorithm="partition", seed=seed)
    start = time.perf_counter()
    sv = explainer(view.pixels[None], max_evals=budget, batch_size=launch.batch_size * 4,
                   silent=True)
    wall = time.perf_counter() - start
    values = np.asarray(sv.values)[0]  # [h, w, 3, T]
    return values[..., 0].sum(axis=-1).astype(np.float32), fn.count, wall


def run_lime(launch, image, budget: int, targets: str | None, seed: int = 0):
    from lime import lime_image
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    view, scorer, _ = context(launch, image, targets)
    fn = ScoreFn(launch, scorer)
    rgb = view.pixels[..., ::-1] / 255.0  # LIME and quickshift expect RGB in [0, 1]

    def classifier(images):
        return fn(np.asarray(images, np.float32)[..., ::-1] * 255.0)

    segmenter = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2,
                                      random_seed=seed)
    explainer = lime_image.LimeImageExplainer(random_state=seed)
    start = time.perf_counter()
    exp = explainer.explain_instance(rgb.astype(np.float64), classifier, labels=(0,),
                                     top_labels=None, hide_color=0, num_samples=budget,
                                     batch_size=launch.batch_size * 4,
                                     segmentation_fn=segmenter)
    wall = time.perf_counter() - start
    weights = np.zeros(exp.segments.max() + 1, np.float32)
    for seg, w in exp.local_exp[0]:
        weights[seg] = w
    return weights[exp.segments], fn.count, wall


def measure(launch, image, saliency: np.ndarray, targets: str | None, box_px) -> dict:
    """The package's metrics of one map of the (single) target, through a fresh engine."""
    from explain_plugin.methods.base import ItemInfo
    from explain_plugin.methods.engine import Evaluator
    from explain_plugin.methods.metrics import evaluate_maps
    from explain_plugin.methods.normalize import normalize_maps
    from explain_plugin.methods.occlusion import Occlusion

    view, scorer, found = context(launch, image, targets)
    ev = Evaluator(launch, view, scorer, Occlusion.of(view.pixels, "0"))
    maps = normalize_maps(np.asarray(saliency, np.float32)[None])
    item = ItemInfo(boxes=[(found[0].name, box_px)])
    return evaluate_maps(ev, maps, found[:1], item=item, steps=STEPS)[0]


def bound_of(launch, view_pixels: np.ndarray) -> tuple[float, float, float]:
    """(first-result latency s, steady images/s, process CPU s per image) of
    ``launcher.stream`` on masked views."""
    rng = np.random.default_rng(0)
    h, w = view_pixels.shape[:2]
    pool = []
    import cv2

    for _ in range(POOL):
        keep = (rng.random((7, 7)) < 0.5).astype(np.float32)
        keep = cv2.resize(keep, (w, h), interpolation=cv2.INTER_LINEAR)
        pool.append(view_pixels * keep[..., None])
    _stream_bound(launch, pool, 2 * launch.batch_size)  # warm-up
    cpu = time.process_time()
    total, rate = _stream_bound(launch, pool, 256)
    return max(0.0, total - 256 / rate), rate, (time.process_time() - cpu) / 256


SEEDLESS = ("shap",)  # explainers whose result does not depend on a seed


def explain_one(name, launch, image, budget, targets, extra, seed: int = 0):
    if name == "shap":
        return run_shap(launch, image, budget, targets)
    if name == "lime":
        return run_lime(launch, image, budget, targets, seed=seed)
    params = dict(extra.get(name, {}))
    params.setdefault("seed", seed)
    return run_package(name, launch, image, budget, targets, params)


def bench_images(launch, images: dict, boxes: dict, budgets, explainers, extra, targets=None,
                 log=print, reps: int = 1, seeds: int = 1) -> list[dict]:
    """One row per (image, budget, explainer, seed). With ``reps`` > 1 each explanation is
    timed that many times, each against a bound measured right before it; the row keeps the
    median ratios (a shared machine's load comes and goes within a minute)."""
    rows = []
    for name, image in images.items():
        view, _, found = context(launch, image, targets)
        for budget in budgets:
            for ex, seed in [(e, s) for e in explainers
                             for s in range(1 if e in SEEDLESS else seeds)]:
                ratios, cpus = [], []
                for _ in range(reps):
                    latency, rate, img_cpu = bound_of(launch, view.pixels)
                    cpu = time.process_time()
                    sal, evals, wall = explain_one(ex, launch, image, budget, targets, extra, seed)
                    cpus.append((time.process_time() - cpu) / (evals * img_cpu))
                    ratios.append(wall / (latency + evals / rate))
                m = measure(launch, image, sal, targets, boxes[name])
                row = {"image": name, "budget": budget, "explainer": ex, "seed": seed,
                       "evaluations": evals,
                       "deletion": m["deletion_auc"], "insertion": m["insertion_auc"],
                       "pointing": float(m.get("pointing", False)),
                       "energy": m.get("energy_in_box", 0.0),
                       "ratio": statistics.median(ratios), "cpu_ratio": statistics.median(cpus),
                       "wall": wall, "label": found[0].name}
                rows.append(row)
                log(f"  {name:>12} {budget:5d} {ex:>9} {seed:4d} {evals:6d} {row['deletion']:7.3f} "
                    f"{row['insertion']:7.3f} {row['pointing']:4.0f} {row['energy']:6.3f} "
                    f"{row['ratio']:6.2f} {row['cpu_ratio']:6.2f}  {row['label']}")
    return rows


def table(rows: list[dict], title: str) -> None:
    """Medians over images (of seed 0's rows), then the spread of the medians over seeds."""
    med = statistics.median
    seeds = sorted({r.get("seed", 0) for r in rows})
    spread = [r for r in rows if r.get("seed", 0) != 0]
    rows = [r for r in rows if r.get("seed", 0) == 0]
    print(f"\n{title} (medians over images)")
    print("| explainer | budget | evaluations | deletion AUC | insertion AUC | pointing | "
          "energy in box | time over bound | CPU over bound |")
    print("|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["explainer"], r["budget"]) for r in rows},
                  key=lambda k: (k[1], EXPLAINERS.index(k[0]) if k[0] in EXPLAINERS else 99))
    for ex, budget in keys:
        sel = [r for r in rows if r["explainer"] == ex and r["budget"] == budget]
        print(f"| {ex} | {budget} | {med(r['evaluations'] for r in sel):.0f} | "
              f"{med(r['deletion'] for r in sel):.3f} | {med(r['insertion'] for r in sel):.3f} | "
              f"{statistics.mean(r['pointing'] for r in sel):.2f} | "
              f"{med(r['energy'] for r in sel):.3f} | {med(r['ratio'] for r in sel):.2f}x | "
              f"{med(r['cpu_ratio'] for r in sel):.2f}x |")
    if len(seeds) > 1:
        seeds_table(rows + spread, keys, seeds)


def seeds_table(rows: list[dict], keys, seeds: list[int]) -> None:
    """Per explainer and budget: the median over images for each seed, their mean and range."""
    med = statistics.median
    print(f"\nThe same over seeds {seeds[0]}..{seeds[-1]} (median over images per seed)")
    print("| explainer | budget | seeds | deletion AUC: mean [min, max] | "
          "insertion AUC: mean [min, max] |")
    print("|---|---|---|---|---|")
    for ex, budget in keys:
        per = {}
        for r in rows:
            if r["explainer"] == ex and r["budget"] == budget:
                per.setdefault(r.get("seed", 0), []).append(r)
        dele = [med(r["deletion"] for r in sel) for sel in per.values()]
        ins = [med(r["insertion"] for r in sel) for sel in per.values()]
        print(f"| {ex} | {budget} | {len(per)} | {statistics.mean(dele):.4f} "
              f"[{min(dele):.4f}, {max(dele):.4f}] | {statistics.mean(ins):.3f} "
              f"[{min(ins):.3f}, {max(ins):.3f}] |")


def known_answer_rows(budgets, explainers, extra, tmp: Path) -> list[dict]:
    from explain_plugin.launchers.openvino import OpenVinoLauncher
    from explain_plugin.samples import known_answer

    xml = known_answer.build_classifier(tmp)
    script = Path(known_answer.__file__).parent / "interpreters" / "known_classifier_0x.py"
    launch = OpenVinoLauncher(description=str(xml), weights=str(xml.with_suffix(".bin")),
                              interpreter=str(script))
    image = np.random.default_rng(3).integers(100, 156, (96, 144, 3), dtype=np.uint8)
    rows = []
    for k, (y0, y1, x0, x1) in enumerate(known_answer.classifier_regions(96, 144)):
        extra_k = {n: dict(v) for n, v in extra.items()}
        part = bench_images(launch, {f"quadrant{k}": image}, {f"quadrant{k}": (x0, y0, x1, y1)},
                            budgets, [e for e in explainers if e != "rex"], extra_k,
                            targets=str(k))
        rows += part
    return rows


def parse_extra(text: str) -> dict:
    """'segments:prob=0.6,levels=16;48;128 rise:mask_width=10' -> {method: {k: v}}."""
    out: dict = {}
    for chunk in text.split():
        method, _, pairs = chunk.partition(":")
        for pair in filter(None, pairs.split(",")):
            k, _, v = pair.partition("=")
            v = v.replace(";", ",")
            try:
                val = int(v)
            except ValueError:
                try:
                    val = float(v)
                except ValueError:
                    val = v
            out.setdefault(method, {})[k] = val
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=",".join(PHOTOS))
    parser.add_argument("--budgets", default="500,1000,4000")
    parser.add_argument("--explainers", default=",".join(EXPLAINERS))
    parser.add_argument("--extra", default="", help="e.g. 'segments:prob=0.6 rise:mask_width=10'")
    parser.add_argument("--quick", action="store_true", help="2 photos, budget 500")
    parser.add_argument("--skip-known", action="store_true")
    parser.add_argument("--json", default=None, help="write every row here")
    parser.add_argument("--reps", type=int, default=1,
                        help="time each explanation this many times (median ratios)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="explain with seeds 0..S-1 (not SHAP: it has no randomness); "
                             "the table adds the mean and range of the per-seed medians")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.budgets = "chelsea,coffee", "500"
    budgets = [int(b) for b in args.budgets.split(",")]
    explainers = [e for e in args.explainers.split(",") if e]
    extra = parse_extra(args.extra)

    from explain_plugin.samples.photos import sample_photos

    every = sample_photos(cache_dir())
    names = [n for n in args.photos.split(",") if n in every]
    images = {n: every[n] for n in names}
    boxes = {}
    for n, im in images.items():
        h, w = im.shape[:2]
        fx1, fy1, fx2, fy2 = BOXES[n]
        boxes[n] = (fx1 * w, fy1 * h, fx2 * w, fy2 * h)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = model_files(Path(tmp))
        launch = launcher(files)
        print(f"model: {files['name']}; batch {launch.batch_size}; photos: {', '.join(names)}; "
              f"budgets {budgets}; explainers {explainers}; extra {extra}")
        print(f"  {'image':>12} {'budget':>5} {'explainer':>9} {'seed':>4} {'evals':>6} {'del':>7} {'ins':>7} "
              f"{'pt':>4} {'energy':>6} {'ratio':>6} {'cpu':>6}  class")
        out["photos"] = bench_images(launch, images, boxes, budgets, explainers, extra,
                                     reps=args.reps, seeds=args.seeds)
        table(out["photos"], f"Real photos ({len(names)}), EfficientNet-Lite0")
        if not args.skip_known:
            print("\nknown-answer quadrant classifier")
            out["known"] = known_answer_rows(budgets, explainers, extra, Path(tmp))
            table(out["known"], "Known answer: quadrant classifier, 4 targets")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
