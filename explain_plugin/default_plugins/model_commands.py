"""``datum model``: add, remove, info and run, stored as Datumaro 1.11 stored models."""
from __future__ import annotations

import os
from pathlib import Path

import click

from explain_plugin.cli_args import project_option
from explain_plugin.hookspecs import hookimpl


@click.group("model", short_help="Manage models of a project (launchers and interpreters).")
def model_group() -> None:
    """Register models (an OpenVINO IR plus an interpreter script) in a project."""


def _anchor_relative_paths(options: dict, root: Path) -> dict:
    """Keep options verbatim, except relative paths that only exist from the
    current directory: those become absolute so the project can find them."""
    fixed = {}
    for key, value in options.items():
        if (isinstance(value, str) and value and not os.path.isabs(value)
                and os.path.exists(value) and not (root / value).exists()):
            value = os.path.abspath(value)
        fixed[key] = value
    return fixed


@model_group.command("add", context_settings={"ignore_unknown_options": True})
@project_option
@click.option("-l", "--launcher", required=True, help="Launcher kind, e.g. openvino.")
@click.option("-n", "--name", default=None, help="Model name (default: model-N).")
@click.option("--copy", is_flag=True, help="Copy the model files into the project.")
@click.option("--no-check", is_flag=True, help="Do not load the model to check it.")
@click.argument("launcher_args", nargs=-1, type=click.UNPROCESSED)
def add(project_dir: str, launcher: str, name: str | None, copy: bool, no_check: bool,
        launcher_args: tuple[str, ...]) -> None:
    """Add a model: 'datum model add -l openvino -- -d model.xml -w model.bin -i interp.py'."""
    from explain_plugin.errors import CliError
    from explain_plugin.models import launcher_class
    from explain_plugin.names import check_name, remove_tree
    from explain_plugin.project import Project

    project = Project.open(project_dir)
    cls = launcher_class(launcher)
    options = cls.parse_cmdline(launcher_args)
    name = project.next_model_name() if name is None else check_name(name, "model")
    if name in project.models:
        raise CliError(f"model '{name}' already exists: choose another name with -n")

    model_dir = project.model_dir(name)
    if copy:
        if model_dir.exists():
            raise CliError(f"'{model_dir}' already exists: remove it or choose another name")
        staging = model_dir.with_name(f".{name}.tmp")
        remove_tree(staging, model_dir.parent, "staging folder")
        staging.mkdir(parents=True)
        given = dict(options)
        try:
            options = cls.copy_model(staging, options)
            if not no_check:
                cls(base_dir=staging, **options)
        except CliError as e:  # name the user's files, not their temporary copies
            remove_tree(staging, model_dir.parent, "staging folder")
            message = str(e)
            for key, value in options.items():
                if isinstance(value, str) and given.get(key) not in (None, value):
                    message = message.replace(str(staging / value), os.path.abspath(given[key]))
            raise CliError(message) from e
        except BaseException:
            remove_tree(staging, model_dir.parent, "staging folder")
            raise
        os.replace(staging, model_dir)
    else:
        options = _anchor_relative_paths(options, project.root)
        if not no_check:
            cls(base_dir=project.model_base_dir(name), **options)

    project.add_model(name, launcher, options)
    project.save()
    click.echo(f"Model '{name}' has been added to the project")


@model_group.command("remove")
@project_option
@click.argument("name")
def remove(project_dir: str, name: str) -> None:
    """Remove a model (and its copied files) from the project."""
    from explain_plugin.project import Project

    project = Project.open(project_dir)
    model_dir = project.model_dir(name)  # checked before anything changes
    project.remove_model(name)
    project.save()
    if model_dir.exists() or model_dir.is_symlink():
        project.remove_model_files(name)
    click.echo(f"Model '{name}' has been removed")


@model_group.command("info")
@project_option
@click.option("-n", "--name", "name_opt", default=None, help="Model name (as 1.11's -n).")
@click.option("-v", "--verbose", is_flag=True, help="With the list: show each model's config.")
@click.argument("name", required=False)
def info(project_dir: str, name_opt: str | None, verbose: bool, name: str | None) -> None:
    """List the models, or show one: launcher, options, inputs, outputs, categories."""
    from explain_plugin.models import load_launcher
    from explain_plugin.project import Project

    project = Project.open(project_dir)
    name = name or name_opt
    if name is None:
        if not project.models:
            click.echo("No models: add one with 'datum model add'")
        for model_name, model in project.models.items():
            click.echo(f"{model_name}: {model.get('launcher')}")
            if verbose:
                click.echo(f"  {dict(model)}")
        return
    model = project.model(name)
    lines = [f"Model '{name}':", f"  launcher: {model.get('launcher')}", "  options:"]
    lines += [f"    {k}: {v}" for k, v in (model.get("options") or {}).items()]
    lines += _describe_lines(load_launcher(project, name).describe(), indent="  ")
    click.echo("\n".join(lines))


def _describe_lines(value, indent: str) -> list[str]:
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append(f"{indent}{key}:")
            lines += _describe_lines(item, indent + "  ")
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], dict):
            lines.append(f"{indent}{key}:")
            for entry in item:
                lines.append(f"{indent}  - " + ", ".join(f"{k}: {v}" for k, v in entry.items()))
        else:
            lines.append(f"{indent}{key}: {item}")
    return lines


@model_group.command("run")
@project_option
@click.option("-m", "--model", "model_name", required=True, help="Model name.")
@click.option("-o", "--output-dir", "dst_dir", default=None, type=click.Path(file_okay=False),
              help="Where to save the predictions (default: <project>/predictions/<model>).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@click.option("-b", "--batch-size", default=None, type=click.IntRange(min=1),
              help="Images per inference batch (default: the launcher's).")
@click.argument("target", default="project")
def run(project_dir: str, model_name: str, dst_dir: str | None, overwrite: bool,
        batch_size: int | None, target: str) -> None:
    """Run a model over TARGET (an image, 'project', a source or PATH:FORMAT) and save
    the predictions as a Datumaro-format dataset."""
    from explain_plugin.errors import CliError
    from explain_plugin.launchers.model_run import run_model
    from explain_plugin.models import load_launcher
    from explain_plugin.names import remove_tree
    from explain_plugin.project import Project
    from explain_plugin.targets import load_target

    project = Project.open(project_dir)
    project.model(model_name)
    dst = Path(dst_dir).resolve() if dst_dir else project.root / "predictions" / model_name
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise CliError(f"output directory '{dst}' is not empty: use --overwrite or another -o")
    cwd = Path.cwd().resolve()
    if dst in (project.root, cwd, *project.root.parents, *cwd.parents):
        raise CliError(f"-o '{dst}' holds the project or the current folder: "
                       "choose a new folder for the predictions")
    dataset = load_target(project, target).dataset
    launcher = load_launcher(project, model_name)
    result = run_model(launcher, dataset, batch_size=batch_size)

    staging = dst.with_name(f".{dst.name}.tmp")
    remove_tree(staging, dst.parent, "staging folder")
    result.export(str(staging), "datumaro", save_media=True)
    remove_tree(dst, dst.parent, "output directory")
    os.replace(staging, dst)
    click.echo(f"Predictions for {len(result)} item(s) saved to '{dst}'")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(model_group)
