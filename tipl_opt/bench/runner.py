"""Run a benchmark suite: every env x seed x variant through one executor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.bench.report import LINEAR, TIPL
from tipl_opt.bench.suites import BenchTask, get_suite
from tipl_opt.collect.runner import RunResult
from tipl_opt.train import BASE, TrainConfig, TrainSummary, run_many


def variants(predictor: str = "default") -> list[tuple[str, TIPLSetup | None]]:
    """The three variants every suite compares: base, TIPL and TIPL with ``linear``."""
    return [(BASE, None), (TIPL, TIPLSetup(predictor=predictor)),
            (LINEAR, TIPLSetup(predictor="linear"))]


def task_config(task: BenchTask, seeds: int, seed: int, out: Path) -> TrainConfig:
    return TrainConfig(lib=task.lib, algo=task.algo, env=task.env, steps=task.steps,
                       seed=seed, seeds=seeds, every=task.every,
                       eval_episodes=task.eval_episodes, hyperparams=task.hyperparams,
                       hidden_sizes=task.hidden_sizes, out=out / task.env)


def run_suite(suite: str, *, seeds: int, workers: int, out: Path, seed: int = 0,
              predictor: str = "default", envs: list[str] | None = None,
              on_event: Callable[[Any], None] | None = None,
              on_result: Callable[[RunResult], None] | None = None) -> list[TrainSummary]:
    """Train every env of ``suite`` with each variant on seeds ``seed..seed+seeds-1``."""
    tasks = [t for t in get_suite(suite) if envs is None or t.env in envs]
    jobs = [(task_config(t, seeds, seed, out), variants(predictor)) for t in tasks]
    return run_many(jobs, on_event, on_result, workers=workers)
