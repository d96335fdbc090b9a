"""The ``datum`` click group: its commands come from plugins."""
from __future__ import annotations

import logging
import os
import sys
import traceback

import click
import pluggy

from explain_plugin import __version__
from explain_plugin.errors import CliError

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMAT = "%(asctime)s %(levelname)s: %(message)s"  # Datumaro's


def _version_message() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        dm = version("datumaro")
    except PackageNotFoundError:
        dm = "not installed"
    return f"datum (explain-plugin) {__version__}, datumaro {dm}"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_message())
        ctx.exit()


def make_cli(pm: pluggy.PluginManager | None = None) -> click.Group:
    """Build the top-level group and let every plugin add its commands."""
    from explain_plugin.plugins import get_plugin_manager

    @click.group(
        name="datum",
        help="Dataset Framework: Datumaro's commands plus plugin commands "
        "(projects, models, explanations).",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.option("--version", is_flag=True, expose_value=False, is_eager=True,
                  callback=_print_version, help="Show the versions and exit.")
    @click.option("--loglevel", type=click.Choice(LOG_LEVELS), default="info", show_default=True,
                  help="Logging level.")
    def cli(loglevel: str) -> None:
        logging.basicConfig(format=LOG_FORMAT)
        logging.getLogger().setLevel(loglevel.upper())

    cli.plugin_manager = pm or get_plugin_manager()
    cli.plugin_manager.hook.register_commands(cli=cli)
    return cli


def main(argv: list[str] | None = None, pm: pluggy.PluginManager | None = None) -> int:
    """Run ``datum``; user errors become one line on stderr and exit code 1, Ctrl-C 130."""
    try:
        return _main(argv, pm)
    finally:
        from explain_plugin.writers.manifest import close_all

        close_all()  # a failed or interrupted run releases its folder


def _main(argv: list[str] | None, pm: pluggy.PluginManager | None) -> int:
    try:
        cli = make_cli(pm)
        result = cli.main(args=argv, prog_name="datum", standalone_mode=False,
                          obj={"plugin_manager": cli.plugin_manager})
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:  # one line, like every other user error
        names, ctx = [], e.ctx
        while ctx is not None:
            names.insert(0, ctx.info_name or "")
            ctx = ctx.parent
        where = f" (see '{' '.join(n for n in names if n)} --help')" if names else ""
        click.echo(f"Error: {e.format_message()}{where}", err=True)
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort as e:  # with standalone_mode=False, click's form of Ctrl-C
        if isinstance(e.__context__, KeyboardInterrupt):
            return _interrupted()
        click.echo("Aborted.", err=True)
        return 1
    except KeyboardInterrupt:
        return _interrupted()
    except CliError as e:
        _debug_traceback()
        click.echo(f"Error: {e}", err=True)
        return 1
    except Exception as e:  # a bug or an unforeseen failure: still one line
        _debug_traceback()
        click.echo(f"Error: {type(e).__name__}: {e} (run with --loglevel debug for a traceback)",
                   err=True)
        return 1
    return result if isinstance(result, int) else 0


def _interrupted() -> int:
    from explain_plugin.writers.manifest import interrupted_message

    click.echo(interrupted_message() or "interrupted: rerun the same command to resume",
               err=True)
    return 130


def _debug_traceback() -> None:
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        traceback.print_exc()


def run() -> None:
    """Console-script entry point."""
    code = main()
    if code == 130:
        # Interrupted: every result is already saved and the run folder released. Skip
        # the interpreter's teardown, where native thread pools (OpenVINO's, OpenCV's)
        # still winding down from the interrupted work can abort the process
        # ("terminate called without an active exception", exit -6) after the
        # one-line message.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
