"""``tipl paths show|check``: look at and validate a folder of learning paths."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tipl_opt.cli.console import console, fail
from tipl_opt.paths import PathDataset, check_folder

app = typer.Typer(help="Inspect learning-path files.", no_args_is_help=True)

FolderArg = Annotated[Path, typer.Argument(help="A folder of learning paths (or one file).",
                                           exists=True)]


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


@app.command("show")
def show_command(
    folder: FolderArg,
    lib: Annotated[str | None, typer.Option(help="Only this library.")] = None,
    algo: Annotated[str | None, typer.Option(help="Only this algorithm.")] = None,
    env: Annotated[str | None, typer.Option(help="Only this env id.")] = None,
) -> None:
    """Print one row per run: library, algorithm, env, T, P, first and last return."""
    dataset = PathDataset(folder, library=lib, algorithm=algo, env_id=env, strict=False)
    table = Table(title=f"Learning paths in {folder}")
    for col in ("run", "lib", "algo", "env", "seed", "T", "P", "env steps", "first return",
                "last return"):
        table.add_column(col, justify="right" if col in {"T", "P", "env steps", "seed"} else "left")
    for lp in dataset:
        returns = lp.return_mean
        table.add_row(lp.name, lp.library, lp.algorithm, lp.env_id, str(lp.seed),
                      str(lp.num_snapshots), f"{lp.num_params:,}", f"{int(lp.env_steps[-1]):,}",
                      _fmt(float(returns[0])), _fmt(float(returns[-1])))
    console.print(table)
    console.print(f"{len(dataset)} runs.")
    for exc in dataset.skipped:
        fail(f"{exc.path}: {exc.problem} (run `tipl paths check` for details)")


@app.command("check")
def check_command(folder: FolderArg) -> None:
    """Validate every file; exit 1 naming each bad file and what is wrong."""
    results = check_folder(folder)
    bad = {f: p for f, p in results.items() if p is not None}
    for file, problem in bad.items():
        fail(f"{file}: {problem}")
    console.print(f"{len(results) - len(bad)} of {len(results)} files are valid learning paths.")
    if bad or not results:
        if not results:
            fail(f"no learning-path files (*.safetensors) under {folder}")
        raise typer.Exit(1)
