"""The OpenVINO launcher: a model file plus an interpreter script of any Datumaro generation.

Inference: the model is compiled once with the THROUGHPUT hint and run through
an ``AsyncInferQueue`` with the device's optimal number of requests. When the
batch dimension can be made ``1..batch_size`` (default 8) and every output keeps
it as its first dimension, each request carries up to that many images (a short
batch is never padded: a clean pass of one image costs one inference);
otherwise (a static batch-1 model, or an output such as DetectionOutput
[1,1,N*K,7] that mixes the images of a batch) each request carries one image,
so scripts see exactly what Datumaro gave them at batch 1. ``stream()`` keeps
requests in flight while the caller prepares its next batch. Unless a script
has a ``normalize()`` hook (which sees the model-layout batch), an NCHW model
takes NHWC images and OpenVINO transposes them in the graph.

Interpretation: see ``interpreters`` (``interpretation_path``: documented-style
scripts build lightweight stand-in annotations, read back by a vectorised
conversion in ``predictions``).

Geometry: ``--rescale pad|crop`` change how the launcher fits images to the
input. Batch scripts (0.x / 1.0) still receive the original images and compute
shapes as if the whole image had been stretched to the input (Datumaro's warp);
the launcher then maps every Bbox/Points/Polygon/PolyLine from that frame to
its true place in the original image (``preprocess.Geometry``). Item scripts
(1.4+) size images themselves, so these flags do not apply to them. Boxes are
therefore always in original image coordinates.
"""
from __future__ import annotations

import argparse
import shutil
import threading
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import openvino as ov
from datumaro.components.annotation import Annotation, AnnotationType, Bbox, LabelCategories

from explain_plugin.errors import CliError
from explain_plugin.translate import openvino_reason, quiet_stderr

from .base import Launcher, Pending
from .interpreters import Interpreter, ItemInterpreter, builtin_interpreter, load_interpreter
from .predictions import (
    Predictions, check_finite_annotations, detections_from_annotations, label_scores,
)
from .preprocess import RESCALE_MODES, fit, map_script_annotations, prepare_batch, to_bgr

__all__ = ["OpenVinoLauncher"]

DEFAULT_BATCH = 8


def _comma_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _resolve(path: str | Path, base_dir: str | Path | None, what: str) -> Path:
    """``path`` as given if absolute, else under ``base_dir``, else under the cwd."""
    p = Path(path)
    candidates = [p] if p.is_absolute() else [Path(base_dir) / p] if base_dir else []
    candidates += [] if p.is_absolute() else [Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c
    where = " or ".join(str(c.parent) for c in candidates)
    raise CliError(f"model {what} file '{path}' not found (looked in {where})")


def _batch_dim_is(shape: ov.PartialShape, n: int) -> bool:
    return shape.rank.is_static and len(shape) > 0 and shape[0].is_static and shape[0].get_length() == n


class _Job:
    """One caller batch: its prepared chunks and, as requests finish, their outputs."""

    def __init__(self, count: int, n_chunks: int):
        self.count = count
        self.outputs: list[Any] = [None] * n_chunks
        self.keep_alive: list[Any] = []  # inputs shared with running requests
        self._left = n_chunks
        self._lock = threading.Lock()
        self.done = threading.Event()
        if not n_chunks:
            self.done.set()

    def deliver(self, index: int, outputs: Any) -> None:
        self.outputs[index] = outputs
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.done.set()


class _OvPending(Pending):
    def __init__(self, launcher: "OpenVinoLauncher", job: _Job, ctx: Any):
        self._launcher, self._job, self._ctx = launcher, job, ctx

    def ready(self) -> bool:
        return self._job.done.is_set()

    def wait(self) -> None:
        self._job.done.wait()

    def result(self) -> list[list[Annotation]]:
        self._job.done.wait()
        return self._launcher._finish(self._job, self._ctx)


class OpenVinoLauncher(Launcher):
    """OpenVINO model + interpreter script (Datumaro 0.x, 1.0-1.3, 1.4, 1.5-1.11)."""

    NAME = "openvino"
    concurrent_submits = True  # requests are handed out under ``_submit_lock``

    @classmethod
    def build_cmdline_parser(cls, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("prog", f"datum model add -l {cls.NAME} --")
        kwargs.setdefault("description", "OpenVINO model options (Datumaro's, plus new ones).")
        parser = argparse.ArgumentParser(**kwargs)
        # Datumaro 1.11's options: always stored, same names and defaults.
        parser.add_argument("-d", "--description", required=True,
                            help="Model file: OpenVINO .xml, or any file openvino reads "
                                 "(ONNX, TFLite, PaddlePaddle; then no -w)")
        parser.add_argument("-w", "--weights", help="Model weights (.bin) for an .xml")
        parser.add_argument("-i", "--interpreter",
                            help="Interpreter script (.py) turning outputs into annotations; "
                                 "without one a single [N,C] output is read as class scores")
        parser.add_argument("--device", default="CPU", help="Target device (default: %(default)s)")
        parser.add_argument("--output-layers", type=_comma_list,
                            help="Comma-separated extra output layers to pass to the script")
        # New options: stored only when given.
        new = dict(default=argparse.SUPPRESS)
        parser.add_argument("--precision", choices=("auto", "f32"), **new,
                            help="Inference precision: the device's default (auto) or f32")
        parser.add_argument("--rescale", choices=RESCALE_MODES, **new,
                            help="Fit images to the input: stretch (warp, default), keep the "
                                 "aspect and pad right/bottom (pad), or fill and centre-crop (crop)")
        parser.add_argument("--color-space", choices=("bgr", "rgb"), **new,
                            help="Channel order the model expects (default: bgr)")
        parser.add_argument("--conf-thresh", type=float, **new,
                            help="Detectors: drop boxes scoring below this")
        parser.add_argument("--iou-thresh", type=float, **new,
                            help="Detectors: per-label non-maximum suppression at this IoU")
        parser.add_argument("--max-objects", type=int, **new,
                            help="Detectors: keep at most this many boxes per image")
        parser.add_argument("--batch-size", type=int, **new,
                            help=f"Images per inference request (default: {DEFAULT_BATCH}, "
                                 "or 1 when the model cannot batch)")
        return parser

    @classmethod
    def copy_model(cls, model_dir: Path, options: dict) -> dict:
        """Copy description, weights (or an .xml's sibling .bin) and interpreter."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        options = dict(options)
        for key in ("description", "weights", "interpreter"):
            if options.get(key):
                src = _resolve(options[key], None, key)
                shutil.copy2(src, model_dir / src.name)
                options[key] = src.name
                if key == "description" and not options.get("weights") and src.suffix.lower() == ".xml":
                    # openvino finds <name>.bin next to <name>.xml: keep the pair together
                    if src.with_suffix(".bin").is_file():
                        shutil.copy2(src.with_suffix(".bin"), model_dir / src.with_suffix(".bin").name)
        return options

    def __init__(
        self,
        *,
        base_dir: str | Path | None = None,
        description: str,
        weights: str | None = None,
        interpreter: str | None = None,
        device: str = "CPU",
        output_layers: Sequence[str] | str | None = None,
        precision: str = "auto",
        rescale: str | None = None,
        color_space: str | None = None,
        conf_thresh: float | None = None,
        iou_thresh: float | None = None,
        max_objects: int | None = None,
        batch_size: int | None = None,
        **unknown: Any,
    ):
        """Options as stored by ``parse_cmdline``; relative paths resolve against
        ``base_dir`` (the model's directory in the project), then the cwd."""
        if unknown:
            raise CliError(f"unknown {self.NAME} launcher option(s): {', '.join(sorted(unknown))}")
        if precision not in ("auto", "f32"):
            raise CliError(f"--precision must be 'auto' or 'f32', got {precision!r}")
        if rescale is not None and rescale not in RESCALE_MODES:
            raise CliError(f"--rescale must be one of {', '.join(RESCALE_MODES)}, got {rescale!r}")
        if color_space is not None and color_space not in ("bgr", "rgb"):
            raise CliError(f"--color-space must be 'bgr' or 'rgb', got {color_space!r}")
        if iou_thresh is not None and not 0 <= iou_thresh <= 1:
            raise CliError(f"--iou-thresh must be within [0, 1], got {iou_thresh}")
        if max_objects is not None and max_objects < 1:
            raise CliError(f"--max-objects must be at least 1, got {max_objects}")
        if batch_size is not None and batch_size < 1:
            raise CliError(f"--batch-size must be at least 1, got {batch_size}")

        self.device = device or "CPU"
        self.precision = precision
        self.conf_thresh, self.iou_thresh, self.max_objects = conf_thresh, iou_thresh, max_objects
        self.description_path = _resolve(description, base_dir, "description")
        self.weights_path = _resolve(weights, base_dir, "weights") if weights else None

        core = ov.Core()
        try:
            with quiet_stderr():
                model = core.read_model(str(self.description_path),
                                        str(self.weights_path) if self.weights_path else None)
        except Exception as exc:
            raise CliError(openvino_reason(exc, f"read model '{self.description_path}'")) from exc
        if isinstance(output_layers, str):
            output_layers = _comma_list(output_layers)
        if output_layers:
            self._add_outputs(model, list(output_layers))

        if interpreter:
            self.interpreter: Interpreter = load_interpreter(_resolve(interpreter, base_dir, "interpreter"))
        else:
            self.interpreter = builtin_interpreter(model)
        self._is_item = isinstance(self.interpreter, ItemInterpreter)
        if self._is_item and (rescale or color_space):
            raise CliError(
                f"--rescale/--color-space apply to process_outputs() interpreters; "
                f"{self.interpreter.name} prepares images in its own preprocess()"
            )
        if not self._is_item and len(model.inputs) != 1:
            raise CliError(
                f"{self.interpreter.name}: a process_outputs() interpreter needs a one-input model, "
                f"this one has {len(model.inputs)}; use a Datumaro 1.5 preprocess() interpreter"
            )
        self.rescale = rescale or "warp"
        self.rgb = color_space == "rgb"

        self._batch, self._per_image, self._short_ok = self._reshape(model, batch_size or DEFAULT_BATCH)
        self._model = model
        self._input = model.inputs[0]
        self._layout = self._detect_layout(self._input.get_partial_shape())
        shape = self._input.get_partial_shape()
        self._hw = (0, 0)
        if shape.rank.is_static and len(shape) == 4:
            hw = (shape[2], shape[3]) if self._layout == "NCHW" else (shape[1], shape[2])
            self._hw = tuple(d.get_length() if d.is_static else 0 for d in hw)
        if not self._is_item and 0 in self._hw:
            raise CliError(
                f"model input {self._name(self._input)} {shape} is not a static [N,3,H,W] or "
                "[N,H,W,3] image; use a Datumaro 1.5 preprocess() interpreter that sizes the images"
            )

        # Images go in as the model takes them: an NHWC -> NCHW transpose inside the graph
        # (PrePostProcessor) measured 4x slower than cv2.split here on small models.
        self._feed_layout = self._layout

        config = {"PERFORMANCE_HINT": "THROUGHPUT"}
        if precision == "f32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        try:
            with quiet_stderr():
                self._compiled = core.compile_model(model, self.device, config)
        except Exception as exc:
            raise CliError(openvino_reason(
                exc, f"compile model '{self.description_path.name}' for device {self.device}"
            )) from exc
        self._requests = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._queue = ov.AsyncInferQueue(self._compiled, self._requests)
        self._queue.set_callback(self._on_done)
        # AsyncInferQueue hands the same idle request to two threads that ask at once.
        self._submit_lock = threading.Lock()
        self._output_names = [self._name(o) for o in self._compiled.outputs]
        self._input_dtypes = {self._name(i): i.get_element_type().to_dtype() for i in self._compiled.inputs}
        # per-batch lookups made once: the input's name, and the geometry of an image
        # already at the input size (a frozen object every such image shares)
        self._input_name = self._name(self._input)
        self._same_size: Any = None

        self.categories_info = dict(self.interpreter.get_categories())
        self.categories = self.categories_info.get(AnnotationType.label) or LabelCategories()
        if not len(self.categories) and self._class_count():
            # no get_categories() (optional in every generation): class ids as names
            self.categories = LabelCategories.from_iterable(map(str, range(self._class_count())))
            self.categories_info[AnnotationType.label] = self.categories

    @property
    def interpretation_path(self) -> str:
        """How the script's annotations are built and read: "fast" (lightweight
        stand-ins for Datumaro's Label/Bbox, vectorised conversion), "exact"
        (Datumaro's own classes: the script inspects or subclasses them) or
        "builtin" (no script)."""
        return self.interpreter.path_taken

    @property
    def interpretation_reason(self) -> str:
        """Why ``interpretation_path`` was taken, in a few words."""
        return self.interpreter.path_reason

    def _class_count(self) -> int:
        """C of a single [N, C] output (a classifier's width), else 0."""
        outputs = self._compiled.outputs
        shape = outputs[0].get_partial_shape()
        if shape.rank.is_static and len(shape) == 2 and shape[1].is_static:
            return shape[1].get_length()
        return 0

    # Model set-up --------------------------------------------------------
    @staticmethod
    def _name(port) -> str:
        try:
            return port.get_any_name()
        except RuntimeError:  # unnamed tensor
            return port.get_node().get_friendly_name()

    @staticmethod
    def _add_outputs(model: ov.Model, layers: list[str]) -> None:
        for layer in layers:
            try:
                model.add_outputs(layer)  # a tensor name
            except Exception:
                try:
                    model.add_outputs([(layer, 0)])  # an operation name
                except Exception:
                    raise CliError(f"--output-layers: the model has no layer or tensor '{layer}'") from None

    @staticmethod
    def _detect_layout(shape: ov.PartialShape) -> str:
        if shape.rank.is_static and len(shape) == 4:
            c1, c3 = shape[1], shape[3]
            if not (c1.is_static and c1.get_length() in (1, 3)) and c3.is_static and c3.get_length() in (1, 3):
                return "NHWC"
        return "NCHW"

    @staticmethod
    def _reshape(model: ov.Model, batch: int) -> tuple[int, bool, bool]:
        """Make the batch dim ``1..batch`` (or static at ``batch``) if the model allows it.

        Returns (images per request, whether every output has one row per image,
        whether requests may carry fewer images: a short batch then costs what its
        images cost, with no padding copies evaluated).
        Outputs that mix a batch's images (DetectionOutput [1,1,N*K,7]) force batch 1.
        """

        def set_batch(dim) -> bool:
            shapes = {}
            for port in model.inputs:
                shape = port.get_partial_shape()
                if not shape.rank.is_static or len(shape) == 0:
                    return False
                shape[0] = dim
                shapes[port] = shape
            try:
                model.reshape(shapes)
            except Exception:
                return False
            return all(o.get_partial_shape().rank.is_static and len(o.get_partial_shape())
                       and o.get_partial_shape()[0] == dim for o in model.outputs)

        per_image = set_batch(ov.Dimension(max(batch, 2)))
        if per_image and batch > 1:
            if set_batch(ov.Dimension(1, batch)):
                return batch, True, True
            set_batch(ov.Dimension(batch))
            return batch, True, False
        if set_batch(ov.Dimension(1)) or _batch_dim_is(model.inputs[0].get_partial_shape(), 1):
            return 1, per_image, False
        # Not reshapeable: keep the model's own static batch.
        shape = model.inputs[0].get_partial_shape()
        n = shape[0].get_length() if shape.rank.is_static and len(shape) and shape[0].is_static else 1
        return n, all(_batch_dim_is(o.get_partial_shape(), n) for o in model.outputs), False

    # Launcher interface --------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        return self._hw

    @property
    def layout(self) -> str:
        return self._layout

    @property
    def batch_size(self) -> int:
        return self._batch

    def view_size(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """The image resized as ``--rescale`` resizes it before any crop or pad, so an
        image of this size needs no resizing here (its crop or pad is a copy)."""
        if self._is_item:  # the script sizes images itself
            return super().view_size(image_hw)
        return fit(tuple(image_hw), self._hw, self.rescale).resized_hw

    def model_window(self, view_hw: tuple[int, int]) -> tuple[slice, slice] | None:
        """The part of a view of this size that reaches the model as it is (no resize,
        no padding; ``--rescale crop`` cuts the rest away), when nothing but the model
        sees the images (no script) and channels keep their order. Masked images then
        need only that window, and may come as the model's input itself:
        [N, 3, H, W] float32 for an NCHW model (``window_layout``)."""
        if self._is_item or self.interpreter.kind != "builtin" or self.rgb:
            return None
        g = fit(tuple(view_hw), self._hw, self.rescale)
        h, w = self._hw
        if g.resized_hw != tuple(view_hw) or (self.rescale != "crop" and g.resized_hw != (h, w)):
            return None
        return slice(g.oy, g.oy + h), slice(g.ox, g.ox + w)

    @property
    def window_layout(self) -> str:
        """Layout of the windowed batches ``submit`` takes as the model input."""
        return self._feed_layout

    @property
    def masked_dtype(self) -> np.dtype:
        """uint8 for a Datumaro 1.5+ script: its ``DatasetItem`` media is 8-bit."""
        takes_item = self._is_item and self.interpreter.takes_item
        return np.dtype(np.uint8 if takes_item else np.float32)

    @property
    def requests(self) -> int:
        """Inference requests kept in flight."""
        return self._requests

    def describe(self) -> dict:
        def port(p):
            return {"name": self._name(p), "shape": str(p.get_partial_shape()),
                    "type": p.get_element_type().get_type_name()}

        precision = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        return {
            "launcher": self.NAME,
            "model": str(self.description_path),
            "interpreter": (
                "none: the [N,C] output read as class scores"
                if self.interpreter.kind == "builtin"
                else f"{self.interpreter.name} (Datumaro {self.interpreter.kind})"
            ),
            "inputs": [port(p) for p in self._compiled.inputs],
            "outputs": [port(p) for p in self._compiled.outputs],
            "layout": self._layout,
            "labels": [c.name for c in self.categories],
            "interpretation": {"path": self.interpretation_path, "reason": self.interpretation_reason},
            "batch": self._batch,
            "requests": self._requests,
            "device": self.device,
            "precision": getattr(precision, "get_type_name", lambda: str(precision))(),
            "rescale": self.rescale,
            "color_space": "rgb" if self.rgb else "bgr",
        }

    def stream(self, batches: Iterable[Sequence[np.ndarray]]) -> Iterator[list[list[Annotation]]]:
        """Yield one list of annotations per image, batch by batch, in order.

        A batch given as one float32 [N,H,W,3] array at the input size is read in
        place by the requests: do not write into it before its results are yielded.

        Batches are read ahead (up to the number of requests + 1) so the device
        works while the caller builds the next one; a finished batch is yielded
        before more input is read.
        """
        pending: deque[tuple[_Job, Any]] = deque()
        source = iter(batches)
        exhausted = False
        lookahead = self._requests + 1
        try:
            while True:
                while pending and pending[0][0].done.is_set():
                    yield self._finish(*pending.popleft())
                if not exhausted and len(pending) < lookahead:
                    try:
                        batch = next(source)
                    except StopIteration:
                        exhausted = True
                        continue
                    pending.append(self._submit(batch))
                    continue
                if not pending:
                    return
                job, ctx = pending.popleft()
                job.done.wait()
                yield self._finish(job, ctx)
        finally:
            if pending:  # closed early: requests still read shared inputs
                self._queue.wait_all()

    def __del__(self) -> None:
        # Let every request's callback finish (waiting without the GIL) before the queue
        # and compiled model go: their destructors join OpenVINO's stream threads while
        # holding the GIL, and a thread still inside a callback waits for it (a deadlock).
        queue = self.__dict__.get("_queue")
        if queue is not None:
            try:
                queue.wait_all()
            except Exception:  # interpreter shutdown: nothing left to protect
                pass

    def submit(self, batch: Sequence[np.ndarray]) -> Pending:
        """Start one batch on the async queue and return at once (the engine's primitive)."""
        return _OvPending(self, *self._submit(batch))

    def padding(self, count: int) -> int:
        if getattr(self, "_short_ok", False):  # short batches run as they are
            return 0
        return -count % self._batch

    # Inference -----------------------------------------------------------
    def _on_done(self, request: ov.InferRequest, userdata: tuple[_Job, int]) -> None:
        job, index = userdata
        try:  # copy: the request's tensors are reused by the next job
            outputs = [request.get_output_tensor(i).data.copy() for i in range(len(self._output_names))]
        except BaseException as exc:  # surfaced in the caller's thread
            outputs = exc
        job.deliver(index, outputs)

    def _submit(self, batch: Sequence[np.ndarray]) -> tuple[_Job, Any]:
        direct = self._direct_input(batch)
        if direct is not None:
            images, (inputs, ctx) = batch, direct
        else:
            # An [N,H,W,3] array (what RISE feeds) is already the stack 0.x scripts get.
            stacked = batch if isinstance(batch, np.ndarray) and batch.ndim == 4 \
                and batch.shape[3] == 3 else None
            images = [to_bgr(image) for image in batch]
        if not len(images):
            return _Job(0, 0), None
        if direct is not None:
            pass
        elif self._is_item:
            inputs, ctx = self._prepare_items(self.interpreter.item_images(images, stacked))
        else:
            inputs, ctx = self._prepare_batch(images, stacked)
        n, b = len(images), self._batch
        job = _Job(n, -(-n // b))
        with self._submit_lock:
            self._start(job, inputs, n, b)
        return job, ctx

    def _start(self, job: "_Job", inputs: dict, n: int, b: int) -> None:
        for index, start in enumerate(range(0, n, b)):
            chunk = {}
            for name, array in inputs.items():
                part = array[start : start + b]
                if len(part) < b and not self._short_ok:  # static batch: pad with copies
                    part = np.concatenate([part, np.repeat(part[-1:], b - len(part), axis=0)])
                chunk[name] = part
            job.keep_alive.append(chunk)
            self._queue.start_async(chunk, userdata=(job, index), share_inputs=True)

    def _direct_input(self, batch: Any) -> tuple[dict, Any] | None:
        """(inputs, ctx) when ``batch`` is already the model's input: an [N,3,H,W] float32
        array for an NCHW model without a script (``model_window``); else None."""
        if (self._feed_layout != "NCHW" or not isinstance(batch, np.ndarray) or batch.ndim != 4
                or batch.shape[1:] != (3, *self._hw) or self.interpreter.kind != "builtin"
                or self.rgb or batch.dtype != np.float32 or not batch.flags.c_contiguous):
            return None
        name = self._input_name
        if self._input_dtypes[name] != np.float32:
            return None
        return {name: batch}, (batch, [self._input_size_fit()] * len(batch))

    def _input_size_fit(self):
        """``fit`` of an image already at the input size (computed once)."""
        if self._same_size is None:
            self._same_size = fit(self._hw, self._hw, self.rescale)
        return self._same_size

    def _prepare_batch(self, images: list[np.ndarray], stacked: np.ndarray | None = None
                       ) -> tuple[dict, Any]:
        same = stacked is not None or len({im.shape for im in images}) == 1
        # Scripts get the original images, stacked NHWC when they share a shape (as in 0.x).
        originals = images
        if same and self.interpreter.kind != "builtin":
            originals = stacked if stacked is not None else np.stack(images)
        name = self._input_name
        if (stacked is not None and self._feed_layout == "NHWC" and not self.rgb
                and stacked.shape[1:3] == self._hw and stacked.dtype == self._input_dtypes[name]
                and stacked.flags.c_contiguous):
            # already the model's input, as images: no copy (requests read it in place)
            return {name: stacked}, (originals, [self._input_size_fit()] * len(stacked))
        model_images = images
        if self.interpreter.kind == "1.0" and same:
            model_images = list(self.interpreter.resize(np.asarray(originals, np.float32)))
        x, geometries = prepare_batch(model_images, self._hw, self.rescale, self._feed_layout, self.rgb)
        x = self.interpreter.normalize(x)
        x = np.ascontiguousarray(x, dtype=self._input_dtypes[name])
        return {name: x}, (originals, geometries)

    def _prepare_items(self, images: list[np.ndarray]) -> tuple[dict, Any]:
        prepared = self.interpreter.preprocess_all(images)
        infos = [info for _, info in prepared]
        names = list(self._input_dtypes)
        grouped: dict[str, list] = {name: [] for name in names}
        for inp, _ in prepared:
            if isinstance(inp, dict):
                for key, value in inp.items():
                    grouped.setdefault(key, []).append(value)
            else:
                grouped[names[0]].append(inp)
        inputs = {}
        for name, values in grouped.items():
            if name not in self._input_dtypes:
                raise CliError(f"{self.interpreter.name}: preprocess() returned input '{name}', "
                               f"the model has {', '.join(names)}")
            if len(values) != len(images):
                raise CliError(f"{self.interpreter.name}: preprocess() gave no value for "
                               f"model input '{name}' for some images")
            try:
                array = np.stack([np.asarray(v) for v in values])
            except ValueError as exc:
                raise CliError(f"{self.interpreter.name}: preprocess() returned inputs of "
                               f"different shapes: {exc}") from None
            rank = len(self._compiled.input(name).get_partial_shape())
            if array.ndim == rank + 1 and array.shape[1] == 1:  # per-item inputs kept a batch dim
                array = array[:, 0]
            inputs[name] = np.ascontiguousarray(array, dtype=self._input_dtypes[name])
        return inputs, infos

    def _outputs(self, job: _Job) -> list[list[np.ndarray]]:
        for out in job.outputs:
            if isinstance(out, BaseException):
                raise CliError(f"inference failed: {type(out).__name__}: {out}") from out
        self._check_finite_outputs(job.outputs)
        return job.outputs

    def _check_finite_outputs(self, chunks: list[list[np.ndarray]]) -> None:
        """NaN or inf straight out of the model (e.g. NaN weights): never explained."""
        for outs in chunks:
            for name, out in zip(self._output_names, outs):
                if out.dtype.kind == "f" and not np.isfinite(out).all():
                    bad = "NaN" if np.isnan(out).any() else "infinite values"
                    raise CliError(
                        f"model '{self.description_path.name}' output '{name}' holds {bad}: "
                        "its weights or graph give invalid numbers; check or re-export the model"
                    )

    def _finish(self, job: _Job, ctx: Any) -> list[list[Annotation]]:
        if not job.count:
            return []
        chunks = self._outputs(job)
        n, b = job.count, self._batch
        if self._is_item:
            preds = [{name: out[i % b] for name, out in zip(self._output_names, chunks[i // b])}
                     for i in range(len(ctx))]
            results = self.interpreter.postprocess_all(preds, ctx)
        else:
            originals, geometries = ctx
            if self._per_image:  # one script call for the whole batch, as Datumaro made it
                groups = [(0, n, [np.concatenate(parts)[:n] for parts in zip(*chunks)])]
            else:  # outputs may mix a request's images: one script call per request
                groups = [(i * b, min(n, i * b + b), outs) for i, outs in enumerate(chunks)]
            results = []
            for start, stop, outs in groups:
                outputs = outs[0] if len(outs) == 1 else dict(zip(self._output_names, outs))
                results += self.interpreter.process_outputs(originals[start:stop], outputs, stop - start)
            results = [map_script_annotations(anns, g) for anns, g in zip(results, geometries)]
        # One pass over a Label-only batch both checks it and reads its score rows,
        # which scores_from_annotations then takes as they are.
        scores = label_scores(results, len(self.categories)) if len(self.categories) else None
        if scores is None and self.interpreter.kind != "builtin":
            check_finite_annotations(results, source=self.interpreter.name)
        return Predictions([self._filter(anns) for anns in results], scores)

    # Detector post-filters -------------------------------------------------
    def _filter(self, anns: list[Annotation]) -> list[Annotation]:
        """Apply --conf-thresh, per-label NMS (--iou-thresh) and --max-objects to Bboxes."""
        if self.conf_thresh is None and self.iou_thresh is None and self.max_objects is None:
            return anns
        boxes = [a for a in anns if isinstance(a, Bbox)]
        if not boxes:
            return anns
        num_classes = len(self.categories) or 1 + max(b.label or 0 for b in boxes)
        dets = detections_from_annotations(boxes, num_classes, source=self.interpreter.name)
        keep = np.arange(len(dets))
        if self.conf_thresh is not None:
            keep = keep[dets.scores >= self.conf_thresh]
        if self.iou_thresh is not None:
            keep = keep[dets.subset(keep).nms(self.iou_thresh)]
        else:
            keep = keep[np.argsort(-dets.scores[keep], kind="stable")]
        if self.max_objects is not None:
            keep = keep[: self.max_objects]
        return [a for a in anns if not isinstance(a, Bbox)] + [boxes[i] for i in keep]
