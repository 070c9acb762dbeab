"""Evaluate the planned weights through the runs' adapters and build the report."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from tipl_opt import atomic
from tipl_opt.collect.executor import Emit, make_executor
from tipl_opt.infer import train_spec
from tipl_opt.jump_value.plan import JumpPlan, Window, WindowTask, sources_seen, training_runs
from tipl_opt.jump_value.plot import plot_report
from tipl_opt.jump_value.stats import aggregate
from tipl_opt.paths import LearningPath
from tipl_opt.paths.spec import unflatten

logger = logging.getLogger(__name__)

FORMAT = "tipl-jump-value"
FORMAT_VERSION = 1


@dataclass
class EvaluationDone:
    """Progress event: one weight vector of a window has been evaluated."""

    run: str
    index: int


def evaluate_window(task: WindowTask, emit: Emit) -> list[tuple[float, float]]:
    """(mean, std) return of each weight vector of ``task`` (runs in a worker)."""
    from tipl_opt.plugins import get_adapter

    run = LearningPath(task.path)
    adapter, spec = get_adapter(run.library), train_spec(run)
    out: list[tuple[float, float]] = []
    for weights in task.weights:
        params = unflatten(torch.from_numpy(weights), run.specs)
        mean, std = adapter.evaluate_weights(spec, params, task.episodes)
        out.append((float(mean), float(std)))
        emit(EvaluationDone(run.name, task.index))
    return out


def measure_jumps(plan: JumpPlan, on_event: Callable[[Any], None] | None = None
                  ) -> dict[str, Any]:
    """Evaluate every window of ``plan`` and return the report (see :func:`write_report`)."""
    started = time.perf_counter()
    by_task = {(w.task.path, w.index): w for w in plan.windows}
    returns: dict[tuple[str, int], list[tuple[float, float]]] = {}
    errors: list[dict[str, Any]] = []
    executor = make_executor(plan.config.workers)
    for outcome in executor.run(evaluate_window, [w.task for w in plan.windows],
                                on_event or (lambda event: None)):
        key = (outcome.task.path, outcome.task.index)
        if outcome.result is not None:
            returns[key] = outcome.result
        else:
            last = (outcome.error or "unknown error").strip().splitlines()[-1]
            errors.append({"run": by_task[key].run.name, "index": key[1], "error": last})
            logger.error("window %s of %s failed: %s", key[1], by_task[key].run.name, last)
    rows = [row for w in plan.windows if (w.task.path, w.index) in returns
            for row in _rows(w, returns[(w.task.path, w.index)], plan)]
    return _report(plan, rows, errors, time.perf_counter() - started)


def _rows(window: Window, returns: list[tuple[float, float]], plan: JumpPlan
          ) -> list[dict[str, Any]]:
    run, t = window.run, window.index
    r_t = returns[0][0]
    rows = []
    for h in plan.config.horizons:
        r_real = returns[window.real[h]][0]
        for label in plan.predictors:
            slot = window.predicted[(label, h)]
            r_pred = returns[slot][0] if slot is not None else math.nan
            gain_real, gain_pred = r_real - r_t, r_pred - r_t
            rows.append({
                "run": run.name, "library": run.library, "algorithm": run.algorithm,
                "env_id": run.env_id, "t": t, "env_steps": int(run.env_steps[t]),
                "predictor": label, "horizon": h, "rollout": window.steps[(label, h)],
                "return_t": r_t, "return_real": r_real, "return_pred": r_pred,
                "gain_real": gain_real, "gain_pred": gain_pred,
                "share": gain_pred / gain_real if gain_real != 0 else None,
                "progress": window.progress[(label, h)], "finite": slot is not None})
    return rows


def _report(plan: JumpPlan, rows: list[dict[str, Any]], errors: list[dict[str, Any]],
            wall_s: float) -> dict[str, Any]:
    from tipl_opt import __version__

    windows_of: dict[str, list[int]] = {}
    for w in plan.windows:
        windows_of.setdefault(w.run.name, []).append(w.index)
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tipl_opt_version": __version__,
        "torch_version": torch.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 1), "evaluations": plan.evaluations,
        "settings": plan.config.model_dump(mode="json"),
        "definitions": {
            "share": "(return_pred - return_t) / (return_real - return_t) of one window; null "
                     "when the real return did not change",
            "share_of_means": "mean(gain_pred) / mean(gain_real) over the group's windows",
            "ci95": "2.5 and 97.5 percentiles of a two-level bootstrap (runs with replacement, "
                    "then windows within each drawn run); null when the resampled real gain "
                    "was 0 in more than 10% of the resamples",
            "median_share_improving": "median share over windows whose real return improved",
            "progress": "<pred - w_t, w_{t+h} - w_t> / |w_{t+h} - w_t|^2 in weight space",
            "rollout": "the horizons of the predictions made in a row to reach the horizon"},
        "predictors": [{"label": label, "spec": plan.specs[label], "name": p.name,
                        "context": p.context, "horizons": list(p.horizons),
                        "trained_on_sources": sorted(s) if (s := sources_seen(p)) is not None
                        else None}
                              for label, p in plan.predictors.items()],
        "runs": [{"name": r.name, "library": r.library, "algorithm": r.algorithm,
                  "env_id": r.env_id, "seed": r.seed, "snapshots": r.num_snapshots,
                  "params": r.num_params, "windows": windows_of.get(r.name, []),
                  "held_out": {label: r.name not in training_runs(p)
                               for label, p in plan.predictors.items()}}
                 for r in plan.runs],
        "skipped_runs": plan.skipped, "errors": errors, "rows": rows,
        "aggregates": aggregate(rows, plan)}


def write_report(report: dict[str, Any], out: str | os.PathLike[str]) -> list[Path]:
    """Write ``jump_value.json`` and ``jump_value.png`` (if matplotlib is installed) into the
    folder ``out``, atomically."""
    folder = Path(out)
    written = [atomic.write_json(report, folder / "jump_value.json")]
    plot = plot_report(report, folder / "jump_value.png")
    return written + ([plot] if plot is not None else [])
