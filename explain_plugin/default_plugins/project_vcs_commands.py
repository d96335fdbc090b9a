"""Datumaro 1.11's other ``project`` commands: add, export, migrate, and history
(commit, checkout, log, status), added to the ``project`` group."""
from __future__ import annotations

import click

from explain_plugin.cli_args import project_option
from explain_plugin.hookspecs import hookimpl

FILTER_MODES = {"i": "items", "items": "items", "a": "annotations", "annotations": "annotations",
                "i+a": "items+annotations", "a+i": "items+annotations",
                "items+annotations": "items+annotations",
                "annotations+items": "items+annotations"}


class RawArgsCommand(click.Command):
    """Keeps the raw arguments: click drops '--', which 1.11's commands used to
    tell a target or revision from what follows it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["raw_args"] = list(args)
        return super().parse_args(ctx, args)


def split_at_separator(ctx: click.Context, args: tuple[str, ...]) -> tuple[list, list, bool]:
    """(positionals before '--', after it, whether '--' was given)."""
    raw = ctx.meta.get("raw_args", [])
    if "--" not in raw:
        return list(args), [], False
    after = len(raw) - raw.index("--") - 1
    cut = len(args) - after
    return list(args[:cut]), list(args[cut:]), True


def filter_kwargs(mode: str) -> dict:
    """Dataset.filter() arguments for 1.11's -m/--mode (i, a, i+a)."""
    from explain_plugin.errors import CliError

    kind = FILTER_MODES.get(mode.lower().replace("_", "+"))
    if kind is None:
        raise CliError(f"unknown filter mode '{mode}': use one of i, a, i+a")
    if kind == "items":
        return {}
    if kind == "annotations":
        return {"filter_annotations": True}
    return {"filter_annotations": True, "remove_empty": True}


def exporter_args(fmt: str, extra_args: list[str], prog: str) -> tuple[object, dict]:
    from datumaro.components.environment import Environment

    from explain_plugin.cli_args import parse_plugin_args
    from explain_plugin.errors import CliError

    exporters = Environment().exporters
    if fmt not in exporters:
        raise CliError(f"unknown export format '{fmt}': 'datum format' lists the formats")
    exporter = exporters[fmt]
    parser = exporter.build_cmdline_parser(prog=prog)
    return exporter, parse_plugin_args(parser, extra_args, f"format '{fmt}'")


def output_dir(dst_dir: str | None, overwrite: bool, default_stem: str):
    """1.11's rules: an existing non-empty -o needs --overwrite; no -o: a new folder here."""
    import os
    from pathlib import Path

    from explain_plugin.errors import CliError

    if dst_dir:
        path = Path(dst_dir)
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise CliError(f"directory '{dst_dir}' already exists and is not empty: "
                           "pass --overwrite to replace it")
        return path.resolve()
    taken = set(os.listdir("."))
    name, n = default_stem, 1
    while name in taken:
        name, n = f"{default_stem}.{n}", n + 1
    return Path(name).resolve()


def export_atomically(dataset, dst, exporter, options: dict) -> None:
    """Export into a temp folder beside ``dst``, then swap it in."""
    import shutil
    import tempfile
    from pathlib import Path

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        dataset.export(str(tmp / "out"), exporter, **options)
        old = tmp / "old"
        if dst.exists():
            dst.rename(old)
        (tmp / "out").rename(dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@click.command("add", cls=RawArgsCommand)
@project_option
@click.option("-f", "--format", "fmt", required=True, help="Source dataset format.")
@click.option("-r", "--path", "rpath", default=None,
              help="The dataset inside the folder to read: a subfolder or file.")
@click.option("--no-check", is_flag=True, help="Do not read the source.")
@click.argument("path", type=click.Path())
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED)
def add(project_dir: str, fmt: str, rpath: str | None, no_check: bool, path: str,
        extra_args: tuple) -> None:
    """Register a folder in the project root as a source (no copy). Format options follow '--'."""
    from datumaro.components.environment import Environment

    from explain_plugin.cli_args import parse_plugin_args
    from explain_plugin.errors import CliError
    from explain_plugin.project import Project

    project = Project.open(project_dir)
    importers = Environment().importers
    if fmt not in importers:
        raise CliError(f"unknown dataset format '{fmt}': 'datum format' lists the formats")
    parser = importers[fmt].build_cmdline_parser(prog=f"datum project add -f {fmt} PATH --")
    options = parse_plugin_args(parser, extra_args, f"format '{fmt}'")
    name = project.add_source(path, fmt, options=options, rpath=rpath, check=not no_check)
    project.save()
    click.echo(f"Source '{name}' with format '{fmt}' has been added to the project")


@click.command("export", cls=RawArgsCommand,
               context_settings={"ignore_unknown_options": True})
@project_option
@click.option("-f", "--format", "fmt", required=True, help="Output format.")
@click.option("-o", "--output-dir", "dst_dir", default=None, type=click.Path(file_okay=False),
              help="Output folder (default: export-FORMAT here).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
@click.option("-e", "--filter", "filter_expr", default=None, help="XPath filter of items.")
@click.option("--filter-mode", default="i", show_default=True, help="Filter mode: i, a, i+a.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def export(ctx: click.Context, project_dir: str, fmt: str, dst_dir: str | None, overwrite: bool,
           filter_expr: str | None, filter_mode: str, args: tuple) -> None:
    """Export the project, or one source: [TARGET] [-- EXPORTER OPTIONS]."""
    from explain_plugin.errors import CliError
    from explain_plugin.project import Project

    before, after, has_sep = split_at_separator(ctx, args)
    if not has_sep:  # no '--': options of the exporter are what starts with '-'
        first_opt = next((i for i, a in enumerate(before) if a.startswith("-")), len(before))
        before, after = before[:first_opt], before[first_opt:]
    if len(before) > 1:
        raise CliError(f"expected at most one target, got {' '.join(before)}: "
                       "put exporter options after '--'")
    target = before[0] if before else "project"
    exporter, options = exporter_args(fmt, after, f"datum project export -f {fmt} --")
    project = Project.open(project_dir)
    dst = output_dir(dst_dir, overwrite, f"export-{fmt}")
    dataset = project.make_dataset(target) if target in project.sources or target == "project" \
        else _unknown_target(project, target)
    if filter_expr:
        dataset = dataset.filter(filter_expr, **filter_kwargs(filter_mode))
    export_atomically(dataset, dst, exporter, options)
    click.echo(f"Results have been saved to '{dst}'")


def _unknown_target(project, target: str):
    from explain_plugin.errors import CliError

    known = ", ".join(["project", *sorted(project.sources)])
    raise CliError(f"unknown target '{target}' (targets: {known})")


@click.command("commit")
@project_option
@click.option("-m", "--message", required=True, help="Commit message.")
@click.option("--allow-empty", is_flag=True, help="Allow a commit with no changes.")
@click.option("--allow-foreign", is_flag=True, help="Allow sources changed outside datum.")
@click.option("--no-cache", is_flag=True, help="Record data hashes only; do not store the data.")
def commit(project_dir: str, message: str, allow_empty: bool, allow_foreign: bool,
           no_cache: bool) -> None:
    """Create a revision from the working tree (data stored with DVC)."""
    from explain_plugin.project import Project
    from explain_plugin.project.revisions import History

    history = History(Project.open(project_dir))
    sha, changes = history.commit(message, allow_empty=allow_empty,
                                  allow_foreign=allow_foreign, no_cache=no_cache)
    click.echo(f"Moved to commit '{sha}' {message}")
    click.echo(f" {len(changes)} targets changed")
    for target, status in changes.items():
        click.echo(f" {status} {target}")


@click.command("checkout", cls=RawArgsCommand)
@project_option
@click.option("-f", "--force", is_flag=True, help="Discard unsaved changes of the tree.")
@click.argument("args", nargs=-1)
@click.pass_context
def checkout(ctx: click.Context, project_dir: str, force: bool, args: tuple) -> None:
    """Restore a revision: [REV] | [REV] [--] SOURCE... (sources' data only)."""
    from explain_plugin.errors import CliError
    from explain_plugin.project import Project
    from explain_plugin.project.revisions import History

    before, after, has_sep = split_at_separator(ctx, args)
    if has_sep:
        if len(before) > 1:
            raise CliError("expected at most one revision before '--'")
        if not after:
            raise CliError("with '--', name at least one source to restore")
        rev, sources = (before[0] if before else None), after
    else:
        rev, sources = (before[0] if before else None), before[1:]
    History(Project.open(project_dir)).checkout(rev, sources, force=force)


@click.command("log")
@project_option
@click.option("-n", "--max-count", default=10, show_default=True, type=int,
              help="How many of the last commits to print.")
def log(project_dir: str, max_count: int) -> None:
    """Print the project's history."""
    from explain_plugin.project import Project
    from explain_plugin.project.revisions import History

    history = History(Project.open(project_dir))
    entries = history.git.log(max_count) if history.git.initialized else []
    for sha, message in entries:
        click.echo(f"{sha} {message}")
    if not entries:
        click.echo("(Project history is empty)")


@click.command("status")
@project_option
def status(project_dir: str) -> None:
    """Print the changes of the working tree against HEAD."""
    from explain_plugin.project import Project
    from explain_plugin.project.revisions import History

    history = History(Project.open(project_dir))
    history.require_history()
    branch = history.git.branch
    if branch:
        click.echo(f"On branch '{branch}', commit {history.git.head}")
    else:
        click.echo(f"HEAD is detached at commit {history.git.head}")
    statuses = history.status()
    for target, state in statuses.items():
        click.echo(f"{state}\t{target}")
    if not statuses:
        click.echo("Working directory clean")


@click.command("migrate")
@project_option
@click.option("-o", "--output-dir", "dst_dir", required=True, type=click.Path(file_okay=False),
              help="Where to write the migrated (v2) project.")
@click.option("-f", "--force", is_flag=True, help="Skip sources that fail to import.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty output folder.")
def migrate(project_dir: str, dst_dir: str, force: bool, overwrite: bool) -> None:
    """Copy a Datumaro 0.1 (v1) project into a new v2 project."""
    from explain_plugin.project.migrate import migrate_v1

    root = migrate_v1(project_dir, dst_dir, skip_errors=force, overwrite=overwrite)
    click.echo(f"Migrated project saved at '{root}'")


COMMANDS = (add, export, commit, checkout, log, status, migrate)


@hookimpl(trylast=True)
def register_commands(cli: click.Group) -> None:
    group = cli.commands.get("project")
    if isinstance(group, click.Group):
        for command in COMMANDS:
            group.add_command(command)
