"""``datum explain``: its methods are plugins (``register_explain_methods``)."""
from __future__ import annotations

import click

from explain_plugin.cli_args import project_option
from explain_plugin.hookspecs import hookimpl

_VALUE_OPTIONS = {"-m", "--model", "-t", "--target", "-o", "--output-dir", "-p", "--project"}


class ExplainGroup(click.Group):
    """Methods are loaded only when ``explain`` runs; an optional TARGET may stand
    before the method name (Datumaro 1.x) as well as ``-t TARGET`` (0.x)."""

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
        run_explain(method, params, **ctx.parent.params)

    return click.Command(method.name, callback=callback, params=method.options(),
                         help=method.help, short_help=method.help)


@click.group("explain", cls=ExplainGroup, short_help="Explain a model's predictions (RISE, ...).")
@project_option
@click.option("-m", "--model", "model_name", required=True, help="Model name in the project.")
@click.option("-t", "--target", "target_option", default=None,
              help="Image path or project target (Datumaro 0.x form).")
@click.option("-o", "--output-dir", "output_dir", default=None, type=click.Path(file_okay=False),
              help="Where to save results (default: <project>/explanations/<run-id>/).")
@click.option("--overwrite", is_flag=True, help="Start over instead of resuming a run.")
@click.argument("target", required=False)
def explain_group(**_params) -> None:
    """Explain what a model looks at: datum explain -m MODEL [-t TARGET | TARGET] METHOD [...].

    TARGET is an image path, 'project' (the default), a source name or PATH:FORMAT.
    """


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(explain_group)
