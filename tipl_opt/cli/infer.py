"""``tipl infer``: zero-shot weights from a saved learning path, optionally evaluated."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tipl_opt.cli.console import console, fail
from tipl_opt.errors import TiplError
from tipl_opt.infer import check_out, infer, save_weights, train_spec
from tipl_opt.paths import LearningPath
from tipl_opt.paths.spec import unflatten
from tipl_opt.plugins import get_adapter
from tipl_opt.predictors import load_predictor


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


def infer_command(
    predictor: Annotated[str, typer.Option(help="default, linear, or a checkpoint folder.")],
    path: Annotated[Path, typer.Option(help="A learning-path file (.safetensors).")],
    out: Annotated[Path, typer.Option(help="Where to write the predicted weights.")],
    from_step: Annotated[int | None, typer.Option(
        help="Env step to predict from (its last checkpoint at or before); default: the end.")]
    = None,
    horizon: Annotated[int | None, typer.Option(
        help="Snapshot intervals per prediction (default: the predictor's longest).")] = None,
    rollout: Annotated[int, typer.Option(help="Apply the predictor N times in a row.")] = 1,
    evaluate: Annotated[bool, typer.Option("--eval", help="Run the predicted policy.")] = False,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes with --eval.")] = 5,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Predict well-performing weights from a run's history (zero-shot) and save them.

    Example: tipl infer --predictor predictor/ --path data/RUN.safetensors --from-step 10000
    --out w.safetensors --eval
    """
    try:
        check_out(out, [path, predictor] if Path(predictor).exists() else [path], force=force)
        lp = LearningPath(path)
        model = load_predictor(predictor)
        result = infer(model, lp, from_step, horizon=horizon, rollout=rollout)
        written = save_weights(out, result, {"predictor": str(predictor)}, force=force)
    except TiplError as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    console.print(f"Predicted {result.horizon} x {result.rollout} snapshot intervals ahead of env "
                  f"step {result.from_env_steps:,} (about env step "
                  f"{result.predicted_env_steps:,}); wrote {written}")
    if not evaluate:
        return
    try:
        adapter = get_adapter(lp.library)
        spec = train_spec(lp)
        named = unflatten(result.weights, lp.specs)
        pred_mean, pred_std = adapter.evaluate_weights(spec, named, episodes)
        from_mean, from_std = adapter.evaluate_weights(
            spec, unflatten(lp.window(result.from_index, 1)[0], lp.specs), episodes)
    except TiplError as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    returns = lp.return_mean
    table = Table(title=f"{lp.name}: return of the predicted weights")
    for col in ("weights", "env step", "return (recorded)", f"return ({episodes} episodes now)"):
        table.add_column(col, justify="left" if col == "weights" else "right")
    table.add_row("run at --from-step", f"{result.from_env_steps:,}",
                  _fmt(float(returns[result.from_index])), f"{from_mean:.1f} ± {from_std:.1f}")
    table.add_row("[bold]predicted[/]", f"~{result.predicted_env_steps:,}", "-",
                  f"[bold]{pred_mean:.1f} ± {pred_std:.1f}[/]")
    table.add_row("run at its end", f"{int(lp.env_steps[-1]):,}", _fmt(float(returns[-1])), "-")
    console.print(table)
