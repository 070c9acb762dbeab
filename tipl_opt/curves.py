"""Learning curves: sample-efficiency metrics, confidence intervals, JSON and plots."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tipl_opt import atomic

Curve = Sequence[tuple[int, float, float]]
"""(env steps, mean return, std return) per snapshot, in order."""


def steps_to_threshold(curve: Curve, threshold: float) -> float:
    """Env steps of the first evaluation whose mean return reaches ``threshold`` (inf: never)."""
    for steps, mean, _ in curve:
        if not math.isnan(mean) and mean >= threshold:
            return float(steps)
    return math.inf


def final_return(curve: Curve, last: int = 3) -> float:
    """Mean of the last ``last`` evaluations (less noisy than the very last one)."""
    values = [m for _, m, _ in curve if not math.isnan(m)][-last:]
    return float(np.mean(values)) if values else math.nan


def area_under_curve(curve: Curve, total_steps: int | None = None) -> float:
    """Mean return over training: the trapezoid area under return vs env steps, divided by the
    env steps covered (``total_steps`` if given, clipping the curve there)."""
    pts = [(s, m) for s, m, _ in curve if not math.isnan(m)]
    if total_steps is not None:
        pts = [(s, m) for s, m in pts if s <= total_steps]
    if len(pts) < 2:
        return pts[0][1] if pts else math.nan
    xs = np.array([p[0] for p in pts], dtype=float)
    ys = np.array([p[1] for p in pts], dtype=float)
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))
    return area / float(xs[-1] - xs[0])


def bootstrap_median(values: Sequence[float], *, resamples: int = 2000, seed: int = 0
                     ) -> tuple[float, float, float]:
    """(median, low, high) with a percentile-bootstrap 95% interval. Infinite values (never
    reached) are kept, so an interval can be open-ended."""
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(arr, size=(resamples, arr.size), replace=True), axis=1)
    low = np.percentile(meds, 2.5, method="lower")  # no interpolation: "never" stays inf
    high = np.percentile(meds, 97.5, method="higher")
    return float(np.median(arr)), float(low), float(high)


def interpolate(curve: Curve, grid: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Mean return of ``curve`` on a grid of env steps (step-wise: last evaluation so far)."""
    steps = np.array([c[0] for c in curve], dtype=float)
    means = np.array([c[1] for c in curve], dtype=float)
    idx = np.searchsorted(steps, grid, side="right") - 1
    return np.where(idx >= 0, means[np.clip(idx, 0, None)], np.nan)


def plot_curves(curves: Mapping[str, Sequence[Curve]], out: str | os.PathLike[str], *,
                title: str, threshold: float | None = None) -> Path | None:
    """PNG of mean return vs env steps per variant: the mean over seeds and a bootstrap 95%
    band of that mean, written atomically. Returns ``None`` if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    top = max((c[-1][0] for runs in curves.values() for c in runs if c), default=1)
    grid = np.linspace(0, top, 100)
    rng = np.random.default_rng(0)
    for name, runs in curves.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        ys = np.stack([interpolate(r, grid) for r in runs])
        mean = np.nanmean(ys, axis=0)
        line = ax.plot(grid, mean, label=f"{name} (n={len(runs)})")[0]
        if len(runs) > 1:
            boots = np.stack([np.nanmean(ys[rng.integers(0, len(runs), len(runs))], axis=0)
                              for _ in range(500)])
            lo, hi = np.nanpercentile(boots, [2.5, 97.5], axis=0)
            ax.fill_between(grid, lo, hi, alpha=0.2, color=line.get_color())
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="threshold")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return atomic.atomic_write(out, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def write_json(data: Any, out: str | os.PathLike[str]) -> Path:
    """Write ``data`` as indented JSON (inf/nan as strings, so any JSON reader can load it),
    atomically (:func:`tipl_opt.atomic.write_json`)."""
    return atomic.write_json(data, out)
