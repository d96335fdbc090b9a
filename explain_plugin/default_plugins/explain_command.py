"""``datum explain``: its methods are plugins (``register_explain_methods``)."""
from __future__ import annotations

import click

from explain_plugin.cli_args import project_option
from explain_plugin.executors import executor_options
from explain_plugin.hookspecs import hookimpl

_VALUE_OPTIONS = {"-m", "--model", "-t", "--target", "-o", "--output-dir", "-p", "--project",
                  "--subset", "--filter", "--ids", "--limit", "-n", "--name", "--remove",
                  "--executor", "--address", "--workers", "--cpus-per-worker"}


class ExplainGroup(click.Group):
    """Methods are loaded only when ``explain`` runs; an optional TARGET may stand
    before the method name (Datumaro 1.x) as well as ``-t TARGET`` (0.x); options may
    follow TARGET (the method name, not the first argument, ends the group's part)."""

    allow_interspersed_args = True

    def _methods(self, ctx: click.Context) -> dict[str, type]:
        from explain_plugin.plugins import collect, context_plugin_manager

        pm = context_plugin_manager(ctx)
        return {m.name: m for m in collect("register_explain_methods", pm)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._methods(ctx))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        method = self._methods(ctx).get(name)
        return None if method is None else method_command(method)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--list" in args or "--remove" in args:  # run management: no method needed
            return click.Command.parse_args(self, ctx, args)
        methods = self._methods(ctx)
        split = next((i for i, a in enumerate(args)
                      if a in methods and (i == 0 or args[i - 1] not in _VALUE_OPTIONS)), None)
        if split is None:
            return super().parse_args(ctx, args)
        click.Command.parse_args(self, ctx, args[:split])
        ctx._protected_args, ctx.args = args[split:split + 1], args[split + 1:]
        return ctx.args


def method_command(method: type) -> click.Command:
    def callback(**params):
        from explain_plugin.explain_run import run_explain

        ctx = click.get_current_context()
        group = dict(ctx.parent.params)
        for key in ("list_runs", "remove_run"):
            group.pop(key, None)
        if not group.get("model_name"):
            raise click.UsageError("Missing option '-m' / '--model'.")
        run_explain(method, params, **group)

    return click.Command(method.name, callback=callback, params=method.options(),
                         help=method.help, short_help=method.help)


@click.group("explain", cls=ExplainGroup, invoke_without_command=True,
             short_help="Explain a model's predictions (RISE, ...).")
@project_option
@click.option("-m", "--model", "model_name", default=None, help="Model name in the project.")
@click.option("-t", "--target", "target_option", default=None,
              help="Image path or project target (Datumaro 0.x form).")
@click.option("-o", "--output-dir", "output_dir", default=None, type=click.Path(file_okay=False),
              help="Where to save results (default: <project>/explanations/<run-id>/).")
@click.option("--overwrite", is_flag=True, help="Start over instead of resuming a run.")
@click.option("--subset", "subsets", multiple=True,
              help="Dataset runs: only items of this subset (repeatable).")
@click.option("--filter", "filter_expr", default=None,
              help="Dataset runs: Datumaro's XPath item filter, e.g. \"/item[subset='val']\".")
@click.option("--ids", default=None,
              help="Dataset runs: only these items (ID or SUBSET/ID, comma-separated, "
                   "or @FILE with one a line).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Dataset runs: at most N items.")
@click.option("-n", "--name", "run_name", default=None,
              help="Dataset runs: the run's name (default: METHOD-MODEL-HASH).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@executor_options
@click.option("--list", "list_runs", is_flag=True, help="List the project's explanation runs.")
@click.option("--remove", "remove_run", default=None, metavar="RUN",
              help="Delete an explanation run from the project.")
@click.argument("target", required=False)
@click.pass_context
def explain_group(ctx: click.Context, **params) -> None:
    """Explain what a model looks at: datum explain -m MODEL [-t TARGET | TARGET] METHOD [...].

    TARGET is an image path, 'project' (the default), a source name or PATH:FORMAT.
    A dataset run is saved into the project as explanations/RUN/ (a Datumaro
    dataset with report.html); --list and --remove RUN manage runs.
    """
    if params["list_runs"] or params["remove_run"]:
        from explain_plugin.project import Project
        from explain_plugin.store import registry

        project = Project.open(params["project_dir"])
        if params["remove_run"]:
            path = registry.remove_run(project, params["remove_run"])
            click.echo(f"Removed explanation run '{params['remove_run']}' ({path})")
        else:
            lines = registry.list_runs(project)
            click.echo("\n".join(["Explanation runs:", *lines]) if lines
                       else "Explanation runs: none")
        return
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(2)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(explain_group)
