"""Run a benchmark suite: every env x seed x variant through one executor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.bench.report import LINEAR, TIPL
from tipl_opt.bench.suites import BenchTask, get_suite, task_label
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


def variants(setup: TIPLSetup | None = None) -> list[tuple[str, TIPLSetup | None]]:
    """The three variants every suite compares: base, TIPL (``setup``: predictor, jump and guard
    settings; default: the embedded predictor with the adapter's defaults) and TIPL with
    ``linear``, which gets the same settings plus the predictor's window and horizon
    (:func:`matched_jump`)."""
    setup = setup or TIPLSetup()
    linear = setup.model_copy(update={"predictor": "linear",
                                      "jump": matched_jump(setup.predictor, setup.jump)})
    return [(BASE, None), (TIPL, setup), (LINEAR, linear)]


def task_config(task: BenchTask, seeds: int, seed: int, out: Path,
                setup: TIPLSetup | None = None, tensorboard: Path | None = None,
                label: str | None = None) -> TrainConfig:
    """The ``tipl train`` settings of one task, its runs under ``out/<label>`` (default: the
    task's env id; :func:`~tipl_opt.bench.suites.task_label`)."""
    setup = setup or TIPLSetup()
    label = label or task.env
    return TrainConfig(lib=task.lib, algo=task.algo, env=task.env, steps=task.steps,
                       predictor=setup.predictor,
                       seed=seed, seeds=seeds, every=task.every, threshold=task.threshold,
                       eval_episodes=task.eval_episodes, hyperparams=task.hyperparams,
                       hidden_sizes=task.hidden_sizes, jump=setup.jump, guard=setup.guard,
                       guard_limit=setup.guard_limit, value_limit=setup.value_limit,
                       entropy_limit=setup.entropy_limit,
                       value_fit_limit=setup.value_fit_limit,
                       value_grad_limit=setup.value_grad_limit,
                       out=out / label,
                       tensorboard=tensorboard / label if tensorboard else None)


def run_suite(suite: str, *, seeds: int, workers: int, out: Path, seed: int = 0,
              setup: TIPLSetup | None = None, envs: list[str] | None = None,
              on_event: Callable[[Any], None] | None = None,
              on_result: Callable[[RunResult], None] | None = None,
              executor: ExecutorKind = "process", address: str | None = None,
              tensorboard: Path | None = None) -> list[TrainSummary]:
    """Train every env of ``suite`` with each variant (:func:`variants` of ``setup``) on seeds
    ``seed..seed+seeds-1``, through the ``executor`` kind (Ray: on the cluster at ``address``
    if given); with ``tensorboard``, each run writes its events under
    ``tensorboard/<env>/<run>``."""
    every_env = [t.env for t in get_suite(suite)]
    every_task = [(t.env, t.lib, t.algo) for t in get_suite(suite)]
    labelled = [(t, task_label(t.env, t.lib, t.algo, every_task)) for t in get_suite(suite)]
    available = sorted({*every_env, *(name for _, name in labelled)}, key=str.lower)
    unknown = sorted(set(envs or ()) - set(available))
    if unknown:
        raise ConfigError(f"Suite '{suite}' has no env {', '.join(map(repr, unknown))}; its envs: "
                          f"{', '.join(available)}.")
    compared = variants(setup)
    jobs = [(task_config(t, seeds, seed, out, setup, tensorboard, name), compared)
            for t, name in labelled if envs is None or t.env in envs or name in envs]
    return run_many(jobs, on_event, on_result, executor, workers, address)
