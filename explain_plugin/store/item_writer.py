"""One explained item into the run store: overlays, float16 heatmaps, then its shard.

The shard (``items/<hash>.json``) is written last and atomically: it is the only
proof that an item is finished, so a run killed mid-item leaves nothing a rerun
would trust (stray overlays or heatmaps are simply rewritten).
"""
from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from explain_plugin.atomic import atomic_write_bytes, atomic_write_text
from explain_plugin.store.layout import RunLayout

MAX_SIDE = 768  # maps, masks and overlays are stored at most this big (aspect kept)
TOP_REGION = 0.2  # RISE's region: the top 20% of the map's pixels


def store_size(h: int, w: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    scale = min(1.0, max_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def top_region(saliency: np.ndarray, fraction: float = TOP_REGION,
               sample: np.ndarray | None = None) -> np.ndarray:
    """bool mask of the ``fraction`` most salient pixels (none for a flat map).

    ``sample``: the same map at a lower resolution (the method's own), whose quantile
    stands in for the full map's (a smooth map's quantiles barely move on upsampling).
    """
    ref = saliency if sample is None else sample
    lo, hi = float(ref.min()), float(ref.max())
    if not ref.size or hi <= lo:
        return np.zeros(saliency.shape, dtype=bool)
    k = min(ref.size - 1, int(round((1.0 - fraction) * (ref.size - 1))))
    cut = float(np.partition(ref.ravel(), k)[k])
    return saliency >= max(cut, float(np.nextafter(np.float32(lo), np.float32(1))))


def rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE, as Datumaro's format stores masks."""
    from pycocotools import mask as mask_utils

    enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = enc["counts"]
    return {"counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
            "size": [int(s) for s in enc["size"]]}


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


class ItemWriter:
    """Writes items of one run; ``params_digest`` marks shards of this run's parameters."""

    def __init__(self, layout: RunLayout, method: str, params_digest: str):
        self.layout, self.method, self.digest = layout, method, params_digest

    def finished(self, subset: str, item_id: str) -> dict | None:
        """The item's shard when it was finished with the same parameters."""
        path = self.layout.shard(subset, item_id)
        try:
            shard = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if shard.get("params") != self.digest or shard.get("id") != item_id \
                or shard.get("subset") != subset:
            return None
        return shard

    def write(self, *, key: str, subset: str, item_id: str, image: np.ndarray,
              maps: np.ndarray, targets: list[dict], regions: list[np.ndarray | None],
              info: dict[str, Any]) -> dict:
        """``maps`` [T, h, w] in [0, 1] at any size; ``targets`` dicts with label, name,
        score, role, box, metrics, region_kind; ``regions`` the explanation masks (None:
        the map's top region). Returns the shard."""
        from explain_plugin.writers.images import encode_png, overlay, upsample
        from explain_plugin.methods.base import ExplainedTarget

        h0, w0 = image.shape[:2]
        h, w = store_size(h0, w0)
        sx, sy = w / w0, h / h0
        small = image
        if (h, w) != (h0, w0):
            import cv2

            small = cv2.resize(np.clip(image, 0, 255).astype(np.uint8), (w, h),
                               interpolation=cv2.INTER_AREA)
        full = upsample(np.asarray(maps, dtype=np.float32), h, w) if len(maps) else maps
        anns, rows, files = [], [], []
        images_dir = self.layout.root / self.layout.images_dir(subset)
        first_overlay = None
        for j, (t, sal) in enumerate(zip(targets, full)):
            box = t.get("box")
            sbox = None if box is None else (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
            ov_rel = self.layout.overlay(subset, item_id, j, t["name"])
            hm_rel = self.layout.heatmap(subset, item_id, j, t["name"])
            atomic_write_bytes(self.layout.root / hm_rel, npy_bytes(sal.astype(np.float16)))
            shown = ExplainedTarget(t["label"], t["name"], t["score"], sbox)
            atomic_write_bytes(images_dir / ov_rel, encode_png(overlay(small, sal, shown),
                                                                level=1))
            first_overlay = first_overlay or ov_rel
            region = regions[j] if j < len(regions) and regions[j] is not None else None
            region_kind = t.get("region_kind") or ("method" if region is not None else None)
            if region is None:
                region, region_kind = top_region(sal), f"top{int(TOP_REGION * 100)}"
            else:
                region = _resize_mask(region, h, w)
            overlay_rel = f"{self.layout.images_dir(subset)}/{ov_rel}"
            files += [hm_rel, overlay_rel]
            metrics = {k: v for k, v in (t.get("metrics") or {}).items() if v is not None}
            attributes = {
                "method": self.method, "target": t["name"], "role": t.get("role", "pred"),
                "score": round(float(t["score"]), 6), "region": region_kind,
                "heatmap": hm_rel, "overlay": overlay_rel,
                **{f"metric_{k}": v for k, v in metrics.items()},
            }
            if box is not None:
                attributes["box"] = [round(float(v), 2) for v in box]
            anns.append({"id": j, "type": "mask", "attributes": attributes, "group": 0,
                         "label_id": int(t["label"]), "rle": rle(region), "z_order": 0})
            rows.append({"label": t["name"], "role": t.get("role", "pred"),
                         "score": float(t["score"]), "heatmap": hm_rel,
                         "overlay": overlay_rel, **metrics})
        if isinstance(info.get("record"), dict):  # run.json's entry lists every file
            info["record"]["files"] = files + list(info["record"].get("files") or [])
        shard = {
            "params": self.digest, "key": key, "id": item_id, "subset": subset,
            "size": [h, w], "source_size": [h0, w0],
            "image": first_overlay, "annotations": anns, "targets": rows, **info,
        }
        atomic_write_text(self.layout.shard(subset, item_id), json.dumps(shard) + "\n")
        return shard


def _resize_mask(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    mask = np.asarray(mask)
    if mask.shape == (h, w):
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
