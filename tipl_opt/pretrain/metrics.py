"""Prediction error and progress on held-out windows, per horizon, in weight space.

Each window's squared errors are divided by the window's own spread (mean squared deviation of
its snapshots from their mean), so runs with large and small weights count alike. The headline
numbers are ratios: a predictor's error over the error of "no move" (staying at the last
snapshot), and TIPL's error over ``linear``'s.

:func:`progress_stats` says what a jump is worth rather than how far it misses: with
``true = w(t+h) - w(t)`` and ``move = prediction - w(t)``, its ``progress``
<move, true> / |true|^2 (the share of the real move covered along its direction; a jump of
horizon h is worth about h x progress snapshots of training), ``cosine``, ``length``
|move| / |true| and ``error`` |move - true|^2 / |true|^2 (1: as far off as not moving).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from tipl_opt.predictors.base import BatchedTokenPredictor, Predictor
from tipl_opt.predictors.linear import LinearPredictor
from tipl_opt.predictors.tipl import TIPLPredictor
from tipl_opt.pretrain.windows import Sample, WindowSource, collate


def _spread(window: torch.Tensor) -> float:
    centred = window - window.mean(dim=0, keepdim=True)
    return max(float((centred * centred).sum()) / window.shape[0], 1e-30)


def predictions(predictor: Predictor, samples: Sequence[Sample], horizons: Sequence[int]
                ) -> list[torch.Tensor]:
    """Per sample, the predicted weights at each horizon: [H, P]."""
    if (isinstance(predictor, BatchedTokenPredictor)
            and tuple(horizons) == tuple(predictor.horizons)):
        out = []
        for i in range(0, len(samples), 256):
            chunk = samples[i : i + 256]
            batch = collate(chunk)
            deltas = predictor.predict_token_deltas(batch.tokens, batch.times,
                                                    batch.descriptors, batch.group_mask)
            for s, d in zip(chunk, deltas, strict=True):
                g = s.tokens.tokens.shape[0]
                out.append(torch.stack([s.tokens.decode(d[:g, j]) for j in range(len(horizons))]))
        return out
    return [torch.stack([predictor.predict(s.window, s.steps, s.specs, h) for h in horizons])
            for s in samples]


def horizon_errors(predictors: Mapping[str, Predictor], samples: Sequence[Sample],
                   horizons: Sequence[int]) -> dict[str, list[float]]:
    """Normalised squared error per predictor and horizon (``"stay"`` = no move)."""
    sums = {name: [0.0] * len(horizons) for name in ["stay", *predictors]}
    preds = {name: predictions(p, samples, horizons) for name, p in predictors.items()}
    for i, s in enumerate(samples):
        spread = _spread(s.window)
        last = s.window[-1]
        for j in range(len(horizons)):
            if not s.mask[j]:
                continue
            true = s.futures[j]
            sums["stay"][j] += float(((last - true) ** 2).sum()) / spread
            for name in predictors:
                sums[name][j] += float(((preds[name][i][j] - true) ** 2).sum()) / spread
    return sums


def relative_report(errors: Mapping[str, Sequence[float]], horizons: Sequence[int]
                    ) -> dict[str, Any]:
    """Ratios per horizon: every predictor vs ``stay``; ``tipl`` vs ``linear`` when both exist."""
    report: dict[str, Any] = {"horizons": list(horizons), "vs_stay": {}, "tipl_vs_linear": None}
    stay = errors["stay"]
    for name, errs in errors.items():
        if name != "stay":
            report["vs_stay"][name] = [e / s if s > 0 else float("nan")
                                       for e, s in zip(errs, stay, strict=True)]
    if "tipl" in errors and "linear" in errors:
        report["tipl_vs_linear"] = [t / lin if lin > 0 else float("nan")
                                    for t, lin in zip(errors["tipl"], errors["linear"],
                                                      strict=True)]
    return report


PROGRESS_MEASURES = ("progress", "cosine", "length", "error")


def move_measures(move: torch.Tensor, true: torch.Tensor) -> dict[str, float] | None:
    """Each measure of :data:`PROGRESS_MEASURES` of a predicted ``move`` against the real one
    ``true`` (both [P], float64); ``None`` when the real move is zero."""
    tn = float(true.norm())
    if tn == 0:
        return None
    dot, mn = float(move @ true), float(move.norm())
    return {"progress": dot / tn**2, "cosine": dot / (tn * max(mn, 1e-30)),
            "length": mn / tn, "error": float((move - true).norm()) ** 2 / tn**2}


def progress_stats(predictors: Mapping[str, Predictor], samples: Sequence[Sample],
                   horizons: Sequence[int]) -> dict[str, dict[str, list[float]]]:
    """Per predictor, ``{measure}_median`` and ``{measure}_mean`` over windows for each
    measure of :data:`PROGRESS_MEASURES`, one value per horizon (NaN where no window has it)."""
    stats: dict[str, dict[str, list[float]]] = {}
    for name, predictor in predictors.items():
        per_sample = predictions(predictor, samples, horizons)
        rows: dict[str, list[list[float]]] = {k: [[] for _ in horizons]
                                              for k in PROGRESS_MEASURES}
        for s, pred in zip(samples, per_sample, strict=True):
            last = s.window[-1].double()
            for j in range(len(horizons)):
                if not s.mask[j]:
                    continue
                measures = move_measures(pred[j].double() - last, s.futures[j].double() - last)
                for key, value in (measures or {}).items():
                    rows[key][j].append(value)
        stats[name] = {f"{k}_{agg}": [fn(v) if v else float("nan") for v in rows[k]]
                       for k in rows for agg, fn in (("median", statistics.median),
                                                     ("mean", statistics.fmean))}
    return stats


def progress_on_runs(predictor: TIPLPredictor, runs: Sequence[Any], max_windows: int
                     ) -> tuple[int, dict[str, dict[str, list[float]]]]:
    """:func:`progress_stats` of ``predictor`` and of ``linear`` (the predictor's context) on
    at most about ``max_windows`` windows spread evenly over ``runs`` (learning paths, or
    objects that read windows as they do); returns (windows measured, stats)."""
    config = predictor.config
    source = WindowSource(runs, config.context, config.horizons, config.r, config.per_layer)
    starts = source.starts()
    step = max(1, len(starts) // max_windows)
    samples = [source.get(r, s) for r, s in starts[::step]]
    stats = progress_stats({"tipl": predictor, "linear": LinearPredictor(config.context)},
                           samples, config.horizons)
    return len(samples), stats
