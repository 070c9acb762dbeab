"""Which windows ``tipl jumps`` evaluates, and every prediction made from them."""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tipl_opt.errors import ConfigError, TiplError
from tipl_opt.paths import LearningPath, PathDataset
from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors import Predictor, load_predictor
from tipl_opt.predictors.base import history_length
from tipl_opt.pretrain.trainer import trained_run_names

logger = logging.getLogger(__name__)

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
    """Windows per run, their ends ``t`` evenly spaced over the run (or over its learning
    phase: ``windows``)."""
    windows: Literal["even", "learning"] = "even"
    """Where the window ends lie: ``even`` over the whole run; ``learning`` only before the
    run's stored return first comes within ``LEARNED`` of its best (on a plateau, training on
    gains nothing and a share of the improvement means nothing)."""
    held_out_only: bool = False
    """Skip every run that one of the predictors was trained on (by name), instead of measuring
    it with a warning: ``paths`` can then be the whole data folder."""
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
    """Predict from the window ending at snapshot ``index`` (``predictor.context`` snapshots,
    up to its ``max_context`` where the run holds them, as in training), one prediction per
    entry of ``steps`` (in snapshot intervals), each fed back into the window."""
    n = min(index + 1, history_length(predictor))  # a longer history where it can use one
    window = run.window(index - n + 1, n)
    times = torch.from_numpy(run.env_steps[index - n + 1 : index + 1].astype(np.float64))
    dt = float(times[-1] - times[0]) / (n - 1) if n > 1 else 1.0
    prediction = window[-1]
    for step in steps:
        prediction = predictor.predict(window, times, run.specs, step)
        window = torch.cat([window[1:], prediction[None]])
        times = torch.cat([times[1:], times[-1:] + dt * step])
    return prediction


LEARNED = 0.9
"""``windows="learning"``: the learning phase ends at the first snapshot whose stored return
covers this share of the way from the run's first return to its best."""


def learning_end(returns: np.ndarray[Any, Any]) -> int:
    """Index of the first snapshot whose return covers :data:`LEARNED` of the way from the
    first (finite) return to the best; the last index when the run never improved."""
    finite = np.flatnonzero(np.isfinite(returns))
    if len(finite) == 0:
        return len(returns) - 1
    first, best = float(returns[finite[0]]), float(np.nanmax(returns[finite]))
    if best <= first:
        return len(returns) - 1
    level = first + LEARNED * (best - first)
    return int(next(i for i in finite if returns[i] >= level))


def _window_ends(snapshots: int, context: int, longest: int, count: int,
                 last: int | None = None) -> list[int]:
    """``count`` window ends evenly spaced from the first full window to the last one whose
    horizon fits in the run, and not after ``last``."""
    lo, hi = context - 1, snapshots - 1 - longest
    if last is not None:
        hi = min(hi, last)
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
    from tipl_opt.plugins import adapters

    installed = adapters()
    seen = {label: training_runs(predictor) for label, predictor in predictors.items()}
    for run in runs:
        if run.library not in installed:
            plan.skipped.append({"run": run.name, "reason": (
                f"no adapter for its library {run.library!r} (installed: "
                f"{', '.join(sorted(installed))}): its weights cannot be evaluated")})
            continue
        trained = [label for label in predictors if run.name in seen[label]]
        if trained and config.held_out_only:
            plan.skipped.append({"run": run.name,
                                 "reason": f"{', '.join(trained)} was trained on it"})
            continue
        for label in trained:
            logger.warning("%s was trained on %s: its numbers there are not held out",
                           label, run.name)
        last = (max(learning_end(run.return_mean) - 1, 0) if config.windows == "learning"
                else None)
        ends = _window_ends(run.num_snapshots, context, max(config.horizons),
                            config.windows_per_run, last)
        if not ends:
            reason = (f"{run.num_snapshots} snapshots: too few for a context of {context} and "
                      f"a horizon of {max(config.horizons)}")
            if last is not None and _window_ends(run.num_snapshots, context,
                                                 max(config.horizons), 1):
                reason = (f"its return is within {1 - LEARNED:.0%} of its best by snapshot "
                          f"{last + 1}, before a window of {context} is full")
            plan.skipped.append({"run": run.name, "reason": reason})
            continue
        plan.runs.append(run)
        plan.windows.extend(_plan_window(run, t, predictors, config) for t in ends)
    if not plan.windows:
        first = plan.skipped[0]
        raise ConfigError(f"no window to measure: all {len(plan.skipped)} runs were skipped "
                          f"(the first, {first['run']}: {first['reason']})")
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


def training_runs(predictor: Predictor) -> set[str]:
    """The names of the runs ``predictor`` was trained on (a run recorded by its path, where
    two runs shared a name, counts by name: a run of that name may have been seen)."""
    return trained_run_names(getattr(predictor, "info", {}))


def sources_seen(predictor: Predictor) -> set[str] | None:
    training = getattr(predictor, "info", {}).get("training", {})
    if not isinstance(training, dict) or "data" not in training:
        return None
    return set(training["data"].get("by_source", {}))
