"""``persistence_hold="jump"``: a network whose path has lost its direction holds every later
jump instead of only its own weights."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from tipl_opt import JumpConfig, TIPLOptimizer
from tipl_opt.jumps import JumpReport
from tipl_opt.persistence import RolePersistence


def _train(hold: str, steps: int = 120) -> tuple[TIPLOptimizer, list[JumpReport]]:
    """An actor whose gradients are noise (its path wanders) beside a critic whose gradient
    is constant (its path is straight), both trained by one optimizer, each measured once."""
    net = nn.ModuleDict({"pi": nn.Linear(4, 5, bias=False), "vf": nn.Linear(4, 1, bias=False)})
    config = {"snapshot_every": 1, "context": 4, "min_persistence": 0.5,
              "persistence_windows": 8, "persistence_scope": "role",
              "persistence_mode": "once", "persistence_hold": hold}
    opt = TIPLOptimizer(net, "linear", base_class=torch.optim.SGD, lr=0.1, config=config)
    reports: list[JumpReport] = []
    opt.register_jump_hook(lambda o, report: reports.append(report))
    noise = torch.randn(steps, 5, 4, generator=torch.Generator().manual_seed(4))
    for g in noise:
        opt.zero_grad()
        ((net["pi"].weight * g).sum() + net["vf"].weight.sum()).backward()
        opt.step()
    return opt, reports


def test_a_wandering_network_holds_every_later_jump(caplog: pytest.LogCaptureFixture) -> None:
    role, role_reports = _train("role")
    with caplog.at_level(logging.INFO, logger="tipl_opt.persistence"):
        jump, jump_reports = _train("jump")
    assert isinstance(jump.persistence, RolePersistence)
    values = jump.persistence.values
    assert values["actor"] is not None and values["actor"] < 0.5
    assert values["critic"] == pytest.approx(1.0, abs=1e-4)
    # the same decision; "role" goes on jumping the critic, "jump" holds every later jump
    assert role.counters["role_held_actor"] > 0 and role.counters["jumps_held"] == 0
    assert jump.counters["jumps_held"] > 0 and "role_held_actor" not in jump.counters
    before = [r for r in jump_reports if not r.held_roles]
    assert len(jump_reports) == len(before) < len(role_reports)
    # up to the decision both runs are the same jumps at the same steps
    assert [r.step for r in jump_reports] == [r.step for r in role_reports[:len(jump_reports)]]
    assert all(r.held_roles for r in role_reports[len(jump_reports):])
    said = [r.getMessage() for r in caplog.records if r.name == "tipl_opt.persistence"]
    assert any(m.startswith("TIPL: the actor path") and "every later jump is held" in m
               for m in said)
    # the setting round-trips with the optimizer's config
    again, _ = _train("jump", steps=10)
    again.load_state_dict(jump.state_dict())
    assert again.config.schedule.persistence_hold == "jump"


def test_persistence_hold_is_validated() -> None:
    assert JumpConfig().schedule.persistence_hold == "role"
    with pytest.raises(ValueError, match="persistence_hold"):
        JumpConfig.model_validate({"persistence_hold": "network"})
