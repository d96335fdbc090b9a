"""Images/s through OpenVinoLauncher.stream vs plain OpenVINO on the same model.

Baselines: ``compiled_model(x)`` sync at batch 1, and a raw ``AsyncInferQueue``
(THROUGHPUT hint, optimal number of requests) fed ready-made NCHW tensors at
batch 1 and at the launcher's batch. The launcher is fed HWC float32 BGR images
at the model size (what RISE feeds) and returns annotations, so it also pays
for layout conversion and interpretation. Median of several repetitions.

    /work/venv/bin/python bench/infer_bench.py [--images 256] [--reps 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openvino as ov
from openvino import opset13 as ops

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explain_plugin.launchers.openvino import OpenVinoLauncher  # noqa: E402

SHARED_MODEL = ROOT.parent / "shared" / "datumaro-assets" / "model.xml"


def build_conv_model(out_dir: Path, size: int = 224) -> tuple[Path, float]:
    """A small CNN (dynamic batch); returns (xml, MFLOP per image)."""
    rng = np.random.default_rng(0)
    x = ops.parameter([-1, 3, size, size], np.float32, name="input")
    y, hw, mflop = x, size, 0.0
    for cin, cout, stride in [(3, 16, 2), (16, 32, 1), (32, 32, 2), (32, 64, 1)]:
        w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2 / (9 * cin))).astype(np.float32)
        y = ops.relu(ops.convolution(y, ops.constant(w), [stride] * 2, [1, 1], [1, 1], [1, 1]))
        hw //= stride
        mflop += 2 * hw * hw * cout * cin * 9 / 1e6
    y = ops.reduce_mean(y, [2, 3], keep_dims=False)
    y = ops.matmul(y, ops.constant(rng.standard_normal((64, 10)).astype(np.float32) * 0.1), False, False)
    y.output(0).get_tensor().set_names({"logits"})
    xml = out_dir / "conv.xml"
    ov.save_model(ov.Model([ops.result(y)], [x], "conv"), str(xml))
    return xml, mflop


def timed(fn, n_images: int, reps: int) -> float:
    fn()  # warm-up
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        rates.append(n_images / (time.perf_counter() - t))
    return statistics.median(rates)


def bench_model(xml: Path, n_images: int, reps: int) -> dict[str, float]:
    launcher = OpenVinoLauncher(description=str(xml))
    h, w = launcher.input_size
    batch = launcher.batch_size
    rng = np.random.default_rng(0)
    images = list(rng.uniform(0, 255, (n_images, h, w, 3)).astype(np.float32))
    nchw = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))

    core = ov.Core()

    def model_at(b: int) -> ov.Model:
        model = core.read_model(str(xml))
        shape = model.inputs[0].get_partial_shape()
        shape[0] = b
        model.reshape({model.inputs[0]: shape})
        return model

    sync = core.compile_model(model_at(1), "CPU")

    def run_sync():
        for i in range(n_images):
            sync(nchw[i : i + 1])

    def raw_async(b: int):
        compiled = core.compile_model(model_at(b), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
        queue = ov.AsyncInferQueue(compiled, 0)
        sink = []
        queue.set_callback(lambda req, _: sink.append(req.get_output_tensor(0).data.copy()))
        chunks = [nchw[i : i + b] for i in range(0, n_images - b + 1, b)]

        def run():
            for chunk in chunks:
                queue.start_async({0: chunk}, share_inputs=True)
            queue.wait_all()

        return run, len(chunks) * b

    def run_launcher():
        batches = (images[i : i + batch] for i in range(0, n_images, batch))
        for _ in launcher.stream(batches):
            pass

    rows = {"sync batch 1": timed(run_sync, n_images, reps)}
    run, n = raw_async(1)
    rows["raw async batch 1"] = timed(run, n, reps)
    if batch > 1:
        run, n = raw_async(batch)
        rows[f"raw async batch {batch}"] = timed(run, n, reps)
    rows[f"launcher (batch {batch}, {launcher.requests} requests)"] = timed(run_launcher, n_images, reps)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        conv, mflop = build_conv_model(Path(tmp))
        models = [(f"conv CNN 224x224 ({mflop:.0f} MFLOP/image)", conv)]
        if SHARED_MODEL.is_file():
            models.insert(0, ("datumaro RISE test model [1,3,224,224]", SHARED_MODEL))
        for title, xml in models:
            rows = bench_model(xml, args.images, args.reps)
            best_raw = max(v for k, v in rows.items() if k.startswith("raw async"))
            print(f"\n{title}: {args.images} images, median of {args.reps}")
            print(f"  {'':42} {'images/s':>10} {'vs sync':>8} {'vs best raw async':>18}")
            for name, rate in rows.items():
                print(f"  {name:42} {rate:10.1f} {rate / rows['sync batch 1']:7.2f}x {rate / best_raw:17.2f}x")


if __name__ == "__main__":
    main()
