"""``pptb``: trend extrapolation along the major temporal-SVD directions, minor ones trimmed."""

from __future__ import annotations

import math

import pytest
import torch

from tipl_opt.errors import TiplError
from tipl_opt.paths import ParamSpec
from tipl_opt.plugins import predictors
from tipl_opt.predictors import LinearPredictor, PPTBPredictor, Predictor, load_predictor

P = 60
SPECS = [ParamSpec("w", (P,), "actor")]


def _directions(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An origin and two orthonormal directions u, v."""
    g = torch.Generator().manual_seed(seed)
    origin = torch.randn(P, generator=g)
    q, _ = torch.linalg.qr(torch.randn(P, 2, generator=g))
    return origin, q[:, 0], q[:, 1]


def test_exact_on_a_straight_path_with_no_boost() -> None:
    origin, u, _ = _directions()
    window = origin + torch.arange(8.0)[:, None] * (0.3 * u)
    for h in (1, 3, 10):
        torch.testing.assert_close(PPTBPredictor(boost=1.0).predict(window, None, SPECS, h),
                                   origin + (7 + h) * 0.3 * u, rtol=1e-5, atol=1e-5)


def test_uses_the_step_spacing() -> None:
    origin, u, _ = _directions()
    steps = torch.tensor([0.0, 100, 200, 300, 400, 500, 600, 700]) * 3
    window = origin + (steps / 300)[:, None] * u
    pred = PPTBPredictor(boost=1.0).predict(window, steps, SPECS, 2)
    torch.testing.assert_close(pred, origin + 9 * u, rtol=1e-5, atol=1e-5)


def test_boost_scales_the_move_along_major_directions() -> None:
    origin, u, _ = _directions()
    window = origin + torch.arange(8.0)[:, None] * u
    pred = PPTBPredictor(boost=2.0).predict(window, None, SPECS, 4)
    torch.testing.assert_close(pred - window[-1], 8 * u, rtol=1e-5, atol=1e-5)


def test_removes_an_oscillation_along_a_minor_direction() -> None:
    """A line along u plus an oscillation along v centred on the window: the prediction lands
    on the line (the oscillation's centre), not where the oscillation would be."""
    origin, u, v = _directions()
    t = torch.arange(8.0)
    wobble = torch.cos(2 * math.pi * (t - 3.5) / 8)  # symmetric about the centre, mean 0
    window = origin + t[:, None] * (0.1 * u) + wobble[:, None] * (2.0 * v)
    pred = PPTBPredictor(boost=1.0).predict(window, None, SPECS, 3)
    torch.testing.assert_close(pred, origin + 10 * 0.1 * u, rtol=1e-4, atol=1e-4)
    assert abs(float((window[-1] - origin - 0.7 * u) @ v)) > 1.0  # the last snapshot is off it


def test_a_pure_oscillation_predicts_no_move() -> None:
    origin, u, _ = _directions()
    t = torch.arange(8.0)
    window = origin + torch.cos(2 * math.pi * (t - 3.5) / 8)[:, None] * u
    torch.testing.assert_close(PPTBPredictor().predict(window, None, SPECS, 2), window[-1])


def test_with_every_direction_major_it_is_the_last_snapshot_plus_linears_step() -> None:
    g = torch.Generator().manual_seed(3)
    window = torch.randn(8, P, generator=g).cumsum(dim=0)
    pptb = PPTBPredictor(major=8, max_detour=float("inf"), boost=1.0)
    linear = LinearPredictor(8)
    step = linear.predict(window, None, SPECS, 6) - linear.predict(window, None, SPECS, 1)
    torch.testing.assert_close(pptb.predict(window, None, SPECS, 5), window[-1] + step,
                               rtol=1e-4, atol=1e-4)


def test_uses_only_the_last_context_snapshots() -> None:
    origin, u, _ = _directions()
    window = origin + torch.arange(12.0)[:, None] * u
    window[:4] = 100.0  # outside the context of 8
    torch.testing.assert_close(PPTBPredictor(boost=1.0).predict(window, None, SPECS, 1),
                               origin + 12 * u, rtol=1e-5, atol=1e-5)


def test_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="context"):
        PPTBPredictor(context=2)
    with pytest.raises(ValueError, match="boost"):
        PPTBPredictor(boost=0)
    with pytest.raises(ValueError, match="max_detour"):
        PPTBPredictor(max_detour=0.5)
    with pytest.raises(TiplError, match="context of 8"):
        PPTBPredictor().predict(torch.zeros(5, P), None, SPECS, 1)


def test_registered_as_pptb() -> None:
    assert "pptb" in predictors()
    pptb = load_predictor("pptb", context=5)
    assert isinstance(pptb, PPTBPredictor) and isinstance(pptb, Predictor)
    assert pptb.context == 5 and pptb.name == "pptb" and pptb.horizons == (1,)
