"""Run a benchmark suite: every env x seed x variant through one executor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.bench.report import LINEAR, TIPL
from tipl_opt.bench.suites import BenchTask, get_suite
from tipl_opt.collect.executor import ExecutorKind
from tipl_opt.collect.runner import RunResult
from tipl_opt.errors import ConfigError
from tipl_opt.train import BASE, TrainConfig, TrainSummary, run_many


def matched_jump(predictor: str, jump: dict[str, Any] | None = None) -> dict[str, Any]:
    """Jump settings that make both TIPL variants jump alike: ``jump`` plus the predictor's
    window length (``context``) and longest horizon, so that ``linear`` extrapolates from the
    same window exactly as far as the predictor jumps and only the prediction differs."""
    from tipl_opt.predictors import load_predictor

    p = load_predictor(predictor)
    return {"context": int(p.context),
            "horizon": int(max(getattr(p, "horizons", (1,)))), **(jump or {})}


def variants(predictor: str = "default", jump: dict[str, Any] | None = None,
             guard_limit: float | None = None) -> list[tuple[str, TIPLSetup | None]]:
    """The three variants every suite compares: base, TIPL and TIPL with ``linear``; ``linear``
    gets the predictor's window and horizon (:func:`matched_jump`)."""
    jump = jump or {}
    return [(BASE, None),
            (TIPL, TIPLSetup(predictor=predictor, jump=jump, guard_limit=guard_limit)),
            (LINEAR, TIPLSetup(predictor="linear", jump=matched_jump(predictor, jump),
                               guard_limit=guard_limit))]


def task_config(task: BenchTask, seeds: int, seed: int, out: Path,
                jump: dict[str, Any] | None = None, guard_limit: float | None = None,
                predictor: str = "default", tensorboard: Path | None = None) -> TrainConfig:
    return TrainConfig(lib=task.lib, algo=task.algo, env=task.env, steps=task.steps,
                       predictor=predictor,
                       seed=seed, seeds=seeds, every=task.every,
                       eval_episodes=task.eval_episodes, hyperparams=task.hyperparams,
                       hidden_sizes=task.hidden_sizes, jump=jump or {},
                       guard_limit=guard_limit, out=out / task.env,
                       tensorboard=tensorboard / task.env if tensorboard else None)


def run_suite(suite: str, *, seeds: int, workers: int, out: Path, seed: int = 0,
              predictor: str = "default", envs: list[str] | None = None,
              jump: dict[str, Any] | None = None, guard_limit: float | None = None,
              on_event: Callable[[Any], None] | None = None,
              on_result: Callable[[RunResult], None] | None = None,
              executor: ExecutorKind = "process", address: str | None = None,
              tensorboard: Path | None = None) -> list[TrainSummary]:
    """Train every env of ``suite`` with each variant on seeds ``seed..seed+seeds-1``, through
    the ``executor`` kind (Ray: on the cluster at ``address`` if given); with ``tensorboard``,
    each run writes its events under ``tensorboard/<env>/<run>``."""
    available = [t.env for t in get_suite(suite)]
    unknown = sorted(set(envs or ()) - set(available))
    if unknown:
        raise ConfigError(f"Suite '{suite}' has no env {', '.join(map(repr, unknown))}; its envs: "
                          f"{', '.join(available)}.")
    tasks = [t for t in get_suite(suite) if envs is None or t.env in envs]
    compared = variants(predictor, jump, guard_limit)
    jobs = [(task_config(t, seeds, seed, out, jump, guard_limit, predictor, tensorboard),
             compared) for t in tasks]
    return run_many(jobs, on_event, on_result, executor, workers, address)
