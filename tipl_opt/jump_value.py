"""What a jump is worth in return: predicted weights evaluated against the real ones.

On held-out learning paths, from the window ending at snapshot ``t``, every predictor predicts
the weights ``h`` snapshot intervals ahead (rolled out autoregressively with ``rollout`` when
``h`` is longer than the predictor's own horizons). A fresh agent is built with those weights
(through the run's adapter, :meth:`~tipl_opt.adapters.Adapter.evaluate_weights`) and evaluated;
so are the run's real weights at ``t`` and at ``t + h``, on the same start states. The jump
delivers the share

    (R_pred - R_t) / (R_{t+h} - R_t)

of the real improvement: 1 is as good as training on for ``h`` intervals, 0 as good as not
moving, negative worse than not moving. Per window the ratio is unstable when the real
improvement is small, so the aggregates per env, algorithm, predictor and horizon are the
*share of means*, mean(R_pred - R_t) / mean(R_{t+h} - R_t), with a 95% interval from a two-level
bootstrap (runs, then windows within runs), next to the median per-window share over windows
that really improved. ``no move`` (the weights at ``t``) and ``linear`` are always measured.

:func:`plan_jumps` picks the windows and computes every prediction (cheap, in this process);
:func:`measure_jumps` runs the evaluations (the cost: ``episodes`` per weight vector), in a
local process pool with ``workers > 1``; :func:`write_report` writes the JSON and a plot.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tipl_opt import atomic
from tipl_opt.adapters.base import TrainSpec
from tipl_opt.collect.executor import Emit, make_executor
from tipl_opt.errors import ConfigError, TiplError
from tipl_opt.paths import LearningPath, PathDataset
from tipl_opt.paths.spec import ParamSpec, unflatten
from tipl_opt.predictors import Predictor, load_predictor

logger = logging.getLogger(__name__)

FORMAT = "tipl-jump-value"
FORMAT_VERSION = 1
NO_MOVE = "no move"
BASELINE = "linear"


class JumpValueConfig(BaseModel):
    """What ``tipl jumps`` measures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: Path
    """A folder of learning paths (searched recursively), held out from the predictors."""
    predictors: tuple[str, ...] = ("default",)
    """Registered names, ``default`` or checkpoint folders; ``no move`` and ``linear`` are
    always added."""
    horizons: tuple[int, ...] = (1, 2, 4, 8)
    """Snapshot intervals ahead of ``t``."""
    rollout: bool = False
    """Reach a horizon longer than a predictor's longest by predicting several times in a row,
    each time from a window ending with the previous prediction."""
    episodes: int = Field(default=5, ge=1)
    """Evaluation episodes per weight vector (the same start states for all of a run's)."""
    windows_per_run: int = Field(default=4, ge=1)
    """Windows per run, their ends ``t`` evenly spaced over the run."""
    workers: int = Field(default=1, ge=1)
    """Windows evaluated in parallel processes (one torch thread each)."""
    resamples: int = Field(default=2000, ge=100)
    """Bootstrap resamples of the intervals."""
    seed: int = 0
    """Seed of the bootstrap."""

    @field_validator("horizons")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1 or list(value) != sorted(set(value)):
            raise ValueError(f"horizons must be increasing positive integers, got {list(value)}")
        return value


class NoMovePredictor:
    """The "no move" baseline: the weights stay at the last snapshot."""

    name = NO_MOVE
    context = 1
    horizons: tuple[int, ...] = (1,)

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        return window[-1].clone()


@dataclass
class EvaluationDone:
    """Progress event: one weight vector of a window has been evaluated."""

    run: str
    index: int


@dataclass
class WindowTask:
    """One window's evaluations, as a worker receives them: distinct weight vectors (the first
    is the run's own at ``index``)."""

    path: str
    index: int
    weights: list[np.ndarray[Any, Any]]
    episodes: int


@dataclass
class Window:
    """One window end ``t`` of one run: which task weight vector stands for what."""

    run: LearningPath
    index: int
    real: dict[int, int]  # horizon -> weight vector of the run at t + h
    predicted: dict[tuple[str, int], int | None]  # (predictor, horizon) -> vector; None: failed
    steps: dict[tuple[str, int], list[int]]  # the horizons of each prediction in a rollout
    progress: dict[tuple[str, int], float]  # <move, real move> / |real move|^2
    task: WindowTask


@dataclass
class JumpPlan:
    """Everything :func:`measure_jumps` evaluates, with the predictions already made."""

    config: JumpValueConfig
    predictors: dict[str, Predictor]
    specs: dict[str, str]  # label -> what was asked for
    runs: list[LearningPath]
    windows: list[Window]
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def evaluations(self) -> int:
        return sum(len(w.task.weights) for w in self.windows)


def load_predictors(specs: Sequence[str]) -> tuple[dict[str, Predictor], dict[str, str]]:
    """``no move``, ``linear`` and every predictor in ``specs``, by label. Registered names that
    take a ``context`` get the longest context of the loaded checkpoints (8 if none)."""
    from tipl_opt.plugins import predictors as registered

    names = registered()
    wanted = [s for s in dict.fromkeys([BASELINE, *specs]) if s != NO_MOVE]
    loaded: dict[str, Predictor] = {}
    for spec in wanted:
        if spec not in names:
            loaded[spec] = load_predictor(spec)
    context = max((p.context for p in loaded.values()), default=8)
    for spec in wanted:
        if spec in names:
            factory = names[spec]
            options: dict[str, Any] = {}
            if "context" in inspect.signature(factory).parameters:
                options["context"] = context
            loaded[spec] = load_predictor(spec, **options)
    out: dict[str, Predictor] = {NO_MOVE: NoMovePredictor()}
    labels: dict[str, str] = {NO_MOVE: NO_MOVE}
    for spec in wanted:
        label = spec if spec in names or spec == "default" else Path(spec).name or spec
        if label in out:
            label = spec
        out[label], labels[label] = loaded[spec], spec
    return out, labels


def rollout_steps(horizon: int, horizons: Sequence[int], rollout: bool) -> list[int]:
    """The horizons of the predictions that reach ``horizon``: ``[horizon]`` unless ``rollout``
    and it is longer than the longest of ``horizons``; then the longest fitting ones in turn."""
    longest = max(horizons, default=1)
    if not rollout or horizon <= longest:
        return [horizon]
    steps, left = [], horizon
    while left > 0:
        step = max((h for h in horizons if h <= left), default=left)
        steps.append(step)
        left -= step
    return steps


def predict_ahead(predictor: Predictor, run: LearningPath, index: int,
                  steps: Sequence[int]) -> torch.Tensor:
    """Predict from the window ending at snapshot ``index``, one prediction per entry of
    ``steps`` (in snapshot intervals), each fed back into the window."""
    k = predictor.context
    window = run.window(index - k + 1, k)
    times = torch.from_numpy(run.env_steps[index - k + 1 : index + 1].astype(np.float64))
    dt = float(times[-1] - times[0]) / (k - 1) if k > 1 else 1.0
    prediction = window[-1]
    for step in steps:
        prediction = predictor.predict(window, times, run.specs, step)
        window = torch.cat([window[1:], prediction[None]])
        times = torch.cat([times[1:], times[-1:] + dt * step])
    return prediction


def _window_ends(snapshots: int, context: int, longest: int, count: int) -> list[int]:
    lo, hi = context - 1, snapshots - 1 - longest
    if hi < lo:
        return []
    return sorted({int(x) for x in np.rint(np.linspace(lo, hi, count))})


def plan_jumps(config: JumpValueConfig) -> JumpPlan:
    """Load the predictors and runs, pick the windows and make every prediction."""
    predictors, labels = load_predictors(config.predictors)
    try:
        runs = list(PathDataset(config.paths))
    except FileNotFoundError as exc:
        raise ConfigError(f"--paths: {exc}") from exc
    if not runs:
        raise ConfigError(f"no learning paths (*.safetensors) in {config.paths}")
    context = max(p.context for p in predictors.values())
    plan = JumpPlan(config, predictors, labels, [], [])
    for run in runs:
        for label, predictor in predictors.items():
            if run.name in _training_runs(predictor):
                logger.warning("%s was trained on %s: its numbers there are not held out",
                               label, run.name)
        ends = _window_ends(run.num_snapshots, context, max(config.horizons),
                            config.windows_per_run)
        if not ends:
            plan.skipped.append({"run": run.name, "reason": (
                f"{run.num_snapshots} snapshots: too few for a context of {context} and a "
                f"horizon of {max(config.horizons)}")})
            continue
        plan.runs.append(run)
        plan.windows.extend(_plan_window(run, t, predictors, config) for t in ends)
    if not plan.windows:
        raise ConfigError("no run is long enough for the predictors' context and the longest "
                          f"horizon: {plan.skipped[0]['reason']}")
    return plan


def _plan_window(run: LearningPath, t: int, predictors: dict[str, Predictor],
                 config: JumpValueConfig) -> Window:
    here = run.window(t, 1)[0]
    vectors: list[torch.Tensor] = [here]

    def slot(weights: torch.Tensor) -> int:
        for i, known in enumerate(vectors):
            if torch.equal(known, weights):
                return i
        vectors.append(weights)
        return len(vectors) - 1

    window = Window(run, t, {}, {}, {}, {}, WindowTask(str(run.path), t, [], config.episodes))
    for h in config.horizons:
        future = run.window(t + h, 1)[0]
        window.real[h] = slot(future)
        true = (future - here).double()
        for label, predictor in predictors.items():
            steps = rollout_steps(h, predictor.horizons, config.rollout)
            try:
                pred = predict_ahead(predictor, run, t, steps)
            except TiplError as exc:
                raise TiplError(f"{label} cannot predict {h} intervals ahead of snapshot {t} of "
                                f"{run.name}: {exc}" + ("" if config.rollout else
                                                        " (--rollout reaches longer horizons)")
                                ) from exc
            key = (label, h)
            window.steps[key] = steps
            if not bool(torch.isfinite(pred).all()):
                window.predicted[key], window.progress[key] = None, math.nan
                continue
            window.predicted[key] = slot(pred.to(here.dtype))
            norm = float(true @ true)
            window.progress[key] = (float((pred.double() - here.double()) @ true) / norm
                                    if norm > 0 else math.nan)
    window.task.weights = [v.numpy().copy() for v in vectors]
    return window


def train_spec(run: LearningPath) -> TrainSpec:
    """The spec of a fresh agent for ``run``'s weights (evaluation only)."""
    network = run.meta.get("network", {})
    return TrainSpec(algo=run.algorithm, env_id=run.env_id, seed=run.seed or 0,
                     total_steps=int(run.meta.get("total_steps", 1)),
                     every=int(run.meta.get("cadence", {}).get("every", 1)),
                     hidden_sizes=tuple(network.get("hidden_sizes", (64, 64))),
                     activation=network.get("activation", "tanh"))


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


def _training_runs(predictor: Predictor) -> set[str]:
    training = getattr(predictor, "info", {}).get("training", {})
    return set(training.get("train_runs", [])) if isinstance(training, dict) else set()


def _sources_seen(predictor: Predictor) -> set[str] | None:
    training = getattr(predictor, "info", {}).get("training", {})
    if not isinstance(training, dict) or "data" not in training:
        return None
    return set(training["data"].get("by_source", {}))


def cluster_bootstrap(pred: Sequence[Sequence[float]], real: Sequence[Sequence[float]],
                      resamples: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Resampled means of ``pred`` and ``real`` (one sequence of per-window values per run):
    draw runs with replacement, then windows within each drawn run. Returns two [resamples]
    arrays."""
    n = np.array([len(r) for r in real])
    width = int(n.max())
    p_pad, r_pad = np.zeros((len(n), width)), np.zeros((len(n), width))
    for i, (p, r) in enumerate(zip(pred, real, strict=True)):
        p_pad[i, : len(p)], r_pad[i, : len(r)] = p, r
    runs = rng.integers(0, len(n), size=(resamples, len(n)))
    sizes = n[runs][..., None]
    picks = np.minimum((rng.random((resamples, len(n), width)) * sizes).astype(int), sizes - 1)
    valid = np.arange(width)[None, None, :] < sizes
    count = valid.sum(axis=(1, 2))
    rows = runs[..., None]
    return ((p_pad[rows, picks] * valid).sum(axis=(1, 2)) / count,
            (r_pad[rows, picks] * valid).sum(axis=(1, 2)) / count)


def _interval(values: np.ndarray[Any, Any]) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if len(finite) < 0.9 * len(values):
        return None  # the denominator was 0 too often for a meaningful interval
    return [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))]


def aggregate(rows: Sequence[dict[str, Any]], plan: JumpPlan) -> list[dict[str, Any]]:
    """Per (library, algorithm, env, predictor, horizon): means, share of means with its
    bootstrap interval, median per-window share, and how often the jump beat not moving."""
    groups: dict[tuple[str, str, str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["library"], row["algorithm"], row["env_id"], row["predictor"], row["horizon"])
        groups.setdefault(key, []).append(row)
    out: list[dict[str, Any]] = []
    for (library, algorithm, env_id, label, h), members in groups.items():
        rng = np.random.default_rng([plan.config.seed, h, len(out)])
        ok = [r for r in members if r["finite"]]
        by_run: dict[str, list[dict[str, Any]]] = {}
        for r in ok:
            by_run.setdefault(r["run"], []).append(r)
        gain_pred = np.array([r["gain_pred"] for r in ok])
        gain_real = np.array([r["gain_real"] for r in ok])
        mean_pred = float(gain_pred.mean()) if ok else math.nan
        mean_real = float(gain_real.mean()) if ok else math.nan
        share_ci = pred_ci = None
        if ok:
            bp, br = cluster_bootstrap([[r["gain_pred"] for r in v] for v in by_run.values()],
                                       [[r["gain_real"] for r in v] for v in by_run.values()],
                                       plan.config.resamples, rng)
            with np.errstate(divide="ignore", invalid="ignore"):
                share_ci = _interval(np.where(br != 0, bp / br, np.nan))
            pred_ci = _interval(bp)
        improving = [r["share"] for r in ok if r["gain_real"] > 0]
        seen = _sources_seen(plan.predictors[label])
        out.append({
            "library": library, "algorithm": algorithm, "env_id": env_id, "predictor": label,
            "horizon": h, "runs": len(by_run), "windows": len(ok),
            "failed": len(members) - len(ok),
            "mean_return_t": float(np.mean([r["return_t"] for r in ok])) if ok else math.nan,
            "mean_gain_pred": mean_pred, "mean_gain_pred_ci95": pred_ci,
            "mean_gain_real": mean_real,
            "share_of_means": mean_pred / mean_real if ok and mean_real != 0 else None,
            "share_of_means_ci95": share_ci,
            "median_share_improving": float(np.median(improving)) if improving else None,
            "improving_windows": len(improving),
            "p_better_than_t": float(np.mean(gain_pred > 0)) if ok else None,
            "p_worse_than_t": float(np.mean(gain_pred < 0)) if ok else None,
            "mean_progress": float(np.nanmean([r["progress"] for r in ok]))
            if ok and any(math.isfinite(r["progress"]) for r in ok) else None,
            "env_seen_in_training": None if seen is None
            else f"{library}/{algorithm}/{env_id}" in seen})
    return out


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
                        "trained_on_sources": sorted(s) if (s := _sources_seen(p)) is not None
                        else None}
                              for label, p in plan.predictors.items()],
        "runs": [{"name": r.name, "library": r.library, "algorithm": r.algorithm,
                  "env_id": r.env_id, "seed": r.seed, "snapshots": r.num_snapshots,
                  "params": r.num_params, "windows": windows_of.get(r.name, []),
                  "held_out": {label: r.name not in _training_runs(p)
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


def plot_report(report: dict[str, Any], out: str | os.PathLike[str]) -> Path | None:
    """One column per env and algorithm, horizon on the x axis. Top: the mean return gain of
    each predictor's jump over the weights at t, with its bootstrap interval, and the real gain
    of training on (black). Bottom: the share of means, clipped to [-3, 3]. ``None`` if
    matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plot")
        return None
    aggs = report["aggregates"]
    groups = sorted({(a["library"], a["algorithm"], a["env_id"]) for a in aggs})
    labels = [p["label"] for p in report["predictors"]]
    horizons = report["settings"]["horizons"]
    fig, axes = plt.subplots(2, len(groups), figsize=(4.2 * len(groups), 6.6), squeeze=False,
                             sharex=True)
    for col, group in enumerate(groups):
        gain_ax, share_ax = axes[0][col], axes[1][col]
        mine = [a for a in aggs if (a["library"], a["algorithm"], a["env_id"]) == group]
        real = sorted({(a["horizon"], a["mean_gain_real"]) for a in mine
                       if a["predictor"] == NO_MOVE})
        gain_ax.plot([h for h, _ in real], [g for _, g in real], color="black", marker="s",
                     label="real (training on)")
        for i, label in enumerate(labels):
            rows = sorted((a for a in mine if a["predictor"] == label),
                          key=lambda a: a["horizon"])
            hs = [a["horizon"] * (1 + 0.04 * (i - len(labels) / 2)) for a in rows]
            for ax, key in ((gain_ax, "mean_gain_pred"), (share_ax, "share_of_means")):
                ys = [a[key] if a[key] is not None else math.nan for a in rows]
                cis = [a[f"{key}_ci95"] or [y, y] for y, a in zip(ys, rows, strict=True)]
                if ax is share_ax:
                    ys = list(np.clip(ys, -3, 3))
                    cis = [list(np.clip(ci, -3, 3)) for ci in cis]
                err = [[max(y - lo, 0) for y, (lo, _) in zip(ys, cis, strict=True)],
                       [max(hi - y, 0) for y, (_, hi) in zip(ys, cis, strict=True)]]
                ax.errorbar(hs, ys, yerr=err, marker="o", capsize=3, label=label,
                            linestyle="--" if label == NO_MOVE else "-")
        share_ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        for ax in (gain_ax, share_ax):
            ax.axhline(0.0, color="grey", linewidth=0.8)
            ax.set_xscale("log", base=2)
            ax.set_xticks(horizons, [str(h) for h in horizons])
        share_ax.set_ylim(-3.2, 3.2)
        gain_ax.set_title(" ".join(group), fontsize=10)
        share_ax.set_xlabel("horizon (snapshot intervals)")
    axes[0][0].set_ylabel("mean return gain over the weights at t")
    axes[1][0].set_ylabel("share of the real improvement")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    try:
        return atomic.atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)
