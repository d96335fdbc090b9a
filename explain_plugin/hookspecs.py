"""The whole extension surface of ``datum``: every hook a plugin may implement.

Built-in commands, launchers and explanation methods register through these
same hooks (see ``explain_plugin/default_plugins``).
"""
from __future__ import annotations

from typing import Callable

import click
import pluggy

PROJECT_NAME = "datum"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the top-level ``datum`` group.

    Import heavy modules (datumaro, openvino) inside the command body, not at
    module level: ``datum --help`` must stay fast.
    """


@hookspec
def register_launchers(register: Callable[[type], None]) -> None:
    """Register model launcher classes: ``register(LauncherClass)``.

    A launcher class has a ``NAME`` (the ``-l`` value of ``datum model add``) and
    declares its ``-- ARGS`` through ``build_cmdline_parser()``; see
    ``explain_plugin.launchers.base.Launcher``.
    """


@hookspec
def register_explain_methods(register: Callable[[object], None]) -> None:
    """Register explanation methods: ``register(method)``.

    ``method`` is an ``explain_plugin.methods.base.ExplainMethod``: a ``name``
    (the subcommand of ``datum explain``), its click options and an
    ``explain()`` generator; see that module.
    """
