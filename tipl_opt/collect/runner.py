"""Plan the runs of a collection, train each through its adapter, write its learning path."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tipl_opt.adapters.base import TIPLSetup, TrainSpec
from tipl_opt.adapters.evaluation import check_env_id
from tipl_opt.atomic import check_writable
from tipl_opt.collect.config import CollectConfig
from tipl_opt.collect.executor import Emit, Executor, Outcome, make_executor
from tipl_opt.errors import ConfigError
from tipl_opt.hookspecs import hookimpl
from tipl_opt.jumps import JumpTally
from tipl_opt.paths.format import SUFFIX
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
    tensorboard: Path | None = None
    """The run's own TensorBoard folder (``None``: no TensorBoard events); not part of what
    the run is, so a finished run is reused whatever this says."""


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
    jump_steps: list[int] = field(default_factory=list)
    """Training env steps at each accepted jump, in order (empty without TIPL): how many
    jumps came before a point of the curve, e.g. before the threshold."""
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


def check_request(lib: str, spec: TrainSpec, out: Path) -> None:
    """The one validation of a run request (collect, train and bench), before any training:
    unknown library, algorithm or env, an action space the algorithm cannot handle, bad
    hyperparameters, a non-writable output folder. Raises ConfigError."""
    check_env_id(spec.env_id)
    adapter = get_adapter(lib)
    if spec.algo.lower() not in adapter.algorithms:
        raise ConfigError(f"The '{lib}' adapter cannot train '{spec.algo}'. "
                          f"Supported: {', '.join(adapter.algorithms)}.")
    adapter.check(spec)
    check_writable(out)


def plan(config: CollectConfig) -> tuple[list[RunTask], list[RunResult]]:
    """Validate the configuration and split runs into (to do, already finished).

    Fails fast, before any training (:func:`check_request`); a finished file collected with
    other settings is refused (:func:`tipl_opt.run_cache.finished_path`).
    """
    from tipl_opt import run_cache

    check_request(config.lib, config.train_spec(0), config.out)
    algo = config.algo.lower()
    todo, done = [], []
    for i in range(config.runs):
        spec = config.train_spec(i)
        name = run_name(config.lib, algo, config.env, spec.seed)
        task = RunTask(name, config.lib, spec, config.out / f"{name}{SUFFIX}", config.dtype)
        finished = run_cache.finished_path(task)
        if finished is None:
            todo.append(task)
        else:
            done.append(finished)
    return todo, done


def drain(executor: Executor, tasks: list[RunTask], on_event: Callable[[Any], None] | None,
          on_outcome: Callable[[Outcome], None]) -> bool:
    """The one outcome loop: run ``tasks`` through ``executor``, hand every outcome to
    ``on_outcome`` as it arrives, and return ``True`` if Ctrl-C stopped it (the finished runs
    were handed over; the running ones are stopped)."""
    outcomes = executor.run(run_one, tasks, on_event or (lambda event: None))
    try:
        for outcome in outcomes:
            on_outcome(outcome)
    except KeyboardInterrupt:
        return True
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
    return False


class _JumpForwarder:
    """Plugin registered in the worker while a run trains: counts and forwards jumps."""

    def __init__(self, on_jump: Callable[[Any], None]) -> None:
        self.on_jump = on_jump
        self.tally = JumpTally()

    @property
    def counts(self) -> dict[str, int]:
        """Jump counters of the run (snapshots are counted by the optimizers alone)."""
        return {k: v for k, v in self.tally.items() if k != "snapshots"}

    def settle(self, hyperparameters: dict[str, Any]) -> None:
        """Add the jumps the adapter's return watchdog undid and those the persistence check
        held (counted by the optimizers, not reported as jump events) once the run is over."""
        tipl = hyperparameters.get("tipl") if isinstance(hyperparameters, dict) else None
        counters = tipl.get("counters") if isinstance(tipl, dict) else None
        if isinstance(counters, dict):
            for key in ("jumps_undone", "jumps_held"):
                self.tally[key] = sum(int(part.get(key, 0)) for part in counters.values()
                                      if isinstance(part, dict))

    @hookimpl
    def tipl_on_jump(self, report: Any) -> None:
        self.tally.add(report)
        self.on_jump(report)


def request_of(task: RunTask) -> dict[str, Any]:
    """What was asked of a collected run, as its learning path records it (and as resuming
    compares it): library, the whole train spec, storage dtype, TIPL setup."""
    return {"lib": task.lib, "spec": task.spec.model_dump(mode="json"), "dtype": task.dtype,
            "tipl": task.tipl.model_dump(mode="json") if task.tipl else None}


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
        "request": request_of(task),
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

    jump_steps: list[int] = []

    def on_jump(report: Any) -> None:
        if report.accepted:
            jump_steps.append(env_steps_now[0])
        emit(RunEvent(task.name, "jump", env_steps_now[0], total,
                      accepted=bool(report.accepted)))

    forwarder = _JumpForwarder(on_jump)
    pm.register(forwarder)
    try:
        extra: dict[str, Any] = {"tipl": task.tipl} if task.tipl is not None else {}
        if task.tensorboard is not None:
            extra["tensorboard"] = task.tensorboard
        hyperparameters = adapter.collect(task.spec, on_snapshot, on_progress, **extra)
        forwarder.settle(hyperparameters)
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
                     jumps=forwarder.counts if task.tipl else {}, jump_steps=jump_steps,
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

    def keep(outcome: Outcome) -> None:
        if outcome.result is not None:
            summary.results.append(outcome.result)
            if on_result:
                on_result(outcome.result)
        else:
            summary.failures[outcome.task.name] = outcome.error or "unknown error"
            logger.error("run %s failed:\n%s", outcome.task.name, outcome.error)

    executor = executor or make_executor(min(config.workers, max(len(todo), 1)),
                                         config.executor, config.address)
    summary.interrupted = drain(executor, todo, on_event, keep)
    summary.results.sort(key=lambda r: r.name)
    return summary
