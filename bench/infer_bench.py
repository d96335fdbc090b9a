"""Images/s through OpenVinoLauncher.stream vs plain OpenVINO on the same model.

Baselines: ``compiled_model(x)`` sync at batch 1, and a raw ``AsyncInferQueue``
(THROUGHPUT hint, optimal number of requests) fed ready-made NCHW tensors at
the same batch as each launcher. Each launcher is fed two ways: HWC float32 BGR
images at the model size, one [B,H,W,3] array per batch ("images": it also pays
for the layout conversion), and the model's own [B,3,H,W] batches ("model input":
what RISE's engine submits when no script reads the images); either way it
returns annotations, so it also pays for interpretation. Median of several
repetitions, variants interleaved.

Models: Datumaro's RISE test model (when ../shared is there), a 300 MFLOP conv
net built here, and the real EfficientNet-Lite0 once the samples are built.

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

# ../shared next to the checkout (/work/main) or next to the worktrees' folder (/work/wt/<name>)
SHARED_MODEL = next((p / "shared" / "datumaro-assets" / "model.xml" for p in ROOT.parents
                     if (p / "shared" / "datumaro-assets" / "model.xml").is_file()),
                    ROOT.parent / "shared" / "datumaro-assets" / "model.xml")


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


def interleaved(variants: dict[str, tuple], reps: int) -> dict[str, float]:
    """Median images/s of each ``name: (fn, n_images)``; repetitions run round-robin
    so every variant sees the same background load (the machine is shared)."""
    for fn, _ in variants.values():
        fn()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, (fn, n) in variants.items():
            t = time.perf_counter()
            fn()
            rates[name].append(n / (time.perf_counter() - t))
    return {name: statistics.median(r) for name, r in rates.items()}


def bench_model(xml: Path, n_images: int, reps: int, batches: list[int]) -> dict[str, float]:
    launchers = {b: OpenVinoLauncher(description=str(xml), batch_size=b) for b in batches}
    h, w = next(iter(launchers.values())).input_size
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
            sink.clear()
            for chunk in chunks:
                queue.start_async({0: chunk}, share_inputs=True)
            queue.wait_all()

        return run, len(chunks) * b

    stacked = np.stack(images)  # RISE feeds one [B,H,W,3] float32 array per batch

    def through(launcher: OpenVinoLauncher, source: np.ndarray):
        b = launcher.batch_size

        def run():
            for _ in launcher.stream(source[i : i + b] for i in range(0, n_images, b)):
                pass

        return run, n_images

    variants = {"sync batch 1": (run_sync, n_images)}
    for b, launcher in launchers.items():
        b = launcher.batch_size  # what the model allowed
        variants[f"raw async batch {b}"] = raw_async(b)
        variants[f"launcher batch {b} images"] = through(launcher, stacked)
        variants[f"launcher batch {b} model input"] = through(launcher, nchw)
    return interleaved(variants, reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8],
                        help="launcher batch sizes to compare (default: 1 8)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        conv, mflop = build_conv_model(Path(tmp))
        models = [(f"conv CNN 224x224 ({mflop:.0f} MFLOP/image)", conv)]
        if SHARED_MODEL.is_file():
            models.insert(0, ("datumaro RISE test model [1,3,224,224]", SHARED_MODEL))
        from explain_plugin.samples.real_project import cache_dir

        effnet = cache_dir() / "efficientnet_lite0" / "efficientnet_lite0.xml"
        if effnet.is_file():  # built by `python -m explain_plugin.samples build`
            models.append(("EfficientNet-Lite0 (real, ~770 MFLOP/image)", effnet))
        for title, xml in models:
            rows = bench_model(xml, args.images, args.reps, args.batch)
            print(f"\n{title}: {args.images} images, median of {args.reps}")
            print(f"  {'':34} {'images/s':>10} {'vs sync':>8} {'vs raw async, same batch':>25}")
            for name, rate in rows.items():
                raw = rows.get("raw async " + " ".join(name.split()[1:3]))
                ratio = f"{rate / raw:24.2f}x" if raw and name.startswith("launcher") else ""
                print(f"  {name:34} {rate:10.1f} {rate / rows['sync batch 1']:7.2f}x {ratio}")


if __name__ == "__main__":
    main()
