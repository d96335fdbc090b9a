"""Shared click options and argparse glue for the ``-- ARGS`` of plugins."""
from __future__ import annotations

import argparse
from typing import Sequence

import click

from explain_plugin.errors import CliError

project_option = click.option(
    "-p", "--project", "project_dir", default=".", show_default=True,
    type=click.Path(file_okay=False), help="Directory of the project to operate on.",
)


def parse_plugin_args(parser: argparse.ArgumentParser, args: Sequence[str], what: str) -> dict:
    """``vars(parser.parse_args(args))``, with argparse's errors as one-line CliErrors."""
    args = list(args)
    if args and args[0] == "--":
        args = args[1:]

    def error(message: str):
        raise CliError(f"bad arguments for {what}: {message} (see '{parser.prog} --help')")

    parser.error = error  # type: ignore[method-assign]
    return vars(parser.parse_args(args))
