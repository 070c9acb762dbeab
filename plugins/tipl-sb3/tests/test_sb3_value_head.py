"""``value_head="fixed"`` on SB3 PPO: the jumps leave ``value_net`` where the gradient steps put
it and move the rest."""

from __future__ import annotations

import torch
from stable_baselines3 import PPO

from tipl_opt.adapters import TIPLSetup
from tipl_opt.jumps import JumpReport
from tipl_opt.optimizer import TIPLOptimizer
from tipl_sb3.attachment import attach_setup

HP = {"n_steps": 64, "batch_size": 64, "n_epochs": 2}


def test_sb3_ppo_jumps_leave_the_value_net_as_it_was() -> None:
    model = PPO("MlpPolicy", "CartPole-v1", seed=0, device="cpu", **HP)
    callback = attach_setup(model, TIPLSetup(
        predictor="linear", jump={"snapshot_every": 1, "watchdog": False,
                                  "value_head": "fixed"}))
    optimizer = callback.optimizers["policy"]
    head = torch.cat([torch.full((s.numel,), s.name.startswith("value_net."))
                      for s in optimizer.specs])
    assert int(head.sum()) == 64 + 1
    moves: list[tuple[torch.Tensor, torch.Tensor]] = []

    def keep(o: TIPLOptimizer, report: JumpReport) -> None:
        if report.accepted and o._undo is not None:  # the weights right before the jump
            moves.append((torch.cat([p.reshape(-1) for p in o._undo]), o.flat_weights()))

    optimizer.register_jump_hook(keep)
    model.learn(1280, callback=callback)
    counters = callback.counters()["policy"]
    assert counters["jumps_tried"] >= 2
    assert counters["value_head_held"] == counters["jumps_tried"]
    assert moves
    for before, after in moves:
        assert torch.equal(before[head], after[head])
        assert not torch.equal(before[~head], after[~head])
