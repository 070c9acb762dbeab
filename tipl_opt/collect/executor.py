"""Run independent trials somewhere: in this process, in a pool of local processes, or as Ray
tasks (:mod:`tipl_opt.collect.ray_executor`).

The :class:`Executor` protocol is all the collection code needs, so a cluster engine (Ray, Dask,
Slurm) can replace the local pool without touching the rest.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from tipl_opt.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

Emit = Callable[[Any], None]
"""Sends a small picklable progress event from inside a trial to the caller."""

logger = logging.getLogger(__name__)


@dataclass
class Outcome(Generic[T, R]):
    """One finished trial: its result, or the error that ended it (a formatted traceback)."""

    task: T
    result: R | None = None
    error: str | None = None


class Executor(Protocol):
    """Runs ``fn(task, emit)`` for every task, in any order and place.

    ``fn`` and the tasks must be picklable (a module-level function). Events ``fn`` emits reach
    ``on_event`` in the caller's thread. Outcomes are yielded as trials finish. Closing the
    iterator early (or KeyboardInterrupt) stops the trials still running; finished ones are kept.
    """

    def run(self, fn: Callable[[T, Emit], R], tasks: Sequence[T],
            on_event: Callable[[Any], None]) -> Iterator[Outcome[T, R]]: ...


def _limit_threads() -> None:
    import torch

    torch.set_num_threads(1)


class InlineExecutor:
    """Runs trials one after another in this process (debuggable; used for ``--workers 1``)."""

    def run(self, fn: Callable[[T, Emit], R], tasks: Sequence[T],
            on_event: Callable[[Any], None]) -> Iterator[Outcome[T, R]]:
        _limit_threads()
        for task in tasks:
            try:
                yield Outcome(task, result=fn(task, on_event))
            except Exception:
                yield Outcome(task, error=traceback.format_exc())


def _child(fn: Callable[[Any, Emit], Any], task: Any, index: int, out: Any) -> None:
    _limit_threads()
    try:
        result = fn(task, lambda event: out.put(("event", index, event)))
    except KeyboardInterrupt:
        return
    except BaseException:
        out.put(("error", index, traceback.format_exc()))
    else:
        out.put(("result", index, result))


class ProcessExecutor:
    """Runs up to ``workers`` trials at once, each in its own spawned process with one torch
    thread. Interrupting the iteration terminates the running processes."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def run(self, fn: Callable[[T, Emit], R], tasks: Sequence[T],
            on_event: Callable[[Any], None]) -> Iterator[Outcome[T, R]]:
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        pending = list(enumerate(tasks))
        running: dict[int, Any] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    index, task = pending.pop(0)
                    proc = ctx.Process(target=_child, args=(fn, task, index, out), daemon=True)
                    proc.start()
                    running[index] = proc
                try:
                    kind, index, payload = out.get(timeout=0.2)
                except queue.Empty:
                    for index, proc in list(running.items()):
                        if not proc.is_alive() and out.empty():
                            running.pop(index).join()
                            yield Outcome(tasks[index], error=f"worker process died with exit "
                                          f"code {proc.exitcode}")
                    continue
                if kind == "event":
                    on_event(payload)
                    continue
                running.pop(index).join()
                if kind == "result":
                    yield Outcome(tasks[index], result=payload)
                else:
                    yield Outcome(tasks[index], error=payload)
        finally:
            for proc in running.values():
                proc.terminate()
            for proc in running.values():
                proc.join()


ExecutorKind = Literal["process", "ray"]
"""Where trials run: ``process`` (this machine: inline for one worker, else a process pool) or
``ray`` (Ray tasks: :class:`~tipl_opt.collect.ray_executor.RayExecutor`)."""


def make_executor(workers: int, kind: ExecutorKind = "process",
                  address: str | None = None) -> Executor:
    """The executor for ``workers`` parallel trials: local (``process``) or Ray tasks, on the
    cluster at ``address`` when given (Ray only)."""
    if kind == "ray":
        from tipl_opt.collect.ray_executor import RayExecutor

        return RayExecutor(workers, address)
    if address is not None:
        raise ConfigError("--address needs --executor ray")
    return InlineExecutor() if workers == 1 else ProcessExecutor(workers)
