"""Heatmaps, saliency arrays and overlays for one explained image."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from explain_plugin.atomic import atomic_write_bytes
from explain_plugin.methods.base import ExplainedTarget, Snapshot


def safe_name(text: str) -> str:
    """A label as a file-name part."""
    return re.sub(r"[^\w.+-]+", "_", text).strip("_") or "label"


def target_keys(targets: list[ExplainedTarget]) -> list[str]:
    """File-name keys: the label, with the target's index where a label repeats."""
    names = [safe_name(t.name) for t in targets]
    return [n if names.count(n) == 1 else f"{n}-{j}" for j, n in enumerate(names)]


# OpenCV resizes at most 512 channels in one call (CV_CN_MAX)
_CV_MAX_CHANNELS = 512


def upsample(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """[T, h, w] maps -> [T, height, width] float32, bilinear (maps are smooth);
    any number of maps (resized in chunks OpenCV accepts)."""
    import cv2

    maps = np.asarray(maps, np.float32)
    out = np.empty((len(maps), height, width), np.float32)
    for start in range(0, len(maps), _CV_MAX_CHANNELS):
        chunk = maps[start : start + _CV_MAX_CHANNELS]
        stacked = np.ascontiguousarray(chunk.transpose(1, 2, 0))
        resized = cv2.resize(stacked, (width, height), interpolation=cv2.INTER_LINEAR)
        out[start : start + len(chunk)] = resized.reshape(height, width, -1).transpose(2, 0, 1)
    return out


def encode_png(image: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def overlay(image: np.ndarray, saliency: np.ndarray, target: ExplainedTarget) -> np.ndarray:
    """A colour map of ``saliency`` over ``image``, with label, score and box drawn."""
    import cv2

    heat = cv2.applyColorMap(np.uint8(np.clip(saliency, 0, 1) * 255), cv2.COLORMAP_JET)
    out = cv2.addWeighted(np.clip(image, 0, 255).astype(np.uint8), 0.5, heat, 0.5, 0)
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 300))
    if target.box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in target.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (255, 255, 255), thick + 1)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 0), thick)
    text = f"{target.name}: {target.score:.3f}"
    scale = max(0.4, max(h, w) / 800)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
    cv2.putText(out, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                cv2.LINE_AA)
    return out


class ImageWriter:
    """Writes one item's explanation under ``out_dir`` (``stem`` may contain '/')."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)

    def write_final(self, stem: str, image: np.ndarray, snap: Snapshot) -> list[str]:
        """``<stem>-heatmap-<j>.png`` (8-bit grey, Datumaro's name), ``<stem>-<label>.npy``
        (float32, the image's resolution) and ``<stem>-<label>-overlay.png``."""
        h, w = image.shape[:2]
        maps = upsample(snap.maps, h, w)
        files = []
        for j, (key, target, sal) in enumerate(zip(target_keys(snap.targets), snap.targets, maps)):
            grey = f"{stem}-heatmap-{j}.png"
            npy = f"{stem}-{key}.npy"
            over = f"{stem}-{key}-overlay.png"
            atomic_write_bytes(self.out_dir / grey, encode_png(np.uint8(np.round(sal * 255))))
            buf = io.BytesIO()
            np.save(buf, sal.astype(np.float32))
            atomic_write_bytes(self.out_dir / npy, buf.getvalue())
            atomic_write_bytes(self.out_dir / over, encode_png(overlay(image, sal, target)))
            files += [grey, npy, over]
        return files

    def write_snapshot(self, stem: str, image: np.ndarray, snap: Snapshot) -> list[str]:
        """``progress/<stem>-<label>-<masks>.png``: overlays of an intermediate map."""
        h, w = image.shape[:2]
        maps = upsample(snap.maps, h, w)
        files = []
        for key, target, sal in zip(target_keys(snap.targets), snap.targets, maps):
            name = f"progress/{stem}-{key}-{snap.masks_used:06d}.png"
            atomic_write_bytes(self.out_dir / name, encode_png(overlay(image, sal, target)))
            files.append(name)
        return files
