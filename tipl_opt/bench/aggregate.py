"""Suite-level statistics with `rliable <https://github.com/google-research/rliable>`_: the
interquartile mean (IQM) of normalised scores with stratified-bootstrap 95% intervals, the
probability of improvement between variants, and performance profiles.

Scores are normalised per env, so that envs count alike:

* ``steps``: env steps to the threshold divided by the base's median on that env (its budget
  when the base's median never reaches it); a run that never reaches the threshold scores its
  budget. Lower is better; the base's IQM is about 1, TIPL's IQM is "TIPL / base env steps".
* ``auc`` and ``final``: mean return over training and final return, min-max scaled over every
  run of the env (0: the worst run, 1: the best). Higher is better.

Each env contributes the seeds that every variant finished (paired by seed), and the suite
the number of such seeds that every env has, as rliable's ``[runs, tasks]`` matrices need.
rliable is imported lazily: ``pip install "tipl-opt[bench]"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tipl_opt.bench.suites import task_label
from tipl_opt.curves import area_under_curve, final_return, steps_to_threshold
from tipl_opt.errors import TiplError
from tipl_opt.train import BASE, TrainSummary

METRICS = {"steps": "lower", "auc": "higher", "final": "higher"}
"""Normalised metric -> which direction is better."""

NORMALISATION = ("steps: env steps to threshold / the base's median on the env (budget if "
                 "never); auc, final: min-max over every run of the env")


def _rliable() -> tuple[Any, Any]:
    try:
        from rliable import library, metrics
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise TiplError("aggregate statistics need rliable: pip install \"tipl-opt[bench]\"") \
            from exc
    return library, metrics


def _paired_seeds(summary: TrainSummary) -> list[int]:
    """Seeds every variant of this env finished, in order."""
    seeds: set[int] | None = None
    for v in summary.variants.values():
        have = {r.seed for r in v.runs if r.seed is not None}
        seeds = have if seeds is None else seeds & have
    return sorted(seeds or ())


def score_matrices(summaries: Sequence[TrainSummary]) -> tuple[dict[str, dict[str, np.ndarray]],
                                                                 list[str], int]:
    """Per variant and metric, the ``[runs, envs]`` matrix of normalised scores; the envs used
    (those with a threshold and paired runs) and the number of runs per env."""
    envs = [s for s in summaries if _paired_seeds(s)
            and next(iter(s.variants.values())).threshold is not None]
    if not envs:
        return {}, [], 0
    n = min(len(_paired_seeds(s)) for s in envs)
    variants = [name for name in envs[0].variants if all(name in s.variants for s in envs)]
    out: dict[str, dict[str, np.ndarray]] = {
        v: {m: np.zeros((n, len(envs))) for m in METRICS} for v in variants}
    for j, s in enumerate(envs):
        seeds = _paired_seeds(s)[:n]
        threshold = float(next(iter(s.variants.values())).threshold)  # type: ignore[arg-type]
        budget = float(s.config.steps)
        runs = {v: {r.seed: r for r in s.variants[v].runs} for v in variants}

        def steps(run: Any, threshold: float = threshold, budget: float = budget) -> float:
            value = steps_to_threshold(run.curve, threshold)
            return min(value, budget) if math.isfinite(value) else budget

        base = [steps(runs[BASE][seed]) for seed in seeds] if BASE in runs else [budget]
        scale = float(np.median(base)) or budget
        raw = {m: {v: np.array([
            steps(runs[v][seed]) if m == "steps" else
            area_under_curve(runs[v][seed].curve) if m == "auc" else
            final_return(runs[v][seed].curve) for seed in seeds]) for v in variants}
            for m in METRICS}
        for m, by_variant in raw.items():
            if m == "steps":
                for v, values in by_variant.items():
                    out[v][m][:, j] = values / scale
                continue
            every = np.concatenate(list(by_variant.values()))
            lo, hi = float(np.nanmin(every)), float(np.nanmax(every))
            for v, values in by_variant.items():
                out[v][m][:, j] = (values - lo) / (hi - lo) if hi > lo else 0.5
    every_task = [(s.config.env, s.config.lib, s.config.algo) for s in summaries]
    return out, [task_label(s.config.env, s.config.lib, s.config.algo, every_task)
                 for s in envs], n


def probability_of_improvement(mine: np.ndarray, other: np.ndarray, reps: int
                               ) -> dict[str, float]:
    """rliable's probability that a run of ``mine`` scores higher than one of ``other``
    (``[runs, envs]`` matrices, higher is better), with its stratified-bootstrap 95% interval:
    ``{"p", "low", "high"}``. Draws from numpy's global generator; seed it first."""
    library, metrics = _rliable()
    point, interval = library.get_interval_estimates(
        {"pair": (mine, other)}, metrics.probability_of_improvement, reps=reps)
    return {"p": float(np.asarray(point["pair"]).reshape(-1)[0]),
            "low": float(np.asarray(interval["pair"])[0].reshape(-1)[0]),
            "high": float(np.asarray(interval["pair"])[1].reshape(-1)[0])}


def aggregate(summaries: Sequence[TrainSummary], *, against: Sequence[str] | None = None,
              reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """IQM with 95% intervals per variant and metric, the probability that each TIPL variant
    improves on ``against`` (default: every other variant) per metric, and the performance
    profile of normalised steps. JSON-serialisable; ``{"envs": []}`` without paired runs."""
    scores, envs, n = score_matrices(summaries)
    if not envs:
        return {"envs": [], "runs_per_env": 0}
    library, metrics = _rliable()
    np.random.seed(seed)  # rliable's bootstrap draws from numpy's global generator
    iqm: dict[str, dict[str, dict[str, float]]] = {}
    for m in METRICS:
        point, interval = library.get_interval_estimates(
            {v: scores[v][m] for v in scores}, lambda x: np.array([metrics.aggregate_iqm(x)]),
            reps=reps)
        for v in scores:
            iqm.setdefault(v, {})[m] = {"iqm": float(point[v][0]),
                                        "low": float(interval[v][0][0]),
                                        "high": float(interval[v][1][0])}
    improvement: dict[str, dict[str, dict[str, float]]] = {}
    mine = [v for v in scores if v != BASE]
    for v in mine:
        for other in (against or [o for o in scores if o != v]):
            if other == v or other not in scores:
                continue
            key = f"{v} vs {other}"
            for m, better in METRICS.items():
                sign = -1.0 if better == "lower" else 1.0
                improvement.setdefault(key, {})[m] = probability_of_improvement(
                    sign * scores[v][m], sign * scores[other][m], reps=max(200, reps // 4))
    taus = np.linspace(0.0, 2.0, 41)
    profiles = {v: [float(np.mean(scores[v]["steps"] <= t)) for t in taus] for v in scores}
    return {"envs": envs, "runs_per_env": n, "iqm": iqm, "probability_of_improvement":
            improvement, "profile": {"tau": [float(t) for t in taus], "fraction": profiles},
            "normalisation": NORMALISATION}


def env_improvement(summary: TrainSummary, variant: str, other: str = BASE,
                    metrics_wanted: Sequence[str] = tuple(METRICS), reps: int = 300,
                    seed: int = 0) -> dict[str, dict[str, float]]:
    """Probability that ``variant`` improves on ``other`` on one env, for each of
    ``metrics_wanted``, with a 95% interval (paired seeds); empty without paired runs."""
    scores, envs, _ = score_matrices([summary])
    if not envs or variant not in scores or other not in scores:
        return {}
    library, metrics = _rliable()
    np.random.seed(seed)
    out = {}
    for m in metrics_wanted:
        better = METRICS[m]
        sign = -1.0 if better == "lower" else 1.0
        point, interval = library.get_interval_estimates(
            {"x": (sign * scores[variant][m], sign * scores[other][m])},
            metrics.probability_of_improvement, reps=reps)
        out[m] = {"p": float(np.asarray(point["x"]).reshape(-1)[0]),
                  "low": float(np.asarray(interval["x"])[0].reshape(-1)[0]),
                  "high": float(np.asarray(interval["x"])[1].reshape(-1)[0])}
    return out


def plot_profile(doc: dict[str, Any], out: Any) -> Any:
    """The performance profile of normalised env steps (fraction of runs that reach the
    threshold within tau x the base's median steps) as a PNG, or ``None`` without data."""
    if not doc.get("envs"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tipl_opt import atomic

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    tau = doc["profile"]["tau"]
    for name, fraction in doc["profile"]["fraction"].items():
        ax.plot(tau, fraction, label=name)
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("env steps to threshold / base median (tau)")
    ax.set_ylabel("fraction of runs <= tau")
    ax.set_title(f"Performance profile, {len(doc['envs'])} envs x {doc['runs_per_env']} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        return atomic.atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)
