"""ReX's settings: command-line options over ``rex.toml`` (ReX's own keys) over defaults."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from explain_plugin.errors import CliError

DEFAULTS: dict[str, Any] = {
    "iters": 20,
    "tree_depth": 10,
    "min_box_size": 10,
    "queue_len": 1,
    # ReX's default is none; past ~30 evaluations an iteration refines boxes too small to
    # move the explanation (bench/rex_bench.py: same area and deletion AUC at half the cost).
    "search_limit": 30,
    "confidence_filter": 0.0,
    "mask_value": "0",
    "distribution": "uniform",
    "distribution_args": (1.1, 1.1),
    "strategy": "global",
    "multi": 3,
    "seed": 0,
    "chunk_size": None,  # default: min_box_size, as ReX
    "minimum_confidence_threshold": 0.0,
    "spatial_radius": 25.0,
    "spatial_eta": 0.2,
    "no_expansions": 4,
    "permitted_overlap": 0.0,
}

# rex.toml [section] key -> our setting (keys of ReX's that apply here).
TOML_KEYS = {
    ("rex", "mask_value"): "mask_value",
    ("rex", "seed"): "seed",
    ("causal", "iters"): "iters",
    ("causal", "tree_depth"): "tree_depth",
    ("causal", "min_box_size"): "min_box_size",
    ("causal", "search_limit"): "search_limit",
    ("causal", "confidence_filter"): "confidence_filter",
    ("causal", "queue_len"): "queue_len",
    ("causal.distribution", "distribution"): "distribution",
    ("causal.distribution", "distribution_args"): "distribution_args",
    ("causal.distribution", "dist_args"): "distribution_args",
    ("explanation", "chunk_size"): "chunk_size",
    ("explanation", "minimum_confidence_threshold"): "minimum_confidence_threshold",
    ("explanation.spatial", "initial_radius"): "spatial_radius",
    ("explanation.spatial", "spotlight_initial_radius"): "spatial_radius",
    ("explanation.spatial", "radius_eta"): "spatial_eta",
    ("explanation.spatial", "spotlight_radius_eta"): "spatial_eta",
    ("explanation.spatial", "no_expansions"): "no_expansions",
    ("explanation.multi", "spotlights"): "multi",
    ("explanation.multi", "permitted_overlap"): "permitted_overlap",
}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Our settings from a ReX config file; keys ReX has that do not apply here are
    ignored, unknown ones are an error (a typo must not pass silently)."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise CliError(f"cannot read ReX config '{path}': {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise CliError(f"ReX config '{path}' is not valid TOML: {e}") from None
    out: dict[str, Any] = {}

    def walk(section: str, table: dict) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(f"{section}.{key}" if section else key, value)
                continue
            name = TOML_KEYS.get((section, key))
            if name is not None:
                out[name] = value
            elif section.split(".")[0] not in ("rex", "causal", "explanation"):
                raise CliError(f"ReX config '{path}': unknown section [{section}]: ReX's are "
                               "[rex], [causal] and [explanation] (and their subsections)")
    walk("", data)
    if out.get("mask_value") is not None:
        out["mask_value"] = str(out["mask_value"])
    if out.get("queue_len") == "all":
        out["queue_len"] = None
    return out


def settings(params: dict[str, Any]) -> dict[str, Any]:
    """The run's settings: options given on the command line (not None) over the
    config file over DEFAULTS."""
    merged = dict(DEFAULTS)
    config = params.get("config")
    if isinstance(config, dict):  # read on the command line (see ``config_callback``)
        merged.update(config["settings"])
    elif config:
        merged.update(read_toml(config))
    merged.update({k: v for k, v in params.items() if v is not None and k in DEFAULTS})
    if merged["mask_value"] not in ("0", "mean", "blur"):
        raise CliError(f"mask_value '{merged['mask_value']}' is not supported: use 0, mean or blur")
    if merged["distribution"] not in ("uniform", "betabinom"):
        raise CliError(f"distribution '{merged['distribution']}' is not supported: "
                       "use uniform or betabinom")
    if merged["queue_len"] == "all":
        merged["queue_len"] = None
    if merged["chunk_size"] is None:
        merged["chunk_size"] = merged["min_box_size"]
    return merged


def config_callback(ctx, param, value):
    """``-c rex.toml`` read as the command line is parsed: the run's identity (and so
    its resume check) then holds the file's settings, not only its path."""
    if not value:
        return None
    return {"path": str(value), "settings": read_toml(value)}
