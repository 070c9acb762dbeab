"""Plan the runs of a collection, train each through its adapter, write its learning path."""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tipl_opt.adapters.base import TrainSpec
from tipl_opt.adapters.evaluation import check_env_id
from tipl_opt.collect.config import CollectConfig
from tipl_opt.collect.executor import Emit, Executor, make_executor
from tipl_opt.errors import ConfigError, PathFormatError
from tipl_opt.paths.format import SUFFIX, read_header
from tipl_opt.paths.spec import Snapshot
from tipl_opt.paths.writer import PathWriter, StorageDtype
from tipl_opt.plugins import get_adapter, get_plugin_manager

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTask:
    """One run to train: everything a worker process needs (picklable)."""

    name: str
    lib: str
    spec: TrainSpec
    path: Path
    dtype: StorageDtype


@dataclass(frozen=True)
class RunEvent:
    """Progress of one run, sent from the worker: ``kind`` is start, progress or snapshot."""

    run: str
    kind: str
    env_steps: int
    total_steps: int
    last_return: float = math.nan


@dataclass
class RunResult:
    name: str
    path: Path
    snapshots: int
    params: int
    first_return: float
    last_return: float
    wall_time_s: float
    skipped: bool = False


@dataclass
class CollectSummary:
    """What a collection did: finished (including skipped) runs, failures, interruption."""

    results: list[RunResult] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures and not self.interrupted


def run_name(lib: str, algo: str, env_id: str, seed: int) -> str:
    """File stem of a run: ``sb3-ppo-CartPole-v1-s0``."""
    safe_env = env_id.replace("/", "_").replace(":", "_")
    return f"{lib}-{algo.lower()}-{safe_env}-s{seed}"


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".tipl-write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"Output folder {folder} is not writable: {exc.strerror or exc}. "
                          "Choose another --out.") from exc


def _existing_result(task: RunTask) -> RunResult | None:
    """A finished run on disk (a valid file for the same library, algorithm and env)."""
    if not task.path.exists():
        return None
    try:
        header = read_header(task.path)
    except PathFormatError as exc:
        logger.warning("%s is unreadable (%s); it will be collected again", task.path,
                       exc.problem)
        return None
    meta = header.meta
    if (meta.get("library"), meta.get("algorithm"), meta.get("env_id"), meta.get("seed")) != (
            task.lib, task.spec.algo, task.spec.env_id, task.spec.seed):
        raise ConfigError(f"{task.path} belongs to another run ({meta.get('library')} "
                          f"{meta.get('algorithm')} {meta.get('env_id')}); use another --out.")
    t, p = header.tensors["weights"].shape
    return RunResult(task.name, task.path, t, p, math.nan, math.nan,
                     float(meta.get("wall_time_s", 0.0)), skipped=True)


def plan(config: CollectConfig) -> tuple[list[RunTask], list[RunResult]]:
    """Validate the configuration and split runs into (to do, already finished).

    Fails fast, before any training: unknown library, algorithm or env, an action space the
    algorithm cannot handle, bad hyperparameters, a non-writable output folder.
    """
    check_env_id(config.env)
    adapter = get_adapter(config.lib)
    algo = config.algo.lower()
    if algo not in adapter.algorithms:
        raise ConfigError(f"The '{config.lib}' adapter cannot train '{config.algo}'. "
                          f"Supported: {', '.join(adapter.algorithms)}.")
    adapter.check(config.train_spec(0))
    _check_writable(config.out)
    todo, done = [], []
    for i in range(config.runs):
        spec = config.train_spec(i)
        name = run_name(config.lib, algo, config.env, spec.seed)
        task = RunTask(name, config.lib, spec, config.out / f"{name}{SUFFIX}", config.dtype)
        finished = _existing_result(task)
        if finished is None:
            todo.append(task)
        else:
            done.append(finished)
    return todo, done


def run_one(task: RunTask, emit: Emit) -> RunResult:
    """Train one run and write its learning path atomically (runs inside a worker)."""
    adapter = get_adapter(task.lib)
    hook = get_plugin_manager().hook
    meta = {
        "library": task.lib,
        "library_version": adapter.library_version(),
        "algorithm": task.spec.algo,
        "env_id": task.spec.env_id,
        "seed": task.spec.seed,
        "total_steps": task.spec.total_steps,
        "cadence": {"unit": "env_steps", "every": task.spec.every},
        "network": {"hidden_sizes": list(task.spec.hidden_sizes),
                    "activation": task.spec.activation},
        "evaluation": {"episodes": task.spec.eval_episodes, "deterministic": True},
    }
    writer = PathWriter(task.path, meta, dtype=task.dtype)
    total = task.spec.total_steps
    started = time.perf_counter()
    emit(RunEvent(task.name, "start", 0, total))

    def on_snapshot(snapshot: Snapshot) -> None:
        writer.add(snapshot)
        hook.tipl_on_snapshot(run=task.name, snapshot=snapshot)
        emit(RunEvent(task.name, "snapshot", snapshot.env_steps, total, snapshot.return_mean))

    def on_progress(env_steps: int) -> None:
        emit(RunEvent(task.name, "progress", env_steps, total))

    hyperparameters = adapter.collect(task.spec, on_snapshot, on_progress)
    path = writer.finish(hyperparameters=hyperparameters)
    wall = time.perf_counter() - started
    info = {"snapshots": len(writer), "params": sum(s.numel for s in writer.specs or []),
            "wall_time_s": round(wall, 3)}
    hook.tipl_on_run_end(run=task.name, path=str(path), info=info)
    from tipl_opt.paths.reader import LearningPath

    lp = LearningPath(path)
    returns = lp.return_mean
    return RunResult(task.name, path, lp.num_snapshots, lp.num_params, float(returns[0]),
                     float(returns[-1]), wall)


def collect(config: CollectConfig, on_event: Callable[[Any], None] | None = None,
            executor: Executor | None = None,
            on_result: Callable[[RunResult], None] | None = None) -> CollectSummary:
    """Run a whole collection. Finished runs in ``config.out`` are skipped (resume).

    KeyboardInterrupt stops the running trials, keeps every finished file and returns a summary
    with ``interrupted=True``. A failing run is reported in ``failures``; the others go on.
    """
    todo, done = plan(config)
    summary = CollectSummary(results=list(done))
    for result in done:
        logger.info("skipping %s: already collected", result.name)
    executor = executor or make_executor(min(config.workers, max(len(todo), 1)))
    outcomes = executor.run(run_one, todo, on_event or (lambda event: None))
    try:
        for outcome in outcomes:
            if outcome.result is not None:
                summary.results.append(outcome.result)
                if on_result:
                    on_result(outcome.result)
            else:
                summary.failures[outcome.task.name] = outcome.error or "unknown error"
                logger.error("run %s failed:\n%s", outcome.task.name, outcome.error)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
    summary.results.sort(key=lambda r: r.name)
    return summary

