"""Parameters no jump moves (``AcceptanceConfig.fixed_params``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tipl_opt.errors import ConfigError
from tipl_opt.jumps import JumpConfig
from tipl_opt.optimizer import TIPLOptimizer
from tipl_opt.paths.spec import ParamSpec, moving_mask, name_matches


class Shift:
    """Predicts "last snapshot + 1" for every weight."""

    name, context = "shift", 2

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: list[ParamSpec], horizon: int) -> torch.Tensor:
        return window[-1] + 1.0


class Gaussian(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.pi = nn.Linear(3, 2)
        self.log_std = nn.Parameter(torch.zeros(2))


def jump_once(net: nn.Module, config: dict[str, object]) -> TIPLOptimizer:
    opt = TIPLOptimizer(net, Shift(), base=torch.optim.SGD(net.parameters(), lr=0.0),
                        config={"snapshot_every": 1, **config})
    for _ in range(2):  # the second step jumps
        opt.zero_grad()
        sum(p.sum() for p in net.parameters()).backward()
        opt.step()
    assert opt.counters["jumps_accepted"] == 1
    return opt


def test_a_fixed_parameter_keeps_its_weights_through_a_jump() -> None:
    net = Gaussian()
    log_std, weight = net.log_std.detach().clone(), net.pi.weight.detach().clone()
    opt = jump_once(net, {"fixed_params": "log_std"})  # the flat, comma-separated form
    assert opt.config.acceptance.fixed_params == ("log_std",)
    assert torch.equal(net.log_std, log_std)
    assert torch.allclose(net.pi.weight, weight + 1)
    free = Gaussian()
    jump_once(free, {})
    assert torch.allclose(free.log_std, log_std + 1)  # without it, it jumps as the others


def test_fixed_params_combine_with_roles_and_round_trip() -> None:
    net = nn.ModuleDict({"pi": nn.Linear(3, 2), "vf": nn.Linear(3, 1)})
    before = [p.detach().clone() for p in net.parameters()]
    opt = jump_once(net, {"roles": ["critic"], "fixed_params": ["vf.bias"]})
    moved = [not torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True)]
    assert moved == [False, False, True, False]  # pi.*: not a critic; vf.bias: fixed
    other = TIPLOptimizer(net, Shift(), base=torch.optim.SGD(net.parameters(), lr=0.0))
    other.load_state_dict(opt.state_dict())
    assert other.config.acceptance.fixed_params == ("vf.bias",)
    assert other._mask.mask is not None and int(other._mask.mask.sum()) == 3  # vf.weight


def test_names_match_whole_dotted_parts_and_unknown_names_are_refused() -> None:
    assert name_matches("policy.log_std", "log_std") and name_matches("log_std", "log_std")
    assert not name_matches("policy.my_log_std", "log_std")
    specs = [ParamSpec("pi.weight", (2, 3), "actor"), ParamSpec("log_std", (2,), "actor")]
    mask = moving_mask(specs, None, ("log_std",))
    assert mask is not None and mask.tolist() == [True] * 6 + [False] * 2
    assert moving_mask(specs, None, ()) is None
    with pytest.raises(ConfigError, match=r"fixed_params \['sigma'\] name no parameter"):
        moving_mask(specs, None, ("sigma",))
    assert JumpConfig(fixed_params="a, b").acceptance.fixed_params == ("a", "b")
