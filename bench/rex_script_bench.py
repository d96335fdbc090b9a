"""RISE or ReX through a ReX script (``-l rex-script``) against the same model through OpenVINO.

Model: EfficientNet-Lite0 IR from the sample cache (``python -m explain_plugin.samples
build``). The ReX-style script compiles it with openvino itself and calls it
synchronously, one call per batch of mutants, as ReX scripts call their models;
its ``preprocess`` resizes like the methods' view (float32, INTER_AREA, 224x224
warp), so both launchers see the same pixels and their maps must agree.

Per photo, medians of --reps runs, in one process:
  ov      the method's wall time through OpenVinoLauncher (async requests, --rescale warp)
  script  its wall time through RexScriptLauncher
  bound   the time the script launcher takes for as many pre-made views as it evaluated
          (``submit``): pure inference through the script
  ratios  script / bound (the method's cost over the script's inference) and script / ov
          (a synchronous script against the async launcher); max |map difference|.

Timings on a shared machine: compare ratios, not seconds.

    .venv/bin/python bench/rex_script_bench.py [--masks 500] [--reps 3] [--photos chelsea,coffee] [--method rise|rex]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCRIPT = '''\
import cv2
import numpy as np
import openvino as ov
from rex_xai.input.input_data import Data

_compiled = ov.Core().compile_model({xml!r}, "CPU")


def model_shape():
    return ["N", 3, 224, 224]


def preprocess(path, shape, device, mode):
    image = cv2.imread(path)  # BGR 0..255: the IR converts and normalises itself
    x = cv2.resize(image.astype(np.float32), (224, 224), interpolation=cv2.INTER_AREA)
    data = Data(image, shape, device, mode="RGB")
    data.data = x.transpose(2, 0, 1)[None]
    return data


def prediction_function(mutants, target=None, raw=False, binary_threshold=None):
    logits = _compiled(np.ascontiguousarray(mutants))[0]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--masks", type=int, default=500)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--photos", default="chelsea,coffee")
    ap.add_argument("--method", choices=("rise", "rex"), default="rise")
    args = ap.parse_args()

    from explain_plugin.launchers.openvino import OpenVinoLauncher
    from explain_plugin.launchers.rex_script import RexScriptLauncher
    from explain_plugin.methods.rex.method import Rex
    from explain_plugin.methods.rise import Rise
    from explain_plugin.samples.photos import sample_photos

    cache = Path(os.environ.get("EXPLAIN_PLUGIN_SAMPLE_CACHE")
                 or Path.home() / ".cache" / "explain-plugin") / "efficientnet_lite0"
    xml = cache / "efficientnet_lite0.xml"
    if not xml.is_file():
        raise SystemExit(f"{xml} missing: run python -m explain_plugin.samples build")
    tmp = Path(tempfile.mkdtemp(prefix="rex-script-bench-"))
    script = tmp / "effnet_rex.py"
    script.write_text(SCRIPT.format(xml=str(xml)))
    labels = str(cache / "labels.txt")
    ov_launcher = OpenVinoLauncher(description=str(xml), weights=str(xml.with_suffix(".bin")))
    rex = RexScriptLauncher(script=str(script), labels=labels)
    if args.method == "rise":
        method = Rise.with_defaults(max_samples=args.masks, seed=0, metrics=False)
    else:
        method = Rex.with_defaults(seed=0, metrics=False)
    every = sample_photos()
    what = f"RISE {args.masks} masks" if args.method == "rise" else "ReX (defaults)"
    print(f"{what}, EfficientNet-Lite0 224x224, rex-script batch {rex.batch_size}, "
          f"OpenVINO batch {ov_launcher.batch_size} x {ov_launcher.requests} requests; "
          f"medians of {args.reps} (shared 2-core machine: compare ratios)")
    print(f"{'photo':10} {'ov s':>7} {'script s':>9} {'bound s':>8} {'script/bound':>13} "
          f"{'script/ov':>10} {'max|dmap|':>10} {'evals':>6}")
    for name in args.photos.split(","):
        image = every[name]
        times = {"ov": [], "script": [], "bound": []}
        for _ in range(args.reps):
            t = time.perf_counter()
            want = list(method.explain(ov_launcher, image))[-1]
            times["ov"].append(time.perf_counter() - t)
            t = time.perf_counter()
            got = list(method.explain(rex, image))[-1]
            times["script"].append(time.perf_counter() - t)
            view = rex.view_image(image)
            pool = [np.ascontiguousarray(view * (0.5 + 0.5 * (i % 2))) for i in range(rex.batch_size)]
            t = time.perf_counter()
            n = sum(got.evaluations.values())
            pending = [rex.submit(pool) for _ in range(0, n, rex.batch_size)]
            for handle in pending:
                handle.result()
            times["bound"].append(time.perf_counter() - t)
        med = {k: statistics.median(v) for k, v in times.items()}
        diff = float(np.abs(got.maps - want.maps).max())
        print(f"{name:10} {med['ov']:7.2f} {med['script']:9.2f} {med['bound']:8.2f} "
              f"{med['script'] / med['bound']:13.2f} {med['script'] / med['ov']:10.2f} {diff:10.2e} {n:6d}")


if __name__ == "__main__":
    main()
