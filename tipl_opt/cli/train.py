"""``tipl train``: train an agent with TIPL (or without), optionally side by side with its base."""

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
)
from rich.table import Table

from tipl_opt.adapters.base import Activation
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
    parse_ints,
)
from tipl_opt.collect import RunEvent, RunResult
from tipl_opt.collect.executor import ExecutorKind
from tipl_opt.curves import plot_curves
from tipl_opt.errors import TiplError
from tipl_opt.train import BASE, TrainConfig, TrainSummary, run_training


class _Live:
    """One progress line per running run: env steps, last return, jumps accepted/tried."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.returns: dict[str, float] = {}
        self.jumps: dict[str, list[int]] = {}

    def on_event(self, event: Any) -> None:
        if not isinstance(event, RunEvent):
            return
        run = event.run
        if run not in self.tasks:
            self.tasks[run] = self.progress.add_task(run, total=event.total_steps, info="")
            self.jumps[run] = [0, 0]
            self.returns[run] = math.nan
        if event.kind == "snapshot":
            self.returns[run] = event.last_return
        elif event.kind == "jump":
            self.jumps[run][0] += int(event.accepted)
            self.jumps[run][1] += 1
        ok, tried = self.jumps[run]
        info = "" if math.isnan(self.returns[run]) else f"return {self.returns[run]:.1f}"
        if tried:
            info += f"  jumps {ok}/{tried}"
        self.progress.update(self.tasks[run], completed=min(event.env_steps, event.total_steps),
                             info=info)

    def on_result(self, result: RunResult) -> None:
        task = self.tasks.get(result.name)
        if task is not None:
            self.progress.update(task, completed=self.progress.tasks[task].total)


def _ci(values: tuple[float, float, float], fmt: str = "{:,.0f}") -> str:
    med, lo, hi = values
    if math.isnan(med):
        return "-"

    def f(x: float) -> str:
        return "never" if math.isinf(x) else fmt.format(x)

    if lo == hi == med:
        return f(med)
    return f"{f(med)} [{f(lo)} to {f(hi)}]"


def summary_table(summary: TrainSummary) -> Table:
    cfg = summary.config
    thr = next(iter(summary.variants.values())).threshold
    table = Table(title=f"{cfg.lib} {cfg.algo} on {cfg.env}, {cfg.steps:,} steps, "
                        f"{cfg.seeds} seed(s): medians [95% bootstrap CI]")
    table.add_column("variant")
    table.add_column(f"env steps to {thr:g}" if thr is not None else "env steps to threshold",
                     justify="right")
    table.add_column("solved", justify="right")
    table.add_column("final return", justify="right")
    table.add_column("mean return (AUC)", justify="right")
    table.add_column("jumps ok/tried", justify="right")
    table.add_column("wall s", justify="right")
    for v in summary.variants.values():
        if not v.runs:
            continue
        reached = sum(math.isfinite(v.value(r, "steps_to_threshold")) for r in v.runs)
        jumps = v.jumps()
        table.add_row(v.name, _ci(v.metric("steps_to_threshold")), f"{reached}/{len(v.runs)}",
                      _ci(v.metric("final_return"), "{:.1f}"), _ci(v.metric("auc"), "{:.1f}"),
                      f"{jumps.get('jumps_accepted', 0)}/{jumps.get('jumps_tried', 0)}"
                      if jumps else "-", f"{v.metric('wall_time')[0]:.0f}")
    return table


def reused_note(reused: int, out: Path) -> None:
    if reused:
        console.print(f"[dim]Reused {reused} finished run(s) from {out}/runs, trained earlier "
                      "with the same settings (delete that folder to train them again).[/]")


def ratio_line(summary: TrainSummary) -> str | None:
    base = summary.variants.get(BASE)
    others = [v for k, v in summary.variants.items() if k != BASE]
    if base is None or not others or not base.runs or not others[0].runs:
        return None
    b = base.metric("steps_to_threshold")[0]
    t = others[0].metric("steps_to_threshold")[0]
    auc_b, auc_t = base.metric("auc")[0], others[0].metric("auc")[0]
    parts = [f"mean return over training: {others[0].name} {auc_t:.1f} vs base {auc_b:.1f}"]
    if math.isfinite(b) and math.isfinite(t) and b > 0:
        parts.insert(0, f"env steps to threshold, {others[0].name} / base = {t / b:.2f}")
    return "; ".join(parts)


def train_command(
    lib: Annotated[str, typer.Option(help="RL library adapter: sb3 or tianshou.")] = "sb3",
    algo: Annotated[str, typer.Option(help="Algorithm: ppo, a2c, dqn, sac, td3.")] = "ppo",
    env: Annotated[str, typer.Option(help="Gymnasium env id.")] = "CartPole-v1",
    steps: Annotated[int, typer.Option(help="Training env steps per run.")] = 50_000,
    predictor: Annotated[str, typer.Option(
        help="default, a registered predictor (linear, pptb, trend...), a checkpoint folder, "
             "or none (base optimizer only).")]
    = "default",
    compare: Annotated[bool, typer.Option(
        "--compare", help="Also train the base optimizer on the same seeds.")] = False,
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    seeds: Annotated[int, typer.Option(help="Number of seeds.")] = 1,
    every: Annotated[int | None, typer.Option(help="Env steps between evaluations.")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Return to measure env steps to (default: the env's solved level).")] = None,
    eval_episodes: Annotated[int, typer.Option(help="Episodes per evaluation.")] = 5,
    hidden: Annotated[str | None, typer.Option(help="Hidden sizes, e.g. 64,64.")] = None,
    activation: Annotated[Activation, typer.Option(
        help="Hidden-layer activation of the policy and value networks.")] = "tanh",
    workers: Annotated[int, typer.Option(help="Runs in parallel processes.")] = 1,
    executor: Annotated[ExecutorKind, typer.Option(help=EXECUTOR_HELP)] = "process",
    address: Annotated[str | None, typer.Option(help=ADDRESS_HELP)] = None,
    tensorboard: Annotated[Path | None, typer.Option(help=TENSORBOARD_HELP)] = None,
    out: Annotated[Path, typer.Option(help="Folder for results.json, curves.png, paths/.")]
    = Path("runs"),
    save_paths: Annotated[bool, typer.Option(
        "--save-paths", help="Also write each run's learning path (collect format).")] = False,
    no_guard: Annotated[bool, typer.Option("--no-guard", help="Accept jumps unguarded.")]
    = False,
    guard_limit: Annotated[float | None, typer.Option(
        help="Trust region of the jump guard (default: the adapter's for the algorithm, e.g. "
             "KL 0.02 for PPO).")] = None,
    value_limit: Annotated[float | None, typer.Option(help=VALUE_LIMIT_HELP)] = None,
    entropy_limit: Annotated[float | None, typer.Option(help=ENTROPY_LIMIT_HELP)] = None,
    value_fit_limit: Annotated[float | None, typer.Option(help=VALUE_FIT_LIMIT_HELP)] = None,
    value_grad_limit: Annotated[float | None, typer.Option(help=VALUE_GRAD_LIMIT_HELP)] = None,
    targets: Annotated[str | None, typer.Option(
        help="What jumps: actor, critic or both. SAC/TD3: which optimizers get TIPL "
             "(default: both for SAC, actor for TD3, whose jumps are off unless --jump "
             "enabled=true); PPO/A2C: which parameters of their one optimizer a jump moves "
             "(default: both).")] = None,
    hp: Annotated[list[str] | None, typer.Option(
        "--hp", help="Algorithm hyperparameter KEY=VALUE (repeatable), e.g. --hp n_steps=512; "
                     "SB3 SAC/TD3: --hp action_noise=normal:0.1 (Gaussian, std in action "
                     "units) or ou:0.1.")] = None,
    jump: Annotated[list[str] | None, typer.Option(
        "--jump", help="Jump setting KEY=VALUE (repeatable; JumpConfig fields), e.g. "
                       "--jump horizon=4 --jump scale=2.")] = None,
) -> None:
    """Train with TIPL (or without: --predictor none); --compare adds the base optimizer on the
    same seeds and prints a side-by-side table and a learning-curve plot. Finished runs are
    kept in OUT/runs: running the same command again resumes instead of starting over.

    Example: tipl train --env InvertedPendulum-v5 --compare --seeds 3
    """
    options: dict[str, Any] = {
        "lib": lib, "algo": algo, "env": env, "steps": steps, "predictor": predictor,
        "compare": compare, "seed": seed, "seeds": seeds, "every": every, "threshold": threshold,
        "eval_episodes": eval_episodes, "activation": activation, "workers": workers,
        "executor": executor, "address": address, "tensorboard": tensorboard, "out": out,
        "save_paths": save_paths, "guard": not no_guard, "guard_limit": guard_limit,
        "value_limit": value_limit, "entropy_limit": entropy_limit,
        "value_fit_limit": value_fit_limit, "value_grad_limit": value_grad_limit,
        "targets": targets}
    if hidden:
        options["hidden_sizes"] = parse_ints(hidden)
    options["hyperparams"] = parse_hyperparams(hp or [])
    options["jump"] = parse_hyperparams(jump or [], "--jump")
    try:
        cfg = TrainConfig.model_validate(options)
    except (ValueError, TiplError) as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console)
    live = _Live(progress)
    try:
        with progress:
            summary = run_training(cfg, live.on_event, live.on_result)
    except TiplError as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    reused_note(summary.reused, cfg.out)
    console.print(summary_table(summary))
    line = ratio_line(summary)
    if line:
        console.print(line)
    thr = next(iter(summary.variants.values())).threshold
    plot = plot_curves({k: [r.curve for r in v.runs] for k, v in summary.variants.items()},
                       cfg.out / "curves.png", title=f"{cfg.lib} {cfg.algo} on {cfg.env}",
                       threshold=thr)
    console.print(f"Results: {cfg.out / 'results.json'}" + (f", plot: {plot}" if plot else ""))
    exit_for_runs(summary.failures, summary.interrupted, "finished runs are in results.json")
