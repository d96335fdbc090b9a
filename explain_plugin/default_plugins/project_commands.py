"""``datum project``: create, import, info and remove, on Datumaro-format projects."""
from __future__ import annotations

import click

from explain_plugin.cli_args import project_option
from explain_plugin.hookspecs import hookimpl


@click.group("project", short_help="Manage projects (Datumaro <= 1.11 compatible).")
def project_group() -> None:
    """Create and inspect Datumaro projects: format v2 (0.2 .. 1.11), and v1 (0.1.x) read."""


@project_group.command("create")
@click.option("-o", "--output-dir", "dst_dir", default=".", show_default=True,
              type=click.Path(file_okay=False), help="Where to create the project.")
@click.option("--overwrite", is_flag=True, help="Replace an existing project there.")
def create(dst_dir: str, overwrite: bool) -> None:
    """Create an empty project."""
    from explain_plugin.project import Project

    project = Project.create(dst_dir, overwrite=overwrite)
    from explain_plugin.project.revisions import init_history

    init_history(project)
    click.echo(f"Created project at '{project.root}'")


@project_group.command("import")
@project_option
@click.option("-f", "--format", "fmt", required=True, help="Dataset format (see 'datum format').")
@click.option("-n", "--name", default=None, help="Source name (default: source-N).")
@click.option("-r", "--path", "rpath", default=None,
              help="The dataset inside PATH to read: a subfolder or file (all of PATH is copied).")
@click.option("--no-check", is_flag=True, help="Do not read the source after copying it.")
@click.argument("path", type=click.Path())
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED)
def import_(project_dir: str, fmt: str, name: str | None, rpath: str | None, no_check: bool,
            path: str, extra_args: tuple) -> None:
    """Copy a dataset at PATH into the project as a source. Format options follow '--'."""
    from datumaro.components.environment import Environment

    from explain_plugin.cli_args import parse_plugin_args
    from explain_plugin.errors import CliError
    from explain_plugin.project import Project

    project = Project.open(project_dir)
    importers = Environment().importers
    if fmt not in importers:
        raise CliError(f"unknown dataset format '{fmt}': 'datum format' lists the formats")
    importer = importers[fmt]
    parser = importer.build_cmdline_parser(prog=f"datum project import -f {fmt} PATH --")
    options = parse_plugin_args(parser, extra_args, f"format '{fmt}'")
    name = project.import_source(path, fmt, name=name, options=options, rpath=rpath,
                                 check=not no_check)
    project.save()
    click.echo(f"Source '{name}' has been added to the project")


@project_group.command("remove")
@project_option
@click.option("--keep-data", is_flag=True, help="Keep the source's data folder.")
@click.option("--force", is_flag=True, help="Do not stop on unknown names.")
@click.argument("names", nargs=-1, required=True)
def remove(project_dir: str, keep_data: bool, force: bool, names: tuple[str, ...]) -> None:
    """Remove sources from the project."""
    from explain_plugin.project import Project

    project = Project.open(project_dir)
    for name in names:
        if not force:
            project.source(name)  # check them all before changing anything
    for name in names:
        project.remove_source(name, keep_data=keep_data, force=force)
    project.save()
    click.echo(f"Removed source(s): {', '.join(names)}")


@project_group.command("info")
@project_option
@click.option("--no-count", is_flag=True, help="Do not load sources to count their items.")
@click.argument("revision", default="", required=False)
def info(project_dir: str, no_count: bool, revision: str) -> None:
    """Show the project's sources and models (of REVISION: its sources and build stages)."""
    from explain_plugin.project import Project

    project = Project.open(project_dir)
    if revision:
        from explain_plugin.project.revisions import describe_revision

        click.echo("\n".join(describe_revision(project, revision)))
        return
    lines = ["Project:", f"  location: {project.root}", f"  format version: {project.version}"]
    lines.append("Sources:" if project.sources else "Sources: none")
    for name, source in project.sources.items():
        lines.append(f"  '{name}':")
        lines.append(f"    format: {source.get('format')}")
        lines.append(f"    url: {source.get('url') or ''}")
        lines.append(f"    location: {project.source_location(name)}")
        lines.append(f"    options: {source.get('options') or {}}")
        if not no_count:
            lines.append(f"    items: {len(project.make_dataset(name))}")
    lines.append("Models:" if project.models else "Models: none")
    for name, model in project.models.items():
        lines.append(f"  '{name}':")
        lines.append(f"    launcher: {model.get('launcher')}")
        for key, value in (model.get("options") or {}).items():
            lines.append(f"    {key}: {value}")
    from explain_plugin.store.registry import list_runs

    runs = list_runs(project)
    lines += ["Explanation runs:", *runs] if runs else ["Explanation runs: none"]
    click.echo("\n".join(lines))


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(project_group)
