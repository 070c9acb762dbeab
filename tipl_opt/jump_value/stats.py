"""Aggregates of the per-window rows, with two-level bootstrap intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tipl_opt.jump_value.plan import JumpPlan, sources_seen


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
        seen = sources_seen(plan.predictors[label])
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
