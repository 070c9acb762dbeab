"""``tipl paths show|check|screen``: look at, validate and screen a folder of learning paths."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tipl_opt import atomic
from tipl_opt.cli.console import console, fail
from tipl_opt.errors import TiplError
from tipl_opt.jump_value.screen import (
    FORECAST_ALGORITHMS,
    LIKELY_COSINE,
    UNLIKELY_COSINE,
    screen,
)
from tipl_opt.paths import PathDataset, check_folder
from tipl_opt.predictors import load_predictor
from tipl_opt.predictors.tipl import TIPLPredictor

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


SCREEN_FORMAT = "tipl-path-screen"
VERDICT_STYLE = {"likely": "[green]likely[/]", "unlikely": "[red]unlikely[/]",
                 "uncertain": "[yellow]uncertain[/]"}


@app.command("screen")
def screen_command(
    folder: FolderArg,
    predictor: Annotated[str, typer.Option(
        help="default, or a checkpoint folder written by tipl pretrain.")] = "default",
    max_windows: Annotated[int, typer.Option(
        min=1, help="At most this many windows per library/algorithm/env.")] = 2000,
    out: Annotated[Path | None, typer.Option(
        help="Also write the rows as JSON to this file.")] = None,
) -> None:
    """Will jumps pay on these tasks? How far each task's learning path keeps its direction.

    Reads base runs saved at the spacing TIPL snapshots at (PPO: one snapshot per rollout), e.g.
    tipl train --env E --seeds 2 --every 256 --hp n_steps=256 --predictor none --save-paths
    --eval-episodes 1 --out runs/e, then: tipl paths screen runs/e/paths
    """
    try:
        model = load_predictor(predictor)
        if not isinstance(model, TIPLPredictor):
            raise TiplError(f"{predictor!r} is not a TIPL checkpoint: the screen needs a "
                            "pretrained predictor (default, or a tipl pretrain folder)")
        dataset = PathDataset(folder, strict=False)
        if not len(dataset):
            raise TiplError(f"no readable learning paths under {folder}")
        with console.status(f"Predicting every window of {len(dataset)} runs..."):
            rows = screen(list(dataset), model, max_windows)
    except (TiplError, ValueError) as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    for bad in dataset.skipped:
        fail(f"{bad.path}: {bad.problem} (skipped)")
    horizon = rows[0].horizon
    table = Table(title=f"How predictable the learning paths in {folder} are "
                        f"({horizon} snapshots ahead, medians over windows)")
    table.add_column("lib/algo", no_wrap=True)
    table.add_column("env", no_wrap=True)
    for col in ("runs", "spacing", "cos linear", "cos TIPL", "progress", "error", "pays?"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r.library} {r.algorithm}", r.env_id, str(r.runs),
                      f"{r.spacing:,.0f}", f"{r.linear_cosine:.2f}", f"{r.cosine:.2f}",
                      f"{r.progress:.2f}", f"{r.error:.2f}", VERDICT_STYLE[r.verdict])
    console.print(table)
    console.print(f"cos linear: how far the real move keeps the window's straight-line "
                  f"direction; cos TIPL, progress (share of the real move covered) and error "
                  f"(1: as far off as not moving): the predictor's jump; spacing: env steps per "
                  f"snapshot. On the tasks measured, "
                  f"cos linear >= {LIKELY_COSINE} came with TIPL needing a third fewer env steps "
                  f"or better, <= {UNLIKELY_COSINE} with no gain; between, no forecast. It holds "
                  f"for {', '.join(sorted(a.upper() for a in FORECAST_ALGORITHMS))} at the "
                  f"spacing TIPL snapshots at (one rollout); other algorithms get no forecast "
                  f"(SAC paths keep their direction whether jumps pay or not).")
    if out is not None:
        atomic.write_json({"format": SCREEN_FORMAT, "version": 1,
                           "folder": str(folder), "predictor": str(predictor),
                           "rows": [r.to_dict() for r in rows]}, out)
        console.print(f"wrote {out}")
