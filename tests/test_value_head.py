"""``fixed_value_head``: the critic's value output stays out of every jump."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
import torch
from torch import nn

from tipl_opt import TIPLOptimizer
from tipl_opt.paths.spec import ParamSpec, moving_mask, value_head
from tipl_opt.predictors.linear import LinearPredictor

SB3 = [ParamSpec("log_std", (2,), "actor"),
       ParamSpec("mlp_extractor.policy_net.0.weight", (64, 11), "actor"),
       ParamSpec("mlp_extractor.value_net.0.weight", (64, 11), "critic"),
       ParamSpec("mlp_extractor.value_net.0.bias", (64,), "critic"),
       ParamSpec("action_net.weight", (2, 64), "actor"),
       ParamSpec("action_net.bias", (2,), "actor"),
       ParamSpec("value_net.weight", (1, 64), "critic"),
       ParamSpec("value_net.bias", (1,), "critic")]
TIANSHOU = [ParamSpec("policy.actor.sigma_param", (1, 1), "actor"),
            ParamSpec("policy.actor.mu.model.0.weight", (1, 64), "actor"),
            ParamSpec("critic.preprocess.model.model.2.bias", (64,), "critic"),
            ParamSpec("critic.last.model.0.weight", (1, 64), "critic"),
            ParamSpec("critic.last.model.0.bias", (1,), "critic")]


def test_the_value_head_is_the_critics_single_output_row() -> None:
    assert value_head(SB3) == ("value_net.weight", "value_net.bias")
    assert value_head(TIANSHOU) == ("critic.last.model.0.weight", "critic.last.model.0.bias")
    # an actor with one action dimension is not a value head
    assert value_head([s for s in TIANSHOU if s.role == "actor"]) == ()
    mask = moving_mask(SB3, None, fixed_value_head=True)
    assert mask is not None
    sizes = [s.numel for s in SB3]
    assert mask.numel() == sum(sizes) and int((~mask).sum()) == 64 + 1
    assert not mask[-65:].any() and mask[:-65].all()
    # with roles and named parameters: both are applied, a name given twice is fine
    both = moving_mask(SB3, ("critic",), ("value_net.bias",), fixed_value_head=True)
    assert both is not None and int(both.sum()) == 64 * 11 + 64


def test_no_value_head_warns_and_moves_everything(caplog: pytest.LogCaptureFixture) -> None:
    actor = [s for s in SB3 if s.role == "actor"]
    with caplog.at_level(logging.WARNING, logger="tipl_opt.paths.spec"):
        assert moving_mask(actor, None, fixed_value_head=True) is None
    assert any("no critic parameter has a single" in r.getMessage()
               for r in caplog.records)


class _StartRecorder(LinearPredictor):
    """``linear`` that remembers the newest weights of each window it predicts from."""

    def __init__(self) -> None:
        super().__init__(4)
        self.starts: list[torch.Tensor] = []

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        self.starts.append(window[-1].clone())
        return super().predict(window, steps, specs, horizon)


def _train(mode: str, steps: int = 40) -> tuple[TIPLOptimizer, _StartRecorder,
                                                 list[torch.Tensor]]:
    net = nn.ModuleDict({"pi": nn.Linear(4, 2), "vf": nn.Linear(4, 8),
                         "value_net": nn.Linear(8, 1)})
    recorder = _StartRecorder()
    opt = TIPLOptimizer(net, recorder, base_class=torch.optim.SGD, lr=0.05,
                        config={"snapshot_every": 1, "context": 4,
                                "value_head": mode})
    after: list[torch.Tensor] = []
    opt.register_jump_hook(lambda o, report: after.append(o.flat_weights()))
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    for _ in range(steps):  # constant gradients: every path is a straight line
        opt.zero_grad()
        (net["pi"](x).sum() + net["value_net"](net["vf"](x)).sum()).backward()
        opt.step()
    return opt, recorder, after


def test_a_jump_leaves_the_value_head_where_it_was() -> None:
    opt, recorder, after = _train("fixed")
    assert after and len(after) == len(recorder.starts)
    head = torch.cat([torch.full((s.numel,), s.name.startswith("value_net")) for s in opt.specs])
    for start, weights in zip(recorder.starts, after, strict=True):
        assert torch.equal(weights[head], start[head])
        assert not torch.equal(weights[~head], start[~head])
    _, free_starts, free_after = _train("jump")
    assert any(not torch.equal(w[head], s[head])
               for s, w in zip(free_starts.starts, free_after, strict=True))
    # the setting round-trips with the optimizer's state
    again, _, _ = _train("jump", steps=2)
    again.load_state_dict(opt.state_dict())
    assert again.config.acceptance.value_head == "fixed"
    assert again._mask.mask is not None and torch.equal(again._mask.mask, ~head)
    assert opt.counters["value_head_held"] == len(after)

