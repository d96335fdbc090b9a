"""``-p PROJECT`` and revision paths on Datumaro's dataset commands, as 1.11 had them.

Datumaro 1.13's commands take dataset paths only. Here each target that names a
project dataset (``project``, a source, ``REV[:SOURCE]`` with ``-p``, or
``DIR[@REV][:SOURCE]`` for a project folder) is turned into a path 1.13 reads:
the source's own files (``PATH:FORMAT``) where that is enough, else a temporary
Datumaro-format copy. Then 1.13's own command runs on it. ``filter``/``transform``
on the working tree (no ``-o``) rewrite the sources in place, as 1.11 did.
"""
from __future__ import annotations

import argparse
import re
import tempfile
from contextlib import ExitStack
from pathlib import Path

from explain_plugin.errors import CliError

# Options of these commands that take no value (every other option takes one).
FLAG_OPTIONS = {"-h", "--help", "--dry-run", "--overwrite", "--all", "--match-images",
                "--show-rejections"}
# How many leading positionals are dataset targets (None: all before '--').
TARGET_COUNT = {"filter": 1, "transform": 1, "dinfo": 1, "stats": 1, "validate": 1,
                "compare": 2, "patch": 2, "merge": None, "detect": 0}
# Commands whose target 1.11 defaulted to the project.
DEFAULTS_TO_PROJECT = {"filter", "transform", "dinfo", "stats", "validate"}
PROJECT_COMMANDS = set(TARGET_COUNT)
# Commands that, without -o, write their result over their first target.
IN_PLACE_COMMANDS = {"filter", "transform", "patch"}

REVPATH = re.compile(r"(?P<path>(?:[^@:]|:[/\\])+)(?:@(?P<rev>[^:]+))?(?::(?P<source>.+))?")


def split_project_option(args: list[str]) -> tuple[str | None, list[str]]:
    """Take ``-p DIR``/``--project DIR``/``--project=DIR`` out of the options."""
    project_dir, rest, i = None, [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in ("-p", "--project"):
            if i + 1 >= len(args):
                raise CliError(f"{arg} needs a project folder")
            project_dir, i = args[i + 1], i + 2
            continue
        if arg.startswith("--project="):
            project_dir = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return project_dir, rest


def positional_indices(args: list[str]) -> list[int]:
    """Indices of positional arguments before '--'."""
    found, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        if arg.startswith("-") and len(arg) > 1:
            i += 1 if (arg in FLAG_OPTIONS or "=" in arg) else 2
            continue
        found.append(i)
        i += 1
    return found


def is_project_dir(path: str) -> bool:
    from explain_plugin.project import config as cfg

    return cfg.detect_version(Path(path).resolve()) is not None and Path(path).is_dir()


def project_target(spec: str, project) -> tuple[object, str | None, str] | None:
    """(project, revision or None, target) for a spec naming a project dataset, else None."""
    from explain_plugin.project import Project

    if project is not None:
        if spec == "project" or spec in project.sources:
            return project, None, spec
        rev, _, source = spec.partition(":")
        if rev and _is_revision(project, rev) and not Path(spec).exists():
            return project, rev, source or "project"
    match = REVPATH.fullmatch(spec)
    if match and is_project_dir(match["path"]) and (match["rev"] or match["source"] or
                                                    not Path(spec).is_file()):
        return Project.open(match["path"]), match["rev"], match["source"] or "project"
    return None


def _is_revision(project, rev: str) -> bool:
    from explain_plugin.project.vcs import Git

    return project.version == 2 and Git(project.root).rev_parse(rev) is not None


def materialize(project, rev: str | None, target: str, tmp_root: Path) -> str:
    """A ``PATH:FORMAT`` datumaro 1.13 can read for a project dataset."""
    from explain_plugin.project.revisions import History

    history = History(project) if rev else None
    if history is not None:
        tree = history.tree_at(rev)
        sources = tree["sources"]
    else:
        sources = project.sources
    names = list(sources) if target == "project" else [target]
    if len(names) == 1 and names[0] in sources:
        source = sources[names[0]]
        options = {k: v for k, v in (source.get("options") or {}).items() if v is not None}
        if not options or options == {"keep_original_category_ids": False}:
            if history is not None:
                location = history.source_data_at(tree, names[0], rev) / (source.get("path") or "")
            else:
                location = project.source_location(names[0])
            return f"{location}:{source.get('format')}"
    dataset = history.dataset_at(rev, target) if history else project.make_dataset(target)
    out = Path(tempfile.mkdtemp(prefix="datum-project-", dir=tmp_root))
    dataset.export(str(out / "dataset"), "datumaro", save_media=True)
    return f"{out / 'dataset'}:datumaro"


def uses_project(name: str, args: list[str]) -> bool:
    """Whether the arguments name a project (``-p`` or a project folder target)."""
    if name not in PROJECT_COMMANDS:
        return False
    head = args[: args.index("--")] if "--" in args else args
    if any(a in ("-p", "--project") or a.startswith("--project=") for a in head):
        return True
    if any(a in ("-h", "--help") for a in head):
        return False
    if name in DEFAULTS_TO_PROJECT and not positional_indices(args) and is_project_dir("."):
        return True  # 1.11 looked for the project in the current folder
    for i in positional_indices(args):
        match = REVPATH.fullmatch(args[i])
        if match and is_project_dir(match["path"]):
            return True
    return False


def run(name: str, args: list[str], loglevel: str | None) -> int:
    """Run datumaro 1.13's ``name`` command, resolving project targets first."""
    project_dir, args = split_project_option(args)
    project = None
    if project_dir is None and not positional_indices(args) and is_project_dir("."):
        project_dir = "."
    if project_dir is not None:
        from explain_plugin.project import Project

        project = Project.open(project_dir)
    positions = positional_indices(args)
    count = TARGET_COUNT.get(name, 0)
    target_positions = positions if count is None else positions[:count]
    if project is not None and name in DEFAULTS_TO_PROJECT and not target_positions:
        insert_at = args.index("--") if "--" in args else len(args)
        args = args[:insert_at] + ["project"] + args[insert_at:]
        target_positions = [insert_at]

    if name in ("filter", "transform") and project is not None:
        handled = _in_place(name, args, project, target_positions)
        if handled is not None:
            return handled

    with ExitStack() as stack:
        tmp_root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="datum-")))
        for i in target_positions:
            found = project_target(args[i], project)
            if found is not None:
                if name in IN_PLACE_COMMANDS and not _writes_elsewhere(args):
                    raise CliError(f"'{args[i]}' is a saved revision or a copy of project data: "
                                   f"'datum {name}' would change it in place; pass -o DIR")
                args[i] = materialize(*found, tmp_root)
            elif project is not None and not _names_a_path(args[i]):
                known = ", ".join(["project", *sorted(project.sources)])
                raise CliError(f"unknown target '{args[i]}': not a target of the project "
                               f"({known}), a revision of it, nor an existing PATH[:FORMAT]")
        args = _options_first(_drop_stage_options(args))
        from datumaro.cli.__main__ import main as datumaro_main

        argv = (["--loglevel", loglevel] if loglevel else []) + [name, *args]
        return datumaro_main(argv) or 0


def _names_a_path(spec: str) -> bool:
    match = re.fullmatch(r"(?P<path>(?:[^:]|:[/\\])+)(?::(?P<format>.+))?", spec)
    return bool(match) and Path(match["path"]).exists()


def _writes_elsewhere(args: list[str]) -> bool:
    head = args[: args.index("--")] if "--" in args else args
    return any(a in ("-o", "--output-dir", "--dry-run") or a.startswith("--output-dir=")
               for a in head)


def _options_first(args: list[str]) -> list[str]:
    """Options before positionals: 1.13's parsers hand whatever follows their targets
    to the plugin (so a trailing '-o DIR' would be lost)."""
    sep = args.index("--") if "--" in args else len(args)
    positions = set(positional_indices(args))
    head = [a for i, a in enumerate(args[:sep]) if i not in positions]
    return head + [args[i] for i in sorted(positions)] + args[sep:]


def _drop_stage_options(args: list[str]) -> list[str]:
    """1.11's --stage/--apply mean nothing outside a project's working tree."""
    out, i = [], 0
    while i < len(args):
        if args[i] == "--":
            return out + args[i:]
        if args[i] in ("--stage", "--apply"):
            i += 2
            continue
        if args[i].startswith(("--stage=", "--apply=")):
            i += 1
            continue
        out.append(args[i])
        i += 1
    return out


def _str_to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")


def _in_place(name: str, args: list[str], project, target_positions: list[int]) -> int | None:
    """1.11's filter/transform of a working-tree target without -o; None: not that case."""
    parser = argparse.ArgumentParser(prog=f"datum {name}", add_help=False)
    parser.add_argument("target")
    parser.add_argument("-o", "--output-dir", dest="dst_dir")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--stage", type=_str_to_bool, default=True)
    parser.add_argument("--apply", type=_str_to_bool, default=True)
    if name == "filter":
        parser.add_argument("-e", "--filter", dest="expr")
        parser.add_argument("-m", "--mode", default="i")
        parser.add_argument("--dry-run", action="store_true")
    else:
        parser.add_argument("-t", "--transform", required=True)
    sep = args.index("--") if "--" in args else len(args)
    head, extra = args[:sep], args[sep + 1:]
    if any(a in ("-h", "--help") for a in head):
        return None
    try:
        opts = parser.parse_args(head)
    except SystemExit:
        return None  # let datumaro's own parser report the problem
    if opts.dst_dir or getattr(opts, "dry_run", False):
        return None
    if opts.target != "project" and opts.target not in project.sources:
        return None
    if project.version != 2:
        raise CliError(f"project at {project.root} is a Datumaro 0.1 (v1) project: it cannot be "
                       "changed in place; convert it with 'datum project migrate -o DIR'")

    from explain_plugin.project import working_tree

    if name == "filter":
        if not opts.expr:
            raise CliError("expected a filter expression: pass -e EXPRESSION")
        from explain_plugin.default_plugins.project_vcs_commands import filter_kwargs

        names = working_tree.filter_in_place(project, opts.target, opts.expr,
                                             filter_kwargs(opts.mode), opts.stage, opts.apply)
    else:
        from datumaro.components.environment import Environment

        from explain_plugin.cli_args import parse_plugin_args

        transforms = Environment().transforms
        if opts.transform not in transforms:
            raise CliError(f"unknown transform '{opts.transform}': 'datum transform --help' "
                           "lists them")
        plugin = transforms[opts.transform]
        params = parse_plugin_args(plugin.build_cmdline_parser(
            prog=f"datum transform -t {opts.transform} --"), extra,
            f"transform '{opts.transform}'")
        names = working_tree.transform_in_place(project, opts.target, opts.transform, params,
                                                opts.stage, opts.apply)
    import logging

    logging.getLogger(__name__).info("%s applied to %s", name, ", ".join(names))
    return 0

