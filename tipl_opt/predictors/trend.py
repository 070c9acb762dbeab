"""``trend``: an inner predictor's move plus the path's calibrated long-run trend.

The move of a window of 8 snapshots is a noisy guide to the next 8: on saved PPO paths the
least-squares slope over the last 32 snapshots points closer to the coming move than the
slope over the last 8 (median cosine 0.60 vs 0.49 on InvertedDoublePendulum-v5, 0.38 vs 0.26
on Hopper-v5; docs/benchmarks.md, "A longer memory for the direction"). This predictor keeps
up to ``history`` snapshots and predicts

    last + inner_move + weight * (trend - <trend, inner_move> / |inner_move|^2 * inner_move)

where ``inner_move`` is the inner predictor's move from its own (short) window and ``trend`` =
``gain * horizon * slope`` the calibrated trend: ``slope`` is the least-squares slope per
snapshot interval over the whole history and ``gain`` in [0, 1] how far that same fit, made
without the newest ``b`` snapshots, foretold their move (``b`` = the horizon, at most half the
history): ``<m, a> / |m|^2`` for the foretold move ``m`` and the actual one ``a``, clipped. Only
the part of the trend that the inner move lacks is added (its component orthogonal to the inner
move): where both agree, as early in a run when the history is short, the inner move and its
length stand; where the long memory points elsewhere, the jump turns toward it and grows. A path
whose trend said nothing about its own recent past gets none of it. Needs no training of its
own. (Adding the whole trend instead, ``orthogonal=False``, doubles the move where both agree:
offline it overshoots, and online it was slower on InvertedPendulum-v5.) The trend is added
only once the history holds ``min_history`` snapshots (default: all ``history``): early in a
run the path turns, and the slope over the last 8 snapshots points closer to the coming move
than a longer one (median cosine 0.72 vs 0.52 on InvertedDoublePendulum-v5's first 32
snapshots); the inner move alone is then the jump.

``context`` (the fewest snapshots it predicts from) is the inner predictor's; ``max_context``
(= ``history``) tells :class:`~tipl_opt.optimizer.TIPLOptimizer` to keep that many snapshots,
moved along with every jump, and to jump as soon as ``context`` of them are there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import Predictor, spacing
from tipl_opt.predictors.wrapped import WrappedPredictor


def slope(w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Least-squares slope per coordinate of ``w`` [n, P] over times ``t`` [n] (float64)."""
    tc = t - t.mean()
    return (tc[:, None] * (w - w.mean(dim=0))).sum(dim=0) / (tc * tc).sum()


def trend_gain(w: torch.Tensor, t: torch.Tensor, back: int) -> float:
    """How much of the move over the newest ``back`` snapshots of ``w`` [n, P] (times ``t``)
    the slope of the snapshots before them foretold, in [0, 1] (0 when fewer than 2 are left
    to fit)."""
    n = w.shape[0]
    if back < 1 or n - back < 2:
        return 0.0
    foretold = slope(w[: n - back], t[: n - back]) * float(t[-1] - t[-1 - back])
    actual = w[-1] - w[-1 - back]
    norm = float(foretold @ foretold)
    if not norm > 0:
        return 0.0
    return min(1.0, max(0.0, float(foretold @ actual) / norm))


def trend_move(window: torch.Tensor, steps: torch.Tensor | None, horizon: int) -> torch.Tensor:
    """The calibrated trend move of ``window`` [n, P] over ``horizon`` mean intervals:
    ``gain * horizon * slope`` (float32 [P])."""
    w = window.to(torch.float64)
    n = w.shape[0]
    t = spacing(steps, n, w.device).to(torch.float64)
    gain = trend_gain(w, t, min(horizon, n // 2))
    return (gain * float(horizon) * slope(w, t)).to(torch.float32)


class TrendPredictor(WrappedPredictor):
    """``inner``'s move plus ``weight`` times the calibrated trend over up to ``history``
    snapshots (``orthogonal``: only its part orthogonal to the inner move), once the history
    holds ``min_history`` of them (default: ``history``; before, the inner move alone).
    ``inner``: a predictor or anything :func:`~tipl_opt.predictors.load_predictor` takes
    (default: the embedded default); ``weight=0`` is the inner predictor alone."""

    name = "trend"

    def __init__(self, inner: Predictor | str = "default", history: int = 32,
                 weight: float = 1.0, orthogonal: bool = True,
                 min_history: int | None = None) -> None:
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        if min_history is not None and not 2 <= min_history <= history:
            raise ValueError(f"min_history must be in 2..history={history}, got {min_history}")
        super().__init__(inner, history)
        self.weight = weight
        self.orthogonal = orthogonal
        self.min_history = history if min_history is None else min_history

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        w, s, inner = self.inner_move(window, steps, specs, horizon)
        last = w[-1]
        if w.shape[0] < self.min_history:  # no longer memory than the inner window yet
            return last + inner
        trend = trend_move(w, s, horizon)
        if self.orthogonal:  # only what the inner move lacks
            norm = float(inner.double() @ inner.double())
            if norm > 0:
                trend = trend - inner * (float(trend.double() @ inner.double()) / norm)
        return last + inner + self.weight * trend

    def __repr__(self) -> str:
        return (f"TrendPredictor(inner={getattr(self.inner, 'name', self.inner)!r}, "
                f"history={self.max_context}, weight={self.weight}, "
                f"orthogonal={self.orthogonal}, min_history={self.min_history})")
