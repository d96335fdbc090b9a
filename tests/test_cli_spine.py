"""The pluggy-hosted ``datum``: Datumaro's commands pass through, plugins add theirs."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import click
import pluggy

from explain_plugin.default_plugins.datumaro_commands import DATUMARO_COMMANDS
from explain_plugin.hookspecs import hookimpl
from explain_plugin.plugins import make_plugin_manager


def test_help_lists_datumaro_and_plugin_commands(datum):
    result = datum("--help")
    assert result.code == 0
    for name in list(DATUMARO_COMMANDS) + ["project", "model", "explain"]:
        assert f"  {name} " in result.out, name


def test_help_does_not_import_datumaro_or_openvino():
    code = textwrap.dedent("""
        import sys
        from explain_plugin.cli import main
        rc = main(["--help"])
        heavy = [m for m in ("datumaro", "openvino", "cv2") if m in sys.modules]
        print("HEAVY", heavy, rc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "HEAVY [] 0" in out


def test_command_list_matches_datumaro():
    from datumaro.cli.__main__ import _get_helper_commands, _get_known_contexts
    from datumaro.cli.commands import get_non_project_commands

    theirs = {name: help_line for name, _, help_line in
              _get_known_contexts() + get_non_project_commands() + _get_helper_commands()}
    assert theirs == DATUMARO_COMMANDS


def test_version_shows_both(datum):
    from importlib.metadata import version

    result = datum("--version")
    assert result.code == 0
    assert "explain-plugin" in result.out and version("datumaro") in result.out


def test_convert_passes_through(datum, image_dir, tmp_path):
    """Same exit code and output files as datumaro's own CLI."""
    from datumaro.cli.__main__ import main as datumaro_main

    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    result = datum("convert", "-i", image_dir, "-if", "image_dir", "-o", ours, "-f", "datumaro",
                   "--", "--save-media")
    assert result.code == 0, result
    assert datumaro_main(["convert", "-i", str(image_dir), "-if", "image_dir", "-o", str(theirs),
                          "-f", "datumaro", "--", "--save-media"]) == 0
    files = sorted(p.relative_to(ours).as_posix() for p in ours.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(theirs).as_posix()
                           for p in theirs.rglob("*") if p.is_file())
    assert any(f.endswith("img0.png") for f in files)


def test_passthrough_exit_code_on_error(datum, tmp_path):
    from datumaro.cli.__main__ import main as datumaro_main

    args = ["convert", "-i", str(tmp_path / "missing"), "-if", "image_dir", "-f", "datumaro",
            "-o", str(tmp_path / "o")]
    ours = datum(*args).code
    try:
        theirs = datumaro_main(args)
    except Exception:  # datumaro re-raises unexpected errors after logging them
        theirs = 1
    assert ours == theirs != 0


def test_loglevel_is_accepted(datum):
    assert datum("--loglevel", "debug", "project", "--help").code == 0


def test_a_plugin_adds_a_command(datum):
    class HelloPlugin:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.command("hello")
            @click.argument("who")
            def hello(who: str) -> None:
                click.echo(f"hello {who}")

    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(HelloPlugin())
    assert "hello" in datum("--help", pm=pm).out
    result = datum("hello", "world", pm=pm)
    assert result.code == 0 and result.out.strip() == "hello world"


def test_entry_point_plugin_is_loaded(tmp_path):
    """A third-party package registered under the ``datum`` entry-point group."""
    (tmp_path / "greet_plugin.py").write_text(textwrap.dedent("""
        import click
        from explain_plugin.hookspecs import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command("greet")
            def greet():
                click.echo("greetings from an entry point")
    """))
    dist = tmp_path / "greet_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: greet-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[datum]\ngreet = greet_plugin\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "explain_plugin", "greet"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "greetings from an entry point"


def test_hookspecs_are_the_documented_surface():
    pm = make_plugin_manager(load_entrypoints=False)
    assert isinstance(pm, pluggy.PluginManager)
    for hook in ("register_commands", "register_launchers", "register_explain_methods"):
        assert hasattr(pm.hook, hook)
