"""Datumaro 1.11's ``source`` context: import, add, remove and info of project sources."""
from __future__ import annotations

import click

from explain_plugin.cli_args import project_option
from explain_plugin.hookspecs import hookimpl


@click.group("source", short_help="Manage the data sources of a project (Datumaro 1.11).")
def source_group() -> None:
    """Import, add, remove and list the data sources of a project."""


@source_group.command("info")
@project_option
@click.option("-v", "--verbose", is_flag=True, help="Show each source's config.")
@click.argument("name", required=False)
def info(project_dir: str, verbose: bool, name: str | None) -> None:
    """List the sources, or show one's config."""
    from explain_plugin.project import Project

    project = Project.open(project_dir)
    if name:
        click.echo(dict(project.source(name)))
        return
    for source_name, conf in project.sources.items():
        click.echo(source_name)
        if verbose:
            click.echo(dict(conf))


@hookimpl(trylast=True)
def register_commands(cli: click.Group) -> None:
    """Shares ``import``, ``add`` and ``remove`` with the ``project`` group, as 1.11 did."""
    project = cli.commands.get("project")
    if isinstance(project, click.Group):
        for name in ("import", "add", "remove"):
            if name in project.commands:
                source_group.add_command(project.commands[name], name)
    cli.add_command(source_group)
