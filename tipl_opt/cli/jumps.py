"""``tipl jumps``: what a predicted jump is worth in return, on held-out learning paths."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tipl_opt.cli.console import console, fail
from tipl_opt.cli.options import parse_ints
from tipl_opt.errors import TiplError
from tipl_opt.jump_value import (
    JumpValueConfig,
    measure_jumps,
    plan_jumps,
    write_report,
)


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _tables(report: dict[str, Any]) -> list[Table]:
    """One table per env and algorithm: the share of the real improvement per predictor."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for a in report["aggregates"]:
        groups.setdefault(f"{a['library']} {a['algorithm']} {a['env_id']}", []).append(a)
    tables = []
    for title, aggs in groups.items():
        table = Table(title=f"{title}: share of the real improvement a jump delivers")
        for col in ("predictor", "h", "windows", "gain jump", "gain real", "share", "95% CI",
                    "median", "P(> t)"):
            table.add_column(col, justify="left" if col == "predictor" else "right")
        for a in aggs:
            ci = a["share_of_means_ci95"]
            table.add_row(a["predictor"], str(a["horizon"]), str(a["windows"]),
                          _num(a["mean_gain_pred"], 1), _num(a["mean_gain_real"], 1),
                          _num(a["share_of_means"]), f"{ci[0]:.2f} to {ci[1]:.2f}" if ci else "-",
                          _num(a["median_share_improving"]), _num(a["p_better_than_t"]))
        tables.append(table)
    return tables


def jumps_command(
    paths: Annotated[Path, typer.Option(help="Folder of held-out learning paths.")],
    predictor: Annotated[list[str], typer.Option(
        help="default, a registered name or a checkpoint folder; repeat for several. "
        "'no move' and linear are always measured.")] = ["default"],  # noqa: B006
    horizons: Annotated[str, typer.Option(help="Snapshot intervals ahead, e.g. 1,2,4,8.")]
    = "1,2,4,8",
    rollout: Annotated[bool, typer.Option(
        help="Reach horizons beyond a predictor's longest by predicting in a row.")] = False,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes per weight vector.")] = 5,
    windows_per_run: Annotated[int, typer.Option(help="Window ends t per run, evenly spaced.")]
    = 4,
    windows: Annotated[str, typer.Option(
        help="even: window ends spread over the whole run; learning: only before its return "
             "comes within 10% of its best.")] = "even",
    held_out_only: Annotated[bool, typer.Option(
        help="Skip the runs a predictor was trained on (by name) instead of warning.")] = False,
    workers: Annotated[int, typer.Option(help="Windows evaluated in parallel processes.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap intervals.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for jump_value.json and jump_value.png.")]
    = Path("report"),
) -> None:
    """Evaluate predicted jumps against the real weights' returns at t and t+h.

    Example: tipl jumps --predictor default --predictor pptb --paths data/heldout --out report/
    """
    try:
        config = JumpValueConfig(paths=paths, predictors=tuple(predictor),
                                 horizons=parse_ints(horizons, "1,2,4,8") or (),
                                 rollout=rollout, episodes=episodes,
                                 windows_per_run=windows_per_run, windows=windows,  # type: ignore[arg-type]
                                 held_out_only=held_out_only, workers=workers, seed=seed)
    except ValidationError as exc:
        fail("; ".join(f"--{'-'.join(str(p) for p in e['loc'])}: {e['msg']}"
                       for e in exc.errors()).replace("_", "-"))
        raise typer.Exit(2) from None
    torch.set_num_threads(1)
    try:
        plan = plan_jumps(config)
    except TiplError as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    for skipped in plan.skipped:
        console.print(f"[yellow]skipped[/] {skipped['run']}: {skipped['reason']}")
    console.print(f"{len(plan.windows)} windows of {len(plan.runs)} runs, "
                  f"{len(plan.predictors)} predictors ({', '.join(plan.predictors)}), horizons "
                  f"{list(config.horizons)}: {plan.evaluations} weight vectors x {episodes} "
                  "episodes")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)
    with progress:
        bar = progress.add_task("evaluations", total=plan.evaluations)
        report = measure_jumps(plan, lambda event: progress.advance(bar))
    written = write_report(report, out)
    for table in _tables(report):
        console.print(table)
    console.print("share = mean gain of the jump / mean gain of training on (both from the "
                  "return at t); median = median share over windows that really improved; "
                  "P(> t) = share of windows where the jump beat not moving.")
    console.print("wrote " + ", ".join(str(p) for p in written))
    for error in report["errors"]:
        fail(f"window {error['index']} of {error['run']} failed: {error['error']}")
    if report["errors"]:
        raise typer.Exit(1)
