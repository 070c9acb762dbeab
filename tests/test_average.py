"""``average``: an inner predictor's move, started from the mean of the newest snapshots in
each role's output layer (or every parameter) instead of from the newest snapshot."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tipl_opt import TIPLOptimizer
from tipl_opt.errors import TiplError
from tipl_opt.paths import ParamSpec
from tipl_opt.plugins import predictors
from tipl_opt.predictors import AveragePredictor, LinearPredictor, load_predictor
from tipl_opt.predictors.average import output_mask

# an SB3 PPO policy's layout in flatten order: log_std, the actor's hidden layer, the critic's,
# then each role's output layer (weight, bias)
SPECS = [ParamSpec("log_std", (2,), "actor"),
         ParamSpec("policy_net.0.weight", (3, 4), "actor"),
         ParamSpec("policy_net.0.bias", (3,), "actor"),
         ParamSpec("value_net_hidden.0.weight", (3, 4), "critic"),
         ParamSpec("value_net_hidden.0.bias", (3,), "critic"),
         ParamSpec("action_net.weight", (2, 3), "actor"),
         ParamSpec("action_net.bias", (2,), "actor"),
         ParamSpec("value_net.weight", (1, 3), "critic"),
         ParamSpec("value_net.bias", (1,), "critic")]
P = sum(s.numel for s in SPECS)
OUT = slice(2 + 12 + 3 + 12 + 3, P)  # the last four parameters, contiguous here
ACTOR_OUT = slice(OUT.start, OUT.start + 6 + 2)  # action_net: what is averaged by default


class Stay:
    """A predictor of "no move": the correction alone is then what ``average`` adds."""

    name, context, horizons = "stay", 4, (1,)

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: object, horizon: int) -> torch.Tensor:
        return window[-1].clone()


def _noisy(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(P, generator=g) + torch.randn(n, P, generator=g)


def test_the_output_layers_are_each_roles_last_matrix_and_its_bias() -> None:
    mask = output_mask(SPECS)
    assert mask.shape == (P,)
    assert int(mask.sum()) == 6 + 2 + 3 + 1
    assert bool(mask[OUT].all()) and not bool(mask[: OUT.start].any())
    actor = output_mask(SPECS, roles=("actor",))
    assert bool(actor[ACTOR_OUT].all()) and int(actor.sum()) == 6 + 2
    # a role with vectors only (no matrix) has no output layer
    assert not bool(output_mask([ParamSpec("log_std", (2,), "actor")]).any())


def test_only_the_output_layers_move_to_the_mean() -> None:
    window = _noisy(16)
    mean = window.mean(dim=0)
    got = AveragePredictor(Stay(), history=16).predict(window, None, SPECS, 1)
    torch.testing.assert_close(got[ACTOR_OUT], mean[ACTOR_OUT])  # the actor's output layer
    torch.testing.assert_close(got[: OUT.start], window[-1][: OUT.start])
    torch.testing.assert_close(got[ACTOR_OUT.stop:], window[-1][ACTOR_OUT.stop:])
    both = AveragePredictor(Stay(), history=16, roles=None).predict(window, None, SPECS, 1)
    torch.testing.assert_close(both[OUT], mean[OUT])
    torch.testing.assert_close(both[: OUT.start], window[-1][: OUT.start])
    every = AveragePredictor(Stay(), history=16, layers="all", roles=None).predict(
        window, None, SPECS, 1)
    torch.testing.assert_close(every, mean)
    half = AveragePredictor(Stay(), history=16, weight=0.5, roles=None).predict(
        window, None, SPECS, 1)
    torch.testing.assert_close(half[OUT], (window[-1] + mean)[OUT] / 2)
    alone = AveragePredictor(Stay(), history=16, weight=0.0).predict(window, None, SPECS, 1)
    torch.testing.assert_close(alone, window[-1])


def test_the_inner_move_is_added_to_the_averaged_point_and_history_limits_the_mean() -> None:
    window = _noisy(20, seed=1)
    inner = LinearPredictor(4)
    move = inner.predict(window, None, SPECS, 2) - window[-1]
    got = AveragePredictor(inner, history=12, roles=None).predict(window, None, SPECS, 2)
    start = window[-1].clone()
    start[OUT] = window[-12:].mean(dim=0)[OUT]  # the newest 12 only
    torch.testing.assert_close(got, start + move, rtol=1e-5, atol=1e-5)
    # with fewer snapshots than the history, the mean is over what there is
    short = AveragePredictor(Stay(), history=12, roles=None).predict(window[-5:], None, SPECS,
                                                                     1)
    torch.testing.assert_close(short[OUT], window[-5:].mean(dim=0)[OUT])


def test_older_non_finite_snapshots_are_dropped_newer_ones_refused() -> None:
    window = _noisy(16, seed=2)
    average = AveragePredictor(Stay(), history=16, roles=None)
    broken = window.clone()
    broken[6, 3] = float("nan")  # in the history, before the inner predictor's window
    got = average.predict(broken, None, SPECS, 1)
    torch.testing.assert_close(got[OUT], window[7:].mean(dim=0)[OUT])
    broken[-2, 0] = float("inf")
    with pytest.raises(TiplError, match="non-finite"):
        average.predict(broken, None, SPECS, 1)


def test_registered_and_checked() -> None:
    assert "average" in predictors()
    average = load_predictor("average")
    assert isinstance(average, AveragePredictor)
    assert (average.context, average.max_context, average.horizons) == (8, 16, (1, 2, 4, 8))
    with pytest.raises(ValueError, match="weight"):
        AveragePredictor(LinearPredictor(4), weight=1.5)
    with pytest.raises(ValueError, match="layers"):
        AveragePredictor(LinearPredictor(4), layers="hidden")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="history"):
        AveragePredictor(LinearPredictor(8), history=4)


def test_the_optimizer_keeps_the_long_history_and_averages_the_output_layer() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    start = [p.detach().clone() for p in net.parameters()]
    opt = TIPLOptimizer(net.parameters(), AveragePredictor(Stay(), history=10),
                        base=torch.optim.SGD(net.parameters(), lr=0.5),
                        config={"snapshot_every": 1, "keep_window": True, "jump_every": 4})
    assert (opt.history.capacity, opt.jump_window) == (10, 4)
    for _ in range(4):  # each gradient step: -0.5 on every weight, a straight path
        opt.zero_grad()
        sum(p.sum() for p in net.parameters()).backward()
        opt.step()
    # the 4th snapshot brings the first jump: "no move" from the mean of the 4 snapshots in
    # the output layer (1 step behind the newest: -0.5 * 2.5), the hidden layer left as it is
    assert opt.counters["jumps_accepted"] == 1
    torch.testing.assert_close(net[0].weight, start[0] - 2.0)
    torch.testing.assert_close(net[0].bias, start[1] - 2.0)
    torch.testing.assert_close(net[2].weight, start[2] - 1.25)
    torch.testing.assert_close(net[2].bias, start[3] - 1.25)
