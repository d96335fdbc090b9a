"""``datum project migrate``: a Datumaro 0.1 (v1) project copied into a new v2 project."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from explain_plugin.errors import CliError


def migrate_v1(src_dir: str, dst_dir: str, skip_errors: bool = False,
               overwrite: bool = False) -> Path:
    """Import every v1 source into a new project at ``dst_dir`` and carry the models
    over (their relative paths made absolute unless the files were copied in)."""
    from explain_plugin.project import Project
    from explain_plugin.project.revisions import init_history

    old = Project.open(src_dir)
    if old.version != 1:
        raise CliError(f"project at {old.root} is already a v2 project: nothing to migrate")
    dst = Path(dst_dir).resolve()
    if dst.is_dir() and any(dst.iterdir()) and not overwrite:
        raise CliError(f"directory '{dst_dir}' already exists and is not empty: "
                       "pass --overwrite to write into it")
    new = Project.create(dst, overwrite=overwrite)
    for name, source in old.sources.items():
        try:
            new.import_source(old.source_location(name), source.get("format"), name=name,
                              options=source.get("options") or {})
        except CliError as e:
            if not skip_errors:
                raise CliError(f"cannot migrate source '{name}': {e} "
                               "(pass -f/--force to skip it)") from e
            logging.getLogger(__name__).warning("skipped source '%s': %s", name, e)
    for name, model in old.models.items():
        model = {"launcher": model.get("launcher"), "options": dict(model.get("options") or {})}
        copied = old.model_dir(name)
        if copied.is_dir():
            shutil.copytree(copied, new.model_dir(name))
        else:
            base = old.model_base_dir(name)
            for key, value in model["options"].items():
                if isinstance(value, str) and value and (base / value).exists():
                    model["options"][key] = str((base / value).resolve())
        new.add_model(name, model["launcher"], model["options"])
    new.save()
    init_history(new)
    return new.root
