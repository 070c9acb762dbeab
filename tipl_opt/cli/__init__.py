"""The ``tipl`` command line: thin commands that build a config and call the library.

Each command lives in its own module, imported only when that command runs (or its own
``--help`` is asked for): ``tipl --help`` lists the commands from :data:`COMMANDS` without
importing torch or any RL library.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer import _click as click  # the click typer builds its commands with
from typer.core import TyperGroup

from tipl_opt import __version__
from tipl_opt.cli.console import console, setup_logging

COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("tipl_opt.cli.collect:collect_command",
                "Collect learning paths: independent RL runs, weights snapshotted."),
    "pretrain": ("tipl_opt.cli.pretrain:pretrain_command",
                 "Pretrain a weight-path predictor on a folder of learning paths."),
    "train": ("tipl_opt.cli.train:train_command",
              "Train an agent with TIPL (or without), optionally side by side with its base."),
    "infer": ("tipl_opt.cli.infer:infer_command",
              "Predict weights further along a saved learning path (zero-shot)."),
    "bench": ("tipl_opt.cli.bench:bench_command",
              "Run a benchmark suite: base vs TIPL vs linear on the same seeds."),
    "jumps": ("tipl_opt.cli.jumps:jumps_command",
              "Measure what predicted jumps are worth in return on held-out learning paths."),
    "paths": ("tipl_opt.cli.paths:app", "Inspect and validate learning-path files."),
    "plugins": ("tipl_opt.cli.plugins:plugins_command",
                "List installed plugins and what they register."),
}
"""Command name -> (``module:attribute`` of its Typer function or sub-app, one-line help)."""


def _load(name: str) -> click.Command:
    target, short_help = COMMANDS[name]
    module, attr = target.split(":")
    obj: Any = getattr(importlib.import_module(module), attr)
    if isinstance(obj, typer.Typer):
        command = typer.main.get_command(obj)
    else:
        single = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    command.short_help = short_help
    return command


class LazyCommands(TyperGroup):
    """A click group whose subcommands are imported on first use (see :data:`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = _load(cmd_name)
        return self.commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The listing uses the one-line helps of COMMANDS, so no command module is imported.
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="tipl",
    cls=LazyCommands,
    help="Optimise RL policy weights as trajectory modelling: collect learning paths, "
    "pretrain a weight-path predictor, jump ahead.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"tipl-opt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More logging (-v info, -vv debug).")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    setup_logging(verbose)


def main() -> None:
    app()
