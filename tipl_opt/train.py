"""Train agents with and without TIPL on the same seeds, and measure their learning curves."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tipl_opt import run_cache
from tipl_opt.adapters.base import Activation, TIPLSetup, TrainSpec
from tipl_opt.collect.executor import Executor, ExecutorKind, Outcome, make_executor
from tipl_opt.collect.runner import RunResult, RunTask, check_request, drain, run_name
from tipl_opt.curves import (
    area_under_curve,
    bootstrap_median,
    final_return,
    steps_to_threshold,
    write_json,
)
from tipl_opt.errors import ConfigError
from tipl_opt.machine import cpu_model
from tipl_opt.paths.format import SUFFIX
from tipl_opt.thresholds import threshold_for

BASE = "base"


class TrainConfig(BaseModel):
    """``tipl train``: one agent (or several seeds), optionally compared against its base."""

    model_config = ConfigDict(extra="forbid")

    lib: str = "sb3"
    algo: str = "ppo"
    env: str = "CartPole-v1"
    steps: int = Field(default=50_000, gt=0)
    seed: int = 0
    seeds: int = Field(default=1, ge=1)
    predictor: str = "default"
    """``default``, a registered name (``linear``, ``pptb``, ``trend``...), a checkpoint folder, or
    ``none`` (the base optimizer alone)."""
    compare: bool = False
    """Also train the base optimizer on the same seeds, side by side."""
    every: int | None = Field(default=None, gt=0)
    """Env steps between evaluations (default: steps / 40)."""
    threshold: float | None = None
    """Return that "env steps to threshold" measures against; default: the env's solved level
    (:func:`tipl_opt.thresholds.threshold_for`). A target sized to the budget for an env whose
    solved level no short run reaches; it only measures, it changes no run (the return
    watchdog still holds jumps at the env's solved level)."""
    eval_episodes: int = Field(default=5, ge=1)
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: Activation = "tanh"
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    jump: dict[str, Any] = Field(default_factory=dict)
    guard: bool = True
    guard_limit: float | None = Field(default=None, gt=0)
    value_limit: float | None = Field(default=None, gt=0)
    """Largest relative change of an on-policy value head a jump may cause (default 0.1)."""
    entropy_limit: float | None = Field(default=None, gt=0)
    """Largest drop of an on-policy policy's entropy a jump may cause (nats per action
    dimension; default: the adapters' ``ENTROPY_LIMIT``)."""
    value_fit_limit: float | None = Field(default=None, gt=0)
    """Largest ratio of an on-policy value head's RMS error on the newest returns after and
    before a jump (1: no rise); ``None``: not checked."""
    value_grad_limit: float | None = Field(default=None, gt=0)
    """Largest ratio of the norm of an on-policy value head's gradient on the newest returns
    after and before a jump (1: no rise); ``None``: the algorithm's default (2 for PPO, not
    checked for A2C)."""
    targets: Literal["actor", "critic", "both"] | None = None
    workers: int = Field(default=1, ge=1)
    executor: ExecutorKind = "process"
    """Where runs train: ``process`` (this machine) or ``ray`` (Ray tasks)."""
    address: str | None = None
    """Ray cluster to join; ``None``: a local Ray with ``workers`` CPUs."""
    tensorboard: Path | None = None
    """Write each run's TensorBoard events (the library's own scalars and ``tipl/`` jump
    reports) under ``tensorboard/<run>``."""
    out: Path = Path("runs")
    save_paths: bool = False
    """Also write each run's learning path (collect format) under ``out/paths``."""

    def variants(self) -> list[tuple[str, TIPLSetup | None]]:
        """(name, setup) per variant: ``base`` has no setup."""
        tipl = None if self.predictor == "none" else TIPLSetup(
            predictor=self.predictor, jump=self.jump, guard=self.guard,
            guard_limit=self.guard_limit, value_limit=self.value_limit,
            entropy_limit=self.entropy_limit, value_fit_limit=self.value_fit_limit,
            value_grad_limit=self.value_grad_limit,
            targets=self.targets)
        if tipl is None:
            return [(BASE, None)]
        name = f"tipl:{Path(self.predictor).name}" if self.predictor not in (
            "default", "linear") else f"tipl:{self.predictor}"
        return [(BASE, None), (name, tipl)] if self.compare else [(name, tipl)]


def train_spec(config: TrainConfig, seed: int) -> TrainSpec:
    every = config.every or max(config.steps // 40, 1)
    return TrainSpec(algo=config.algo.lower(), env_id=config.env, seed=seed,
                     total_steps=config.steps, every=every, hidden_sizes=config.hidden_sizes,
                     activation=config.activation, eval_episodes=config.eval_episodes,
                     hyperparams=config.hyperparams)


def make_tasks(config: TrainConfig, variants: Sequence[tuple[str, TIPLSetup | None]]
               ) -> list[tuple[RunTask, str]]:
    """(task, variant name) per (seed, variant), seeds interleaved so that an interrupted
    comparison still holds complete pairs."""
    tasks = []
    for i in range(config.seeds):
        seed = config.seed + i
        for name, setup in variants:
            run = f"{run_name(config.lib, config.algo, config.env, seed)}-{name.replace(':', '-')}"
            tasks.append((RunTask(run, config.lib, train_spec(config, seed),
                                  config.out / "paths" / f"{run}{SUFFIX}", "float32",
                                  tipl=setup, write_path=config.save_paths,
                                  tensorboard=config.tensorboard / run
                                  if config.tensorboard else None), name))
    return tasks


@dataclass
class VariantSummary:
    """Metrics of one variant over its seeds: medians with bootstrap 95% intervals."""

    name: str
    runs: list[RunResult] = field(default_factory=list)
    threshold: float | None = None

    def metric(self, which: str) -> tuple[float, float, float]:
        values = [self.value(r, which) for r in self.runs]
        return bootstrap_median(values)

    def value(self, run: RunResult, which: str) -> float:
        if which == "steps_to_threshold":
            return steps_to_threshold(run.curve, self.threshold) if self.threshold is not None \
                else math.nan
        if which == "final_return":
            return final_return(run.curve)
        if which == "auc":
            return area_under_curve(run.curve)
        if which == "wall_time":
            return run.wall_time_s
        raise KeyError(which)

    def jumps(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for r in self.runs:
            for k, v in r.jumps.items():
                total[k] = total.get(k, 0) + v
        return total

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "seeds": [r.seed for r in self.runs],
                **{m: dict(zip(("median", "low", "high"), self.metric(m), strict=True))
                   for m in ("steps_to_threshold", "final_return", "auc", "wall_time")},
                "reached_threshold": sum(
                    math.isfinite(self.value(r, "steps_to_threshold")) for r in self.runs),
                "jumps": self.jumps(),
                "curves": {r.name: [list(c) for c in r.curve] for r in self.runs}}


@dataclass
class TrainSummary:
    config: TrainConfig
    variants: dict[str, VariantSummary]
    failures: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    threshold_source: str = ""

    @property
    def reused(self) -> int:
        """Runs not trained again: their results were found in ``out/runs`` (a resumed run)."""
        return sum(r.skipped for v in self.variants.values() for r in v.runs)

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config.model_dump(mode="json"),
                "threshold": next(iter(self.variants.values())).threshold,
                "threshold_source": self.threshold_source,
                "variants": {k: v.to_json() for k, v in self.variants.items()},
                "failures": self.failures, "interrupted": self.interrupted,
                "machine": cpu_model()}


def check(config: TrainConfig) -> None:
    """Fail before training: the run request (:func:`tipl_opt.collect.runner.check_request`:
    library, algorithm, env, hyperparameters, output folder), the jump settings and the
    predictor (a bad checkpoint is named now, not once runs start)."""
    from tipl_opt.jumps import JumpConfig

    try:
        JumpConfig.model_validate(config.jump)
    except ValueError as exc:
        raise ConfigError(f"Invalid jump settings {config.jump}: {exc}") from exc
    if config.predictor not in ("none", "default", "linear") and Path(config.predictor).exists():
        from tipl_opt.predictors.loading import load_checkpoint

        load_checkpoint(config.predictor)
    elif config.predictor not in ("none", "default", "linear"):
        from tipl_opt.plugins import predictors

        if config.predictor not in predictors():
            raise ConfigError(f"Unknown predictor '{config.predictor}': use default, linear, "
                              "none or a checkpoint folder written by `tipl pretrain`.")
    check_request(config.lib, train_spec(config, config.seed), config.out)  # creates out last


def empty_summary(config: TrainConfig, variants: Sequence[tuple[str, TIPLSetup | None]]
                  ) -> TrainSummary:
    threshold = ((config.threshold, "given (--threshold)") if config.threshold is not None
                 else threshold_for(config.env))
    return TrainSummary(config, {name: VariantSummary(name, threshold=threshold[0]
                                                      if threshold else None)
                                 for name, _ in variants},
                        threshold_source=threshold[1] if threshold else "")


def run_many(jobs: Sequence[tuple[TrainConfig, Sequence[tuple[str, TIPLSetup | None]]]],
             on_event: Callable[[Any], None] | None = None,
             on_result: Callable[[RunResult], None] | None = None,
             executor: Executor | ExecutorKind | None = None, workers: int = 1,
             address: str | None = None) -> list[TrainSummary]:
    """Train every (config, seed, variant) of several configs through one executor (or one
    made for ``workers`` trials of that kind, on the Ray cluster at ``address`` if given).

    Each finished run is kept in ``config.out/runs`` (:mod:`tipl_opt.run_cache`); runs found
    there with the same settings are reused, so an interrupted comparison resumes."""
    summaries, owner = [], {}
    tasks: list[RunTask] = []
    for config, variants in jobs:
        check(config)
        summary = empty_summary(config, variants)
        summaries.append(summary)
        for task, variant in make_tasks(config, variants):
            cached = run_cache.load(config.out, task)
            if cached is not None:
                summary.variants[variant].runs.append(cached)
                continue
            owner[task.name] = (summary, variant)
            tasks.append(task)

    def keep(outcome: Outcome) -> None:
        summary, variant = owner[outcome.task.name]
        if outcome.result is not None:
            summary.variants[variant].runs.append(outcome.result)
            run_cache.store(summary.config.out, outcome.task, outcome.result)
            if on_result:
                on_result(outcome.result)
        else:
            summary.failures[outcome.task.name] = outcome.error or "unknown error"

    if executor is None or isinstance(executor, str):
        executor = make_executor(max(1, min(workers, len(tasks))), executor or "process",
                                 address)
    if drain(executor, tasks, on_event, keep):
        for summary in summaries:
            summary.interrupted = True
    for summary in summaries:
        for v in summary.variants.values():
            v.runs.sort(key=lambda r: r.name)
    return summaries


def run_training(config: TrainConfig, on_event: Callable[[Any], None] | None = None,
                 on_result: Callable[[RunResult], None] | None = None,
                 executor: Executor | None = None) -> TrainSummary:
    """Train every (seed, variant) of ``config`` and summarise. Writes ``out/results.json``."""
    [summary] = run_many([(config, config.variants())], on_event, on_result,
                         executor or config.executor, config.workers, config.address)
    write_json(summary.to_json(), config.out / "results.json")
    return summary
