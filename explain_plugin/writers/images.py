"""Heatmaps, saliency arrays and overlays for one explained image."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from explain_plugin.atomic import _UMASK, atomic_write_bytes
from explain_plugin.errors import CliError
from explain_plugin.methods.base import ExplainedTarget, Snapshot
from explain_plugin.names import check_inside


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


def encode_png(image: np.ndarray, level: int | None = None) -> bytes:
    """PNG bytes; ``level`` 0..9 trades size for speed (OpenCV's default: 1 is ~5x faster)."""
    import cv2

    params = [] if level is None else [cv2.IMWRITE_PNG_COMPRESSION, int(level)]
    ok, buf = cv2.imencode(".png", image, params)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


_BAND_ROWS = 256  # overlays are blended in bands: no full-size colour map is ever held


def to_grey(saliency: np.ndarray) -> np.ndarray:
    """A [h, w] map in [0, 1] as uint8 0..255."""
    if saliency.dtype == np.uint8:
        return saliency
    return np.round(np.clip(saliency, 0, 1) * 255).astype(np.uint8)


def resize_grey(grey: np.ndarray, height: int, width: int) -> np.ndarray:
    """A uint8 map resized to (height, width), bilinear: 1 byte per pixel at full size."""
    import cv2

    if grey.shape == (height, width):
        return grey
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_LINEAR)


def _band_of(grey: np.ndarray, y0: int, rows: int, height: int, width: int) -> np.ndarray:
    """Rows y0 .. y0+rows of the uint8 map ``grey`` bilinearly resized to (height, width):
    the sampling of ``cv2.resize``, without the full-size map ever existing."""
    import cv2

    if grey.shape == (height, width):
        return grey[y0:y0 + rows]
    sh, sw = grey.shape
    sy, sx = sh / height, sw / width
    warp = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, (y0 + 0.5) * sy - 0.5]], np.float64)
    return cv2.warpAffine(grey, warp, (width, rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def overlay(image: np.ndarray, saliency: np.ndarray, target: ExplainedTarget) -> np.ndarray:
    """A colour map of ``saliency`` (uint8 0..255 or float 0..1, any size) over ``image``,
    with label, score and box drawn; built in uint8, band by band."""
    import cv2

    h, w = image.shape[:2]
    small = to_grey(saliency)
    out = np.empty((h, w, 3), np.uint8)
    for y in range(0, h, _BAND_ROWS):
        rows = slice(y, y + _BAND_ROWS)
        part = image[rows]
        if part.dtype != np.uint8:
            part = np.clip(part, 0, 255).astype(np.uint8)
        grey = _band_of(small, y, len(part), h, w)
        heat = cv2.applyColorMap(grey, cv2.COLORMAP_JET)
        cv2.addWeighted(part, 0.5, heat, 0.5, 0, dst=out[rows])
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


MAP_MAX_SIDE = 1024  # saved arrays: a map has far less information than a big photo's pixels


def map_size(height: int, width: int, max_side: int = MAP_MAX_SIDE) -> tuple[int, int]:
    """The saved map's (h, w): the image's size, scaled down so its longest side <= max_side."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def map_info(image_hw: tuple[int, int]) -> dict:
    """What run.json says about the saved arrays: size, dtype, image pixels per map pixel."""
    h, w = image_hw
    mh, mw = map_size(h, w)
    return {"array_size": [mh, mw], "array_dtype": "float16", "image_size": [h, w],
            "scale": [h / mh, w / mw]}


def check_finite(snap: Snapshot, what: str) -> None:
    """Refuse to write anything made from NaN or infinite numbers."""
    if not np.isfinite(snap.maps).all():
        raise CliError(f"{what}: the map holds NaN or infinite values (non-finite model "
                       "scores); nothing was written: check the model and its interpreter")
    for t in snap.targets:
        numbers = [t.score, *(t.box or ())]
        if not np.isfinite(np.asarray(numbers, np.float64)).all():
            part = "box" if t.box is not None and not np.isfinite(t.box).all() else "score"
            raise CliError(f"{what}: target '{t.name}' has a non-finite {part} "
                           f"({t.box if part == 'box' else t.score}); nothing was written: "
                           "check the model and its interpreter")


class ImageWriter:
    """Writes one item's explanation under ``out_dir`` (``stem`` may contain '/').

    An item's files appear together or not at all: each is written to a temp file
    first and all are renamed into place at the end.
    """

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)

    def _path(self, name: str) -> Path:
        path = self.out_dir / name
        check_inside(path, self.out_dir, "output file")
        return path

    def write_final(self, stem: str, image: np.ndarray, snap: Snapshot) -> list[str]:
        """``<stem>-heatmap-<j>.png`` (8-bit grey, the image's size: Datumaro's name),
        ``<stem>-<label>.npy`` (float16, at most MAP_MAX_SIDE a side, see ``map_info``)
        and ``<stem>-<label>-overlay.png`` (the image's size)."""
        check_finite(snap, f"item '{stem}'")
        h, w = image.shape[:2]
        mh, mw = map_size(h, w)
        with _Staged() as staged:
            for j, (key, target, sal) in enumerate(zip(target_keys(snap.targets), snap.targets,
                                                       snap.maps)):
                # One full-size array at a time: the grey heatmap, then the overlay.
                grey = resize_grey(to_grey(sal), h, w)
                staged.add(self._path(f"{stem}-heatmap-{j}.png"), encode_png(grey))
                del grey
                small = upsample(sal[None].astype(np.float32), mh, mw)[0]
                buf = io.BytesIO()
                np.save(buf, np.clip(small, 0, 1).astype(np.float16))
                staged.add(self._path(f"{stem}-{key}.npy"), buf.getvalue())
                over = overlay(image, sal, target)
                staged.add(self._path(f"{stem}-{key}-overlay.png"), encode_png(over))
                del over
            staged.commit()
        return staged.names(self.out_dir)

    def write_snapshot(self, stem: str, image: np.ndarray, snap: Snapshot) -> list[str]:
        """``progress/<stem>-<label>-<masks>.png``: overlays of an intermediate map."""
        check_finite(snap, f"item '{stem}'")
        files = []
        for key, target, sal in zip(target_keys(snap.targets), snap.targets, snap.maps):
            name = f"progress/{stem}-{key}-{snap.masks_used:06d}.png"
            atomic_write_bytes(self._path(name), encode_png(overlay(image, sal, target)))
            files.append(name)
        return files


class _Staged:
    """Temp files (``.NAME.*.tmp``, which the next run cleans if killed) renamed together."""

    def __init__(self):
        self._pending: list[tuple[str, Path]] = []
        self._done = False

    def __enter__(self) -> "_Staged":
        return self

    def add(self, path: Path, data: bytes) -> None:
        import os
        import tempfile

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self._pending.append((tmp, path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)

    def commit(self) -> None:
        import os

        for tmp, path in self._pending:
            os.replace(tmp, path)
        self._done = True

    def names(self, root: Path) -> list[str]:
        return [path.relative_to(root).as_posix() for _, path in self._pending]

    def __exit__(self, *exc) -> None:
        import os

        if not self._done:
            for tmp, _ in self._pending:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
