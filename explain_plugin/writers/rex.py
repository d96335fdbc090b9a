"""ReX's own outputs, next to the heatmaps every method writes: the responsibility map
(``.npy``), each explanation as a 1-bit PNG mask at the image's size, and an overlay
outlining the explanation(s) on the image."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from explain_plugin.atomic import atomic_write_bytes
from explain_plugin.methods.base import Snapshot

# Outline colours (BGR) of successive explanations on the overlay.
COLOURS = [(0, 255, 255), (255, 0, 255), (255, 255, 0), (0, 128, 255), (0, 255, 0)]


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool [height, width]: a view-size mask at the image's size (nearest)."""
    import cv2

    if mask.shape == (height, width):
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.uint8), (width, height),
                      interpolation=cv2.INTER_NEAREST).astype(bool)


def bilevel_png(mask: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8),
                           [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def outline(image: np.ndarray, masks: list[np.ndarray], label: str) -> np.ndarray:
    """The image, dimmed outside the explanations, each explanation outlined."""
    import cv2

    out = np.clip(image, 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    union = np.zeros(out.shape[:2], bool)
    for m in masks:
        union |= m
    out = np.where(union[..., None], out, (out * 0.35).astype(np.uint8))
    thick = max(1, round(max(out.shape[:2]) / 250))
    for j, m in enumerate(masks):
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, COLOURS[j % len(COLOURS)], thick)
    scale = max(0.4, max(out.shape[:2]) / 800)
    cv2.putText(out, label, (4, int(18 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), max(1, thick), cv2.LINE_AA)
    return out


def write_rex(out_dir: Path, stem: str, image: np.ndarray, snap: Snapshot) -> list[str]:
    """``<stem>-<label>-responsibility.npy`` (float32, image size, unnormalised),
    ``<stem>-<label>-explanation[-j].png`` (1-bit) and
    ``<stem>-<label>-explanation-overlay.png``; returns the file names."""
    import cv2

    from explain_plugin.writers.images import encode_png, target_keys

    out_dir = Path(out_dir)
    h, w = image.shape[:2]
    resp = snap.extra.get("responsibility")
    explanations = snap.extra.get("explanations") or [[] for _ in snap.targets]
    files = []
    for t, (key, target) in enumerate(zip(target_keys(snap.targets), snap.targets)):
        if resp is not None:
            name = f"{stem}-{key}-responsibility.npy"
            full = cv2.resize(np.asarray(resp[t], np.float32), (w, h),
                              interpolation=cv2.INTER_NEAREST)
            buf = io.BytesIO()
            np.save(buf, full.astype(np.float32))
            atomic_write_bytes(out_dir / name, buf.getvalue())
            files.append(name)
        masks = [resize_mask(m, h, w) for m in explanations[t]]
        for j, m in enumerate(masks):
            name = f"{stem}-{key}-explanation{'' if j == 0 else f'-{j}'}.png"
            atomic_write_bytes(out_dir / name, bilevel_png(m))
            files.append(name)
        if masks:
            name = f"{stem}-{key}-explanation-overlay.png"
            text = f"{target.name}: {target.score:.3f}"
            atomic_write_bytes(out_dir / name, encode_png(outline(image, masks, text)))
            files.append(name)
    return files
