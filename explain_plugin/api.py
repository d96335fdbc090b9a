"""The Python API, for notebooks and scripts; ``datum explain`` runs on it too.

    from explain_plugin import api
    model = api.load_model("my_project", "classifier")          # or api.load_model(
    #     description="model.xml", interpreter="interp.py")        #     an IR + a script
    result = api.explain(model, "cat.jpg", "rise", max_samples=2000, targets="top:2")
    result.maps, result.targets, result.stats, result.metrics    # maps at the image's size
    result.overlay(0)                                            # BGR uint8 image
    result.save("out/")                                          # PNG/NPY files, like the CLI
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from explain_plugin.errors import CliError


def load_model(project: str | Path | None = None, name: str | None = None, *,
               launcher: str = "openvino", **options: Any):
    """A project's model by name, or a model from files: ``load_model(description=
    "m.xml", interpreter="s.py", ...)`` with the launcher's options."""
    from explain_plugin.models import launcher_class, load_launcher

    if project is not None:
        from explain_plugin.project import Project

        proj = Project.open(project)
        return load_launcher(proj, name or next(iter(proj.models), ""))
    if not options.get("description"):
        raise CliError("load_model: give a project (and model name) or description=MODEL_FILE")
    return launcher_class(launcher)(**options)


def method_class(name: str) -> type:
    """An explanation method registered by a plugin (``rise``, ...)."""
    from explain_plugin.plugins import collect

    methods = {m.name: m for m in collect("register_explain_methods")}
    if name not in methods:
        raise CliError(f"unknown method '{name}' (known: {', '.join(sorted(methods))})")
    return methods[name]


def read_image(image: str | Path | np.ndarray) -> np.ndarray:
    """HWC BGR from a path or an array (grey and BGRA are converted)."""
    from explain_plugin.launchers.preprocess import to_bgr

    if isinstance(image, (str, Path)):
        import cv2

        data = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        if data is None:
            raise CliError(f"cannot read image '{image}'")
        image = data
    image = to_bgr(np.asarray(image))
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.float32)
    return np.ascontiguousarray(image)


@dataclass
class Explanation:
    """One explained image: the final snapshot of a method, with what to do with it."""

    image: np.ndarray
    snapshot: Any  # methods.base.Snapshot, final
    seconds: float = 0.0
    method: Any = None  # the ExplainMethod that made it
    _maps: np.ndarray | None = field(default=None, repr=False)

    @property
    def targets(self) -> list:
        return self.snapshot.targets

    @property
    def maps(self) -> np.ndarray:
        """float32 [T, H, W] in [0, 1] at the image's size."""
        if self._maps is None:
            from explain_plugin.methods.view import upsample

            self._maps = upsample(self.snapshot.maps, *self.image.shape[:2])
        return self._maps

    @property
    def metrics(self) -> list[dict | None] | None:
        return self.snapshot.metrics

    @property
    def notes(self) -> list[str]:
        return self.snapshot.notes

    @property
    def stats(self) -> dict[str, Any]:
        snap = self.snapshot
        return {"masks_used": snap.masks_used, "converged": snap.converged,
                "evaluations": dict(snap.evaluations), "seconds": round(self.seconds, 4),
                **{k: v for k, v in snap.extra.items() if isinstance(v, (int, float, str))}}

    def overlay(self, index: int = 0) -> np.ndarray:
        """The map of target ``index`` over the image, with label, score and box."""
        from explain_plugin.writers.images import overlay

        return overlay(self.image, self.snapshot.maps[index], self.targets[index])

    def save(self, out_dir: str | Path, stem: str = "image") -> list[str]:
        """Heatmaps, ``.npy`` maps and overlays, as ``datum explain`` writes them."""
        from explain_plugin.writers.images import ImageWriter

        files = ImageWriter(Path(out_dir)).write_final(stem, self.image, self.snapshot)
        if self.method is not None:
            files += self.method.write_outputs(Path(out_dir), stem, self.image, self.snapshot)
        return files

    def record(self, files: list[str] | None = None) -> dict[str, Any]:
        """The ``run.json`` entry of this item."""
        targets = []
        metrics = self.metrics or []
        for j, t in enumerate(self.targets):
            entry = {"label": t.label, "name": t.name, "score": t.score, "box": t.box}
            if j < len(metrics) and metrics[j] is not None:
                entry["metrics"] = metrics[j]
            targets.append(entry)
        snap = self.snapshot
        record = {"files": list(files or []), "masks_used": snap.masks_used,
                  "converged": snap.converged, "seconds": round(self.seconds, 4),
                  "targets": targets}
        if snap.evaluations:
            record["evaluations"] = dict(snap.evaluations)
        if snap.notes:
            record["notes"] = list(snap.notes)
        record.update(snap.extra.get("record", {}))  # a method's own entries (e.g. ReX's stats)
        return record


def run_method(method, launcher, image: np.ndarray, *, progress=None, item=None,
               on_snapshot: Callable[[Any], None] | None = None) -> Explanation:
    """Drive ``method.explain`` to its final snapshot; ``on_snapshot`` sees every
    snapshot (intermediate and final) as it comes."""
    started = time.perf_counter()
    context = {"item": item} if getattr(method, "takes_item", False) else {}
    snap = None
    for snap in method.explain(launcher, image, progress=progress, **context):
        if on_snapshot is not None:
            on_snapshot(snap)
    if snap is None or not snap.final:
        raise CliError(f"method '{method.name}' ended without a final map "
                       "(a bug in the method: its explain() must end with final=True)")
    return Explanation(image, snap, time.perf_counter() - started, method)


def explain(model, image: str | Path | np.ndarray, method: str | type = "rise", *,
            item=None, progress=None, **options: Any) -> Explanation:
    """Explain one image with a method and its options (the CLI's names, e.g.
    ``max_samples=2000``; defaults as on the command line)."""
    cls = method_class(method) if isinstance(method, str) else method
    return run_method(cls.with_defaults(**options), model, read_image(image),
                      progress=progress, item=item)


def item_info(item, dataset=None):
    """A Datumaro item's ground truth as methods see it: label names and boxes."""
    from datumaro.components.annotation import AnnotationType, Bbox, Label

    from explain_plugin.methods.base import ItemInfo

    try:
        names = [c.name for c in dataset.categories()[AnnotationType.label]]
    except (KeyError, AttributeError, TypeError):
        names = []

    def name(label):
        return names[label] if label is not None and 0 <= label < len(names) else str(label)

    boxes = [(name(a.label), (a.x, a.y, a.x + a.w, a.y + a.h))
             for a in item.annotations if isinstance(a, Bbox)]
    labels = [name(a.label) for a in item.annotations if isinstance(a, Label)]
    return ItemInfo(str(item.id), boxes, labels)
