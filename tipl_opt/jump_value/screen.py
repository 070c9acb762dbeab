"""Will jumps pay on a task? A screen of its base runs' learning paths, before any TIPL run.

A jump extrapolates the window of recent weights; it can only pay where the path keeps the
direction the window shows. Measured on the many-jumps tasks (docs/benchmarks.md, "How
predictable the path is"): over every window of the predictor's context, the cosine between the
real move ``h`` snapshots ahead and ``linear``'s straight-line move (the path's own persistence,
no model needed) was 0.49-0.60 on the three tasks where TIPL reached the threshold with a third
fewer env steps or better, and 0.05-0.42 on the five where it came out even with the base. The
screen measures that cosine, and the predictor's own ``cosine``, ``progress`` (share of the real
move covered along it) and ``error`` (|move - real|^2 / |real|^2; 1: as far off as not moving),
per library, algorithm and env, on paths saved at the spacing TIPL snapshots at online (a
snapshot at every rollout for PPO: ``tipl train --predictor none --save-paths --every
<rollout>``). The bands were measured on PPO; for other algorithms the verdict is
``uncertain`` (:data:`FORECAST_ALGORITHMS`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tipl_opt.paths import LearningPath
from tipl_opt.predictors.tipl import TIPLPredictor
from tipl_opt.pretrain.metrics import progress_on_runs

LIKELY_COSINE = 0.45
"""``linear``'s cosine at or above which jumps have paid on the tasks measured (0.49-0.60)."""
UNLIKELY_COSINE = 0.32
"""``linear``'s cosine at or below which jumps have not paid on the tasks measured (0.05-0.31;
Pusher-v5 at 0.42 was even too, which is why the band between is no forecast)."""


@dataclass(frozen=True)
class ScreenRow:
    """One library/algorithm/env group of runs. Cosines, progress and error are medians over
    windows at the predictor's longest horizon ``horizon`` (in snapshots)."""

    library: str
    algorithm: str
    env_id: str
    runs: int
    windows: int
    horizon: int
    spacing: float
    """Median env steps between stored snapshots (the spacing the screen saw)."""
    cosine: float
    linear_cosine: float
    progress: float
    error: float
    linear_error: float
    verdict: str
    """``likely``, ``unlikely`` or ``uncertain`` (see :func:`verdict`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FORECAST_ALGORITHMS = frozenset({"ppo"})
"""Algorithms whose paths the bands were measured on. Off-policy paths, snapshotted every few
dozen env steps, keep their direction whether jumps pay or not: SAC on Pendulum-v1 screened at
0.92 (SB3), where TIPL needed 0.875 of the base's env steps, and 0.84 (Tianshou), where it was
even; for them the screen gives no forecast."""


def verdict(linear_cosine: float, algorithm: str) -> str:
    """What the tasks measured so far say of a path of ``algorithm`` whose ``linear`` cosine is
    this: ``likely`` (>= :data:`LIKELY_COSINE`), ``unlikely`` (<= :data:`UNLIKELY_COSINE`),
    else ``uncertain``; always ``uncertain`` for an algorithm outside
    :data:`FORECAST_ALGORITHMS`."""
    if algorithm.lower() not in FORECAST_ALGORITHMS:
        return "uncertain"
    if linear_cosine >= LIKELY_COSINE:
        return "likely"
    if linear_cosine <= UNLIKELY_COSINE:
        return "unlikely"
    return "uncertain"


def _spacing(runs: Sequence[LearningPath]) -> float:
    gaps = [float(b - a) for lp in runs for a, b in zip(lp.env_steps[:-1], lp.env_steps[1:],
                                                          strict=True)]
    return statistics.median(gaps) if gaps else float("nan")


def screen(paths: Sequence[LearningPath], predictor: TIPLPredictor,
           max_windows: int = 2000) -> list[ScreenRow]:
    """One :class:`ScreenRow` per library/algorithm/env group of ``paths``, at most about
    ``max_windows`` windows each, spread evenly over the group's runs.

    Raises ``ValueError`` when a group has no run long enough for one window and its
    horizon (context + longest horizon snapshots).
    """
    groups: dict[tuple[str, str, str], list[LearningPath]] = {}
    for lp in paths:
        groups.setdefault((lp.library, lp.algorithm, lp.env_id), []).append(lp)
    config = predictor.config
    horizon = max(config.horizons)
    j = list(config.horizons).index(horizon)
    need = config.context + horizon
    rows = []
    for (library, algorithm, env_id), runs in sorted(groups.items()):
        longest = max(lp.num_snapshots for lp in runs)
        if longest < need:
            raise ValueError(
                f"{library} {algorithm} {env_id}: the longest of its {len(runs)} runs has "
                f"{longest} snapshots; a window and its "
                f"{horizon}-snapshot future need {need}: save more snapshots (a smaller "
                f"--every) or train longer")
        windows, stats = progress_on_runs(predictor, runs, max_windows)
        tipl, linear = stats["tipl"], stats["linear"]
        lin_cos = linear["cosine_median"][j]
        rows.append(ScreenRow(
            library=library, algorithm=algorithm, env_id=env_id, runs=len(runs),
            windows=windows, horizon=horizon, spacing=_spacing(runs),
            cosine=tipl["cosine_median"][j], linear_cosine=lin_cos,
            progress=tipl["progress_median"][j], error=tipl["error_median"][j],
            linear_error=linear["error_median"][j], verdict=verdict(lin_cos, algorithm)))
    return rows
