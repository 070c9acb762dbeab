"""``tipl collect``: run independent RL trainings and save their learning paths."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tipl_opt.cli.console import console, exit_for_runs, fail
from tipl_opt.cli.options import ADDRESS_HELP, EXECUTOR_HELP, parse_hyperparams, parse_ints
from tipl_opt.collect import (
    CollectConfig,
    CollectSummary,
    RunEvent,
    RunResult,
    collect,
    load_config,
)
from tipl_opt.collect.executor import ExecutorKind
from tipl_opt.collect.runner import plan
from tipl_opt.errors import TiplError


class _Display:
    """One progress line per active run plus an overall line."""

    def __init__(self, progress: Progress, runs: int, steps: int) -> None:
        self.progress = progress
        self.steps = steps
        self.overall = progress.add_task("[bold]all runs", total=runs * steps, ret="")
        self.tasks: dict[str, TaskID] = {}
        self.done_steps: dict[str, int] = {}

    def on_event(self, event: Any) -> None:
        if not isinstance(event, RunEvent):
            return
        task = self.tasks.get(event.run)
        if task is None:
            task = self.progress.add_task(event.run, total=event.total_steps, ret="")
            self.tasks[event.run] = task
        self.progress.update(task, completed=min(event.env_steps, event.total_steps))
        if event.kind == "snapshot" and not math.isnan(event.last_return):
            self.progress.update(task, ret=f"return {event.last_return:.1f}")
        self.done_steps[event.run] = min(event.env_steps, event.total_steps)
        self.progress.update(self.overall, completed=sum(self.done_steps.values()))

    def on_result(self, result: RunResult) -> None:
        task = self.tasks.pop(result.name, None)
        if task is not None:
            self.progress.remove_task(task)
        self.done_steps[result.name] = self.steps
        self.progress.update(self.overall, completed=sum(self.done_steps.values()))


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


def _summary_table(summary: CollectSummary) -> Table:
    table = Table(title="Collection summary")
    for col in ("run", "status", "T", "P", "first return", "last return", "wall time"):
        table.add_column(col, justify="left" if col in {"run", "status"} else "right")
    for r in summary.results:
        table.add_row(r.name, "[dim]skipped (exists)[/]" if r.skipped else "[green]collected[/]",
                      str(r.snapshots), f"{r.params:,}", _fmt(r.first_return),
                      _fmt(r.last_return), f"{r.wall_time_s:.1f} s")
    for name in summary.failures:
        table.add_row(name, "[red]failed[/]", "", "", "", "", "")
    return table


def collect_command(
    lib: Annotated[str | None, typer.Option(help="RL library adapter: sb3, tianshou, ...")] = None,
    algo: Annotated[str | None, typer.Option(help="Algorithm: ppo, a2c, dqn, sac, td3.")] = None,
    env: Annotated[str | None, typer.Option(help="Gymnasium env id.")] = None,
    runs: Annotated[int | None, typer.Option(help="Independent runs (seeds seed..seed+runs-1).")]
    = None,
    steps: Annotated[int | None, typer.Option(help="Training env steps per run.")] = None,
    every: Annotated[int | None, typer.Option(help="Env steps between snapshots.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: data).")] = None,
    workers: Annotated[int | None, typer.Option(help="Runs in parallel processes.")] = None,
    executor: Annotated[ExecutorKind | None, typer.Option(help=EXECUTOR_HELP)] = None,
    address: Annotated[str | None, typer.Option(help=ADDRESS_HELP)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the first run.")] = None,
    hidden: Annotated[str | None, typer.Option(help="Hidden sizes, e.g. 64,64.")] = None,
    activation: Annotated[str | None, typer.Option(help="tanh or relu.")] = None,
    eval_episodes: Annotated[int | None, typer.Option(
        help="Deterministic evaluation episodes per snapshot.")] = None,
    dtype: Annotated[str | None, typer.Option(help="Weight storage: float32 or float16.")] = None,
    hp: Annotated[list[str] | None, typer.Option(
        "--hp", help="Algorithm hyperparameter KEY=VALUE (repeatable), e.g. --hp n_steps=256; "
                     "added to the config file's hyperparams.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="TOML file with any of these options (flags override it).")] = None,
) -> None:
    """Train independent runs and save each run's learning path (weights + returns).

    Finished runs already in --out are skipped, so re-running resumes; Ctrl-C keeps finished runs.

    Example: tipl collect --lib sb3 --algo ppo --env CartPole-v1 --runs 8 --steps 50000
    """
    overrides = {"lib": lib, "algo": algo, "env": env, "runs": runs, "steps": steps,
                 "every": every, "out": out, "workers": workers, "executor": executor,
                 "address": address, "seed": seed,
                 "hidden_sizes": parse_ints(hidden), "activation": activation,
                 "eval_episodes": eval_episodes, "dtype": dtype,
                 "hyperparams": parse_hyperparams(hp) if hp else None}
    try:
        cfg: CollectConfig = load_config(config, overrides)
        todo, done = plan(cfg)
    except TiplError as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    console.print(f"Collecting {cfg.runs} runs of {cfg.lib} {cfg.algo} on {cfg.env} "
                  f"({cfg.steps:,} steps each, snapshot every {cfg.every:,}) into {cfg.out}"
                  + (f"; {len(done)} already there" if done else ""))
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[ret]}"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, transient=False)
    display = _Display(progress, len(todo), cfg.steps)
    with progress:
        try:
            summary = collect(cfg, on_event=display.on_event, on_result=display.on_result)
        except TiplError as exc:
            fail(str(exc))
            raise typer.Exit(1) from None
    console.print(_summary_table(summary))
    exit_for_runs(summary.failures, summary.interrupted,
                  "the finished runs above are kept; run the same command to resume.")
