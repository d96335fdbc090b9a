"""The model registry: launcher kinds from plugins, models from the project."""
from __future__ import annotations

from functools import lru_cache

import pluggy

from explain_plugin.errors import CliError
from explain_plugin.launchers.base import Launcher
from explain_plugin.plugins import collect, get_plugin_manager


@lru_cache(maxsize=None)
def _launchers(pm: pluggy.PluginManager) -> dict[str, type[Launcher]]:
    return {cls.NAME: cls for cls in collect("register_launchers", pm)}


def launcher_classes(pm: pluggy.PluginManager | None = None) -> dict[str, type[Launcher]]:
    """Launcher kinds registered by plugins, by name."""
    return _launchers(pm or get_plugin_manager())


def launcher_class(name: str, pm: pluggy.PluginManager | None = None) -> type[Launcher]:
    classes = launcher_classes(pm)
    try:
        return classes[name]
    except KeyError:
        raise CliError(
            f"unknown launcher '{name}' (known: {', '.join(sorted(classes)) or 'none'}): "
            "install the plugin that provides it or pick a known one with -l"
        ) from None


def load_launcher(project, model_name: str) -> Launcher:
    """Instantiate a project's model: its launcher with its stored options."""
    entry = project.model(model_name)
    cls = launcher_class(entry.get("launcher", ""))
    options = dict(entry.get("options") or {})
    project.check_model_options(model_name, cls.build_cmdline_parser(), options)
    return cls(base_dir=project.model_base_dir(model_name), **options)
