"""Datumaro 1.13's own commands, run by datumaro's CLI with the arguments as given;
with ``-p PROJECT`` or a project target, on the project's dataset (1.11's way)."""
from __future__ import annotations

import click

from explain_plugin.hookspecs import hookimpl

# Names and help lines as datumaro 1.13's CLI lists them (a test keeps them in
# sync); listed here so ``datum --help`` need not import datumaro (~1 s).
DATUMARO_COMMANDS = {
    "util": "Auxillary tools and utilities",
    "convert": "Convert dataset between formats",
    "detect": "Detect the format of a dataset",
    "compare": "Compare datasets",
    "dinfo": "Print dataset info",
    "download": "Download a publicly available dataset",
    "filter": "Filter dataset items",
    "merge": "Merge datasets",
    "patch": "Update dataset from another one",
    "stats": "Compute dataset statistics",
    "transform": "Modify dataset items",
    "validate": "Validate dataset",
    "format": "List and show information about supported import/export data formats",
}


class PassthroughCommand(click.Command):
    """A command that hands its arguments, untouched (``--`` and ``--help`` too),
    to datumaro's own CLI and exits with its exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.params["args"] = list(args)
        return []

    def invoke(self, ctx: click.Context) -> None:
        from datumaro.cli.__main__ import main as datumaro_main

        loglevel = ctx.find_root().params.get("loglevel")
        from explain_plugin.project import dataset_commands

        if dataset_commands.uses_project(self.name, ctx.params["args"]):
            ctx.exit(dataset_commands.run(self.name, list(ctx.params["args"]), loglevel))
        argv = (["--loglevel", loglevel] if loglevel else []) + [self.name, *ctx.params["args"]]
        ctx.exit(datumaro_main(argv) or 0)


def passthrough_command(name: str, help_line: str) -> click.Command:
    return PassthroughCommand(
        name=name, short_help=help_line, add_help_option=False,
        help=f"{help_line} (Datumaro's '{name}': see 'datum {name} --help').",
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    for name, help_line in DATUMARO_COMMANDS.items():
        cli.add_command(passthrough_command(name, help_line))
