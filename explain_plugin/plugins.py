"""The plugin manager: third-party plugins from the ``datum`` entry-point group,
then this package's own default plugins, all through the same hooks."""
from __future__ import annotations

import importlib
from functools import lru_cache

import pluggy

from explain_plugin import hookspecs

DEFAULT_PLUGINS = (
    "explain_plugin.default_plugins.datumaro_commands",
    "explain_plugin.default_plugins.project_commands",
    "explain_plugin.default_plugins.model_commands",
    "explain_plugin.default_plugins.project_vcs_commands",
    "explain_plugin.default_plugins.source_commands",
    "explain_plugin.default_plugins.explain_command",
    "explain_plugin.default_plugins.openvino_launcher",
    "explain_plugin.default_plugins.rex_script_launcher",
    "explain_plugin.default_plugins.rise_method",
    "explain_plugin.default_plugins.rex_method",
    "explain_plugin.default_plugins.segments_method",
)


def make_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    return pm


@lru_cache(maxsize=None)
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager."""
    return make_plugin_manager()


def collect(hook_name: str, pm: pluggy.PluginManager | None = None) -> list:
    """Call a ``register_*(register)`` hook; return what the plugins registered."""
    pm = pm or get_plugin_manager()
    items: list = []
    getattr(pm.hook, hook_name)(register=items.append)
    return items


def context_plugin_manager(ctx) -> pluggy.PluginManager:
    """The plugin manager the running ``datum`` was built with."""
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("plugin_manager") is not None:
        return obj["plugin_manager"]
    return get_plugin_manager()
