"""``tipl bench``: base vs TIPL vs TIPL + linear on a suite, same seeds, with intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.bench import SUITES, run_suite, write_report
from tipl_opt.cli.console import console, exit_for_runs, fail
from tipl_opt.cli.options import (
    ADDRESS_HELP,
    ENTROPY_LIMIT_HELP,
    EXECUTOR_HELP,
    TENSORBOARD_HELP,
    VALUE_FIT_LIMIT_HELP,
    VALUE_GRAD_LIMIT_HELP,
    VALUE_LIMIT_HELP,
    parse_hyperparams,
)
from tipl_opt.cli.train import _Live, reused_note, summary_table
from tipl_opt.collect.executor import ExecutorKind
from tipl_opt.errors import TiplError


def bench_command(
    suite: Annotated[str, typer.Option(help=f"One of: {', '.join(SUITES)}.")] = "smoke",
    seeds: Annotated[int, typer.Option(help="Seeds per env and variant.")] = 3,
    workers: Annotated[int, typer.Option(help="Runs in parallel processes.")] = 1,
    executor: Annotated[ExecutorKind, typer.Option(help=EXECUTOR_HELP)] = "process",
    address: Annotated[str | None, typer.Option(help=ADDRESS_HELP)] = None,
    tensorboard: Annotated[Path | None, typer.Option(help=TENSORBOARD_HELP)] = None,
    out: Annotated[Path, typer.Option(help="Folder for JSON, markdown and PNG plots.")]
    = Path("results"),
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    predictor: Annotated[str, typer.Option(help="Predictor of the TIPL variant.")] = "default",
    env: Annotated[list[str] | None, typer.Option(
        help="Only these envs of the suite (an env two libraries train: ENV-LIB for one).")]
    = None,
    jump: Annotated[list[str] | None, typer.Option(
        "--jump", help="Jump setting KEY=VALUE for both TIPL variants (repeatable; JumpConfig "
                       "fields), e.g. --jump scale=2.")] = None,
    no_guard: Annotated[bool, typer.Option(
        "--no-guard", help="Accept both TIPL variants' jumps unguarded.")] = False,
    guard_limit: Annotated[float | None, typer.Option(
        help="Trust region of the jump guard (default: the adapter's for the algorithm, e.g. "
             "KL 0.02 for PPO).")] = None,
    value_limit: Annotated[float | None, typer.Option(help=VALUE_LIMIT_HELP)] = None,
    entropy_limit: Annotated[float | None, typer.Option(help=ENTROPY_LIMIT_HELP)] = None,
    value_fit_limit: Annotated[float | None, typer.Option(help=VALUE_FIT_LIMIT_HELP)] = None,
    value_grad_limit: Annotated[float | None, typer.Option(help=VALUE_GRAD_LIMIT_HELP)] = None,
) -> None:
    """Train the base optimizer, TIPL and TIPL + linear on the same seeds for every env of a
    suite; report env steps to threshold, final return, AUC, wall time and jumps, with
    bootstrap 95% intervals, and check the project's goals. Finished runs are kept in
    OUT/<env>/runs (OUT/<env>-<lib>/runs where the suite trains the env with two libraries):
    an interrupted benchmark resumes where it stopped, and a suite can be split over machines
    or calls with --env and reported once with every run in place.

    Example: tipl bench --suite classic --seeds 10 --workers 2 --out results/
    """
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console)
    live = _Live(progress)
    try:
        with progress:
            setup = TIPLSetup(predictor=predictor, jump=parse_hyperparams(jump or [], "--jump"),
                              guard=not no_guard, guard_limit=guard_limit,
                              value_limit=value_limit, entropy_limit=entropy_limit,
                              value_fit_limit=value_fit_limit,
                              value_grad_limit=value_grad_limit)
            summaries = run_suite(suite, seeds=seeds, workers=workers, out=out, seed=seed,
                                  setup=setup, envs=env, executor=executor,
                                  address=address, tensorboard=tensorboard,
                                  on_event=live.on_event,
                                  on_result=live.on_result)
    except (TiplError, ValueError) as exc:  # ValueError: pydantic rejected a setting
        fail(str(exc))
        raise typer.Exit(1) from None
    for summary in summaries:
        reused_note(summary.reused, summary.config.out)
        console.print(summary_table(summary))
    doc = write_report(suite, summaries, out)
    for goal in doc["goals"].values():
        mark = "[green]met[/]" if goal["met"] else "[red]not met[/]"
        console.print(f"{mark}: {goal['goal']} ({goal['detail']})")
    console.print(f"Report: {out / (doc['report'] + '.md')}, {out / (doc['report'] + '.json')}")
    exit_for_runs({k: v for s in summaries for k, v in s.failures.items()},
                  any(s.interrupted for s in summaries), "finished runs are in the report")
