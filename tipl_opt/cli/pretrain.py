"""``tipl pretrain``: train a TIPL predictor on a folder of learning paths."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tipl_opt.cli.console import console, fail
from tipl_opt.cli.options import parse_ints
from tipl_opt.errors import TiplError
from tipl_opt.pretrain import PretrainConfig, pretrain
from tipl_opt.pretrain import Progress as TrainProgress


def build_config(file: Path | None, flags: dict[str, Any], model_flags: dict[str, Any]
                 ) -> PretrainConfig:
    data: dict[str, Any] = {}
    if file is not None:
        try:
            data = tomllib.loads(file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TiplError(f"cannot read config file {file}: {exc}") from exc
        data = data.get("pretrain", data)
    data.update({k: v for k, v in flags.items() if v is not None})
    model = dict(data.get("model", {}))
    model.update({k: v for k, v in model_flags.items() if v is not None})
    data["model"] = model
    try:
        return PretrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"'{'.'.join(map(str, e['loc']))}': {e['msg']}"
                             for e in exc.errors())
        raise TiplError(f"invalid pretrain configuration: {problems}") from exc


def report_table(report: dict[str, Any]) -> Table:
    table = Table(title="Validation error on held-out runs (lower is better)")
    table.add_column("horizon", justify="right")
    for name in report["vs_stay"]:
        table.add_column(f"{name} / no move", justify="right")
    table.add_column("tipl / linear", justify="right")
    for j, h in enumerate(report["horizons"]):
        ratio = report["tipl_vs_linear"][j] if report.get("tipl_vs_linear") else float("nan")
        table.add_row(str(h), *(f"{v[j]:.3f}" for v in report["vs_stay"].values()),
                      f"[{'green' if ratio <= 0.7 else 'yellow'}]{ratio:.3f}[/]")
    return table


def pretrain_command(
    paths: Annotated[Path | None, typer.Option(help="Folder of learning paths.")] = None,
    out: Annotated[Path | None, typer.Option(help="Checkpoint folder to write.")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimisation steps.")] = None,
    context: Annotated[int | None, typer.Option(help="Snapshots per window (K).")] = None,
    horizons: Annotated[str | None, typer.Option(help="Horizons to predict, e.g. 1,2,4,8.")]
    = None,
    per_layer: Annotated[bool | None, typer.Option(
        "--per-layer/--global", help="Tokens per (time, layer) or per time step.")] = None,
    residual: Annotated[bool | None, typer.Option(
        "--residual/--no-residual",
        help="Predict a correction to linear extrapolation instead of a move from the last "
             "snapshot.")] = None,
    loss: Annotated[str | None, typer.Option(
        help="Training loss: mse or l1 per coordinate, or direction (1 - cosine + "
             "log-length error).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate.")] = None,
    val_fraction: Annotated[float | None, typer.Option(help="Share of runs held out.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (split, sampling, init).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto.")] = None,
    loader_workers: Annotated[int | None, typer.Option(
        help="Processes preparing batches of windows while the model trains (0: in this "
             "process).")] = None,
    resume: Annotated[bool | None, typer.Option("--resume/--restart",
                                                help="Continue from OUT/.resume if there.")]
    = None,
    init: Annotated[str | None, typer.Option(
        help="Fine-tune: start from this checkpoint ('default' or a folder) instead of a "
             "random init; the model's shape comes from it.")] = None,
    recipe: Annotated[str | None, typer.Option(
        help="How the data was made (stored in the checkpoint).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML file; flags override.")]
    = None,
) -> None:
    """Pretrain a TIPL predictor on learning paths; keep the best checkpoint on held-out runs.

    Example: tipl pretrain --paths data/ --out predictor/ --steps 2000

    Fine-tune the embedded predictor on new paths: tipl pretrain --paths data/ --init default
    --out tuned/ --steps 500 --lr 3e-4
    """
    try:
        cfg = build_config(config, {"paths": paths, "out": out, "steps": steps,
                                    "batch_size": batch_size, "lr": lr,
                                    "val_fraction": val_fraction, "seed": seed,
                                    "device": device, "loader_workers": loader_workers,
                                    "resume": resume, "recipe": recipe, "loss": loss,
                                    "init": init},
                           {"context": context, "horizons": parse_ints(horizons, "1,2,4,8"),
                            "per_layer": per_layer, "residual": residual})
    except TiplError as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    progress = Progress(TextColumn("pretrain"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[losses]}"), TimeElapsedColumn(),
                        console=console)
    task = progress.add_task("pretrain", total=cfg.steps, losses="")

    def on_progress(p: TrainProgress) -> None:
        best = f" best val {p.best_val_loss:.4f}" if p.best_val_loss < float("inf") else ""
        progress.update(task, completed=p.step, losses=f"train {p.train_loss:.4f}{best}")

    try:
        with progress:
            result = pretrain(cfg, on_progress)
    except (TiplError, ValueError) as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    console.print(report_table(result.report))
    console.print(f"Best checkpoint (validation loss {result.best_val_loss:.4f}) in {result.out}")
