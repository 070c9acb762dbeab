"""``trend``: an inner predictor's move plus the calibrated long-run trend it lacks, and the
optimizer's longer kept history for predictors that declare a ``max_context``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tipl_opt import TIPLOptimizer
from tipl_opt.errors import TiplError
from tipl_opt.paths import ParamSpec
from tipl_opt.plugins import predictors
from tipl_opt.predictors import LinearPredictor, TrendPredictor, load_predictor
from tipl_opt.predictors.trend import trend_gain, trend_move

P = 40
SPECS = [ParamSpec("w", (P,), "actor")]


def _line(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    origin, u = torch.randn(P, generator=g), torch.randn(P, generator=g)
    return origin + torch.arange(float(n))[:, None] * u, origin, u


class Stay:
    """A predictor of "no move": the trend alone is then what ``trend`` adds."""

    name, context, horizons = "stay", 4, (1,)

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: object, horizon: int) -> torch.Tensor:
        return window[-1].clone()


def test_the_trend_alone_is_exact_on_a_straight_path() -> None:
    window, origin, u = _line(20)
    trend = TrendPredictor(Stay(), history=16)
    for h in (1, 5, 8):  # the line foretold its own past exactly: gain 1, the whole trend
        torch.testing.assert_close(trend.predict(window, None, SPECS, h), origin + (19 + h) * u,
                                   rtol=1e-5, atol=1e-4)
    steps = torch.arange(20.0) * 256  # env steps as times: only their spacing matters
    torch.testing.assert_close(trend.predict(window, steps, SPECS, 3), origin + 22 * u,
                               rtol=1e-5, atol=1e-4)


def test_what_the_inner_move_lacks_is_added() -> None:
    window = _line(12)[0]
    g = torch.Generator().manual_seed(5)
    window[-1] += 3 * torch.randn(P, generator=g)  # the newest step went off the line
    last = window[-1]
    inner = LinearPredictor(3)
    inner_move = inner.predict(window, None, SPECS, 4) - last
    trend = trend_move(window, None, 4)
    across = trend - inner_move * (trend @ inner_move) / (inner_move @ inner_move)
    assert float(across.norm()) > 0.5 and float((trend - across).norm()) > 0.5
    for weight in (0.0, 0.5, 1.0):
        got = TrendPredictor(inner, history=12, weight=weight).predict(window, None, SPECS, 4)
        torch.testing.assert_close(got, last + inner_move + weight * across, rtol=1e-4,
                                   atol=1e-4)
        assert float((got - last - inner_move) @ inner_move) == pytest.approx(0.0, abs=1e-3)
    whole = TrendPredictor(inner, history=12, orthogonal=False).predict(window, None, SPECS, 4)
    torch.testing.assert_close(whole, last + inner_move + trend, rtol=1e-4, atol=1e-4)


def test_where_both_agree_the_inner_move_stands() -> None:
    window, origin, u = _line(20)  # straight: linear and the trend point the same way
    got = TrendPredictor(LinearPredictor(4), history=16).predict(window, None, SPECS, 3)
    torch.testing.assert_close(got, origin + 22 * u, rtol=1e-5, atol=1e-4)


def test_the_trend_waits_for_min_history_snapshots() -> None:
    window, origin, u = _line(20)
    late = TrendPredictor(Stay(), history=16)  # min_history: the whole history
    assert late.min_history == 16
    torch.testing.assert_close(late.predict(window[-15:], None, SPECS, 2), window[-1])
    torch.testing.assert_close(late.predict(window[-16:], None, SPECS, 2), origin + 21 * u,
                               rtol=1e-5, atol=1e-4)
    sooner = TrendPredictor(Stay(), history=16, min_history=6)
    torch.testing.assert_close(sooner.predict(window[-6:], None, SPECS, 2), origin + 21 * u,
                               rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="min_history"):
        TrendPredictor(Stay(), history=16, min_history=17)


def test_gain_is_zero_when_the_trend_foretold_nothing_and_one_at_most() -> None:
    t = torch.arange(16.0, dtype=torch.float64)
    u = torch.randn(P, dtype=torch.float64)
    back_and_forth = (torch.where(t < 12, t, 22 - t))[:, None] * u  # turns back at the end
    assert trend_gain(back_and_forth, t, 4) == 0.0
    faster = (t + torch.clamp(t - 11, min=0) * 3)[:, None] * u  # the end went 4x as fast
    assert trend_gain(faster, t, 4) == 1.0
    halfway = (t - torch.clamp(t - 11, min=0) * 0.5)[:, None] * u  # the end went half as fast
    assert trend_gain(halfway, t, 4) == pytest.approx(0.5)
    assert trend_gain(halfway[:3], t[:3], 2) == 0.0  # one snapshot left to fit: no trend


def test_older_non_finite_snapshots_are_dropped_newer_ones_refused() -> None:
    window, origin, u = _line(20)
    trend = TrendPredictor(Stay(), history=16, min_history=8)
    broken = window.clone()
    broken[6, 3] = float("nan")  # in the history, before the inner predictor's window
    got = trend.predict(broken, None, SPECS, 2)
    torch.testing.assert_close(got, origin + 21 * u, rtol=1e-5, atol=1e-4)
    broken[-2, 0] = float("inf")
    with pytest.raises(TiplError, match="non-finite"):
        trend.predict(broken, None, SPECS, 2)


def test_registered_and_checked() -> None:
    assert "trend" in predictors()
    trend = load_predictor("trend")
    assert isinstance(trend, TrendPredictor)
    assert (trend.context, trend.max_context, trend.horizons) == (8, 32, (1, 2, 4, 8))
    with pytest.raises(ValueError, match="weight"):
        TrendPredictor(LinearPredictor(4), weight=-1)
    with pytest.raises(ValueError, match="history"):
        TrendPredictor(LinearPredictor(8), history=4)


def test_the_optimizer_jumps_from_the_short_window_and_keeps_the_long_one() -> None:
    param = nn.Parameter(torch.zeros(3))
    opt = TIPLOptimizer([param], TrendPredictor(LinearPredictor(4), history=10),
                        base=torch.optim.SGD([param], lr=1.0), config={"snapshot_every": 1})
    assert (opt.history.capacity, opt.jump_window) == (10, 4)
    jumps = []
    opt.register_jump_hook(lambda o, r: jumps.append(r.step))
    for _ in range(16):  # each gradient step: -1 on every weight
        opt.zero_grad()
        param.sum().backward()
        opt.step()
    # the first jump as soon as 4 snapshots are in, then every 4 new ones; the history is kept
    # (moved along with each jump, not restarted) and grows to its 10
    assert jumps == [4, 8, 12, 16]
    assert len(opt.history) == 10
    window, _ = opt.history.window()
    assert window[-1].tolist() == param.tolist()
    assert opt.counters["jumps_accepted"] == 4
    plain = TIPLOptimizer([nn.Parameter(torch.zeros(3))], LinearPredictor(4),
                          config={"snapshot_every": 1})
    assert (plain.history.capacity, plain.jump_window) == (4, 4)  # others: unchanged
