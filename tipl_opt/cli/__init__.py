"""The ``tipl`` command line: thin commands that build a config and call the library."""

from __future__ import annotations

from typing import Annotated

import typer

from tipl_opt import __version__
from tipl_opt.cli import bench as _bench
from tipl_opt.cli import collect as _collect
from tipl_opt.cli import infer as _infer
from tipl_opt.cli import paths as _paths
from tipl_opt.cli import plugins as _plugins
from tipl_opt.cli import pretrain as _pretrain
from tipl_opt.cli import train as _train
from tipl_opt.cli.console import console, setup_logging

app = typer.Typer(
    name="tipl",
    help="Optimise RL policy weights as trajectory modelling: collect learning paths, "
    "pretrain a weight-path predictor, jump ahead.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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


app.command("train")(_train.train_command)
app.command("collect")(_collect.collect_command)
app.command("pretrain")(_pretrain.pretrain_command)
app.command("infer")(_infer.infer_command)
app.command("bench")(_bench.bench_command)
app.command("plugins")(_plugins.plugins_command)
app.add_typer(_paths.app, name="paths")


def main() -> None:
    app()
