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

from tipl_opt.adapters.base import TIPLSetup, TrainSpec
from tipl_opt.adapters.evaluation import check_env_id
from tipl_opt.collect.config import CollectConfig
from tipl_opt.collect.executor import Emit, Executor, make_executor
from tipl_opt.errors import ConfigError, PathFormatError
from tipl_opt.hookspecs import hookimpl
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
    tipl: TIPLSetup | None = None
    """Attach TIPLOptimizer as described (``None``: the library's own optimizer)."""
    write_path: bool = True
    """Write the learning-path file (``False``: only the curve comes back)."""


@dataclass(frozen=True)
class RunEvent:
    """Progress of one run, sent from the worker: ``kind`` is start, progress, snapshot or
    jump (then ``accepted`` says whether the jump was taken)."""

    run: str
    kind: str
    env_steps: int
    total_steps: int
    last_return: float = math.nan
    accepted: bool = False


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
    curve: list[tuple[int, float, float]] = field(default_factory=list)
    """(env steps, mean return, std return) at every snapshot."""
    jumps: dict[str, int] = field(default_factory=dict)
    """Jump counters summed over the run's TIPL optimizers (empty without TIPL)."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    """The run's seed (``None`` where unknown)."""


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


def check_writable(folder: Path) -> None:
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
                     float(meta.get("wall_time_s", 0.0)), skipped=True, seed=task.spec.seed)


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
    check_writable(config.out)
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


class _JumpForwarder:
    """Plugin registered in the worker while a run trains: counts and forwards jumps."""

    def __init__(self, on_jump: Callable[[Any], None]) -> None:
        self.on_jump = on_jump
        self.counts = {"jumps_tried": 0, "jumps_accepted": 0, "jumps_shortened": 0,
                       "jumps_rejected": 0}

    @hookimpl
    def tipl_on_jump(self, report: Any) -> None:
        self.counts["jumps_tried"] += 1
        self.counts["jumps_accepted" if report.accepted else "jumps_rejected"] += 1
        self.counts["jumps_shortened"] += int(report.shortened)
        self.on_jump(report)


def run_one(task: RunTask, emit: Emit) -> RunResult:
    """Train one run and write its learning path atomically (runs inside a worker)."""
    adapter = get_adapter(task.lib)
    pm = get_plugin_manager()
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
        "tipl": task.tipl.model_dump(mode="json") if task.tipl else None,
    }
    writer = PathWriter(task.path, meta, dtype=task.dtype)
    total = task.spec.total_steps
    curve: list[tuple[int, float, float]] = []
    env_steps_now, num_params = [0], [0]
    started = time.perf_counter()
    emit(RunEvent(task.name, "start", 0, total))

    def on_snapshot(snapshot: Snapshot) -> None:
        if task.write_path:
            writer.add(snapshot)
        curve.append((snapshot.env_steps, snapshot.return_mean, snapshot.return_std))
        num_params[0] = sum(p.tensor.numel() for p in snapshot.params)
        env_steps_now[0] = snapshot.env_steps
        pm.hook.tipl_on_snapshot(run=task.name, snapshot=snapshot)
        emit(RunEvent(task.name, "snapshot", snapshot.env_steps, total, snapshot.return_mean))

    def on_progress(env_steps: int) -> None:
        env_steps_now[0] = env_steps
        emit(RunEvent(task.name, "progress", env_steps, total))

    forwarder = _JumpForwarder(lambda report: emit(RunEvent(
        task.name, "jump", env_steps_now[0], total, accepted=bool(report.accepted))))
    pm.register(forwarder)
    try:
        extra = {"tipl": task.tipl} if task.tipl is not None else {}
        hyperparameters = adapter.collect(task.spec, on_snapshot, on_progress, **extra)
    finally:
        pm.unregister(forwarder)
    wall = time.perf_counter() - started
    path = task.path
    if task.write_path:
        path = writer.finish(hyperparameters=hyperparameters,
                             jumps=forwarder.counts if task.tipl else None)
        info = {"snapshots": len(writer), "params": num_params[0], "wall_time_s": round(wall, 3)}
        pm.hook.tipl_on_run_end(run=task.name, path=str(path), info=info)
    return RunResult(task.name, path, len(curve), num_params[0], curve[0][1] if curve else math.nan,
                     curve[-1][1] if curve else math.nan, wall, curve=curve,
                     jumps=forwarder.counts if task.tipl else {},
                     hyperparameters=hyperparameters, seed=task.spec.seed)


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

