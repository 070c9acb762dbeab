"""Run trials as Ray tasks: on this machine's CPUs or on a Ray cluster.

Each trial is one Ray task holding one CPU (and ``num_gpus`` GPUs when asked) with one torch
thread. Progress events travel back through a Ray queue (an actor) and reach ``on_event`` in the
caller's thread, so the display is the same as with the local process pool. A task whose worker
dies (killed, out of memory, node lost) is retried up to ``max_retries`` times and then reported
as failed; the other trials go on. An error raised by the trial itself is reported at once (a
retry would fail the same way). Closing the iterator early, or Ctrl-C, cancels the trials still
running; finished ones are kept.

Ray is imported only when trials are run (``pip install "tipl-opt[ray]"``). Results are written
by the trials themselves, atomically, to the paths the tasks name: on a cluster every node must
see the output folder at the same path (a shared filesystem). Relative paths are resolved from
the caller's working directory, which each task enters when it exists on its node.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from tipl_opt.collect.executor import Emit, Outcome
from tipl_opt.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger(__name__)

POLL_S = 0.2
"""Seconds between checks for finished tasks (events are forwarded as they are polled)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError('--executor ray needs Ray: pip install "tipl-opt[ray]"') from exc
    return ray


def _trial(fn: Callable[[Any, Emit], Any], task: Any, events: Any, cwd: str
           ) -> tuple[str, Any]:
    """The body of one Ray task: ``("result", value)`` or ``("error", traceback)``."""
    import torch

    torch.set_num_threads(1)
    if os.path.isdir(cwd):
        os.chdir(cwd)

    def emit(event: Any) -> None:
        events.put(event)

    try:
        return "result", fn(task, emit)
    except Exception:
        return "error", traceback.format_exc()


class RayExecutor:
    """Runs every trial as a Ray task (see the module docstring).

    * ``address``: the cluster to join (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``);
      ``None`` joins the Ray instance this process already started, or starts a local one with
      ``workers`` CPUs.
    * ``workers``: CPUs of a local instance started here (ignored when joining a cluster: there
      Ray runs one trial per free CPU).
    * ``num_gpus``: GPUs each trial holds (0: none; a fraction shares one GPU).
    * ``max_retries``: times a trial whose worker died is run again before it is reported.
    """

    def __init__(self, workers: int = 1, address: str | None = None, num_gpus: float = 0,
                 max_retries: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if num_gpus < 0 or max_retries < 0:
            raise ValueError("num_gpus and max_retries must be >= 0")
        self.workers, self.address = workers, address
        self.num_gpus, self.max_retries = num_gpus, max_retries

    def _connect(self, ray: Any) -> bool:
        """Join or start Ray; ``True`` when this call started it (and must shut it down)."""
        if ray.is_initialized():
            return False
        if self.address is None:
            ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=self.address, log_to_driver=False)
        logger.info("Ray resources: %s", ray.cluster_resources())
        return True

    def run(self, fn: Callable[[T, Emit], R], tasks: Sequence[T],
            on_event: Callable[[Any], None]) -> Iterator[Outcome[T, R]]:
        if not tasks:
            return
        ray = _import_ray()
        from ray.util.queue import Queue

        started = self._connect(ray)
        events = Queue()
        remote = ray.remote(_trial).options(num_cpus=1, num_gpus=self.num_gpus,
                                            max_retries=self.max_retries,
                                            retry_exceptions=False)
        cwd = os.getcwd()
        pending = {remote.remote(fn, task, events, cwd): task for task in tasks}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                self._forward(events, on_event)
                for ref in done:
                    task = pending.pop(ref)
                    try:
                        kind, payload = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        yield Outcome(task, error=f"Ray task failed after "
                                      f"{self.max_retries} retries: {type(exc).__name__}: "
                                      f"{exc}")
                        continue
                    self._forward(events, on_event)  # the trial's last events first
                    if kind == "result":
                        yield Outcome(task, result=payload)
                    else:
                        yield Outcome(task, error=payload)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if pending:
                time.sleep(POLL_S)  # let the cancelled workers go before the queue
            events.shutdown()
            if started:
                ray.shutdown()

    @staticmethod
    def _forward(events: Any, on_event: Callable[[Any], None]) -> None:
        while True:
            batch = events.get_nowait_batch(events.qsize()) if events.qsize() else []
            if not batch:
                return
            for event in batch:
                on_event(event)
