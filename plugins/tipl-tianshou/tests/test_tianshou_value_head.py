"""Tianshou PPO's value head is what ``value_head="fixed"`` leaves out of the jumps."""

from __future__ import annotations

import gymnasium as gym
import torch

from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.paths.spec import ParamSpec, value_head
from tipl_tianshou.algorithms import resolve
from tipl_tianshou.attachment import TIPLAttachment
from tipl_tianshou.build import build_agent, optimized_parameters


def test_the_value_head_of_tianshou_ppo_is_the_critics_last_layer() -> None:
    torch.manual_seed(0)
    attachment = TIPLAttachment("ppo", TIPLSetup(predictor="linear",
                                                 jump={"value_head": "fixed"}))
    env = gym.make("Pendulum-v1")
    try:
        agent = build_agent("ppo", env, resolve("ppo", {}), (16,), "tanh",
                            attachment.wrappers())
    finally:
        env.close()
    specs = [ParamSpec(p.name, tuple(p.tensor.shape), p.role)
             for p in optimized_parameters(agent)]
    assert value_head(specs) == ("critic.last.model.0.weight", "critic.last.model.0.bias")
    assert {s.role for s in specs if s.name.startswith("critic.")} == {"critic"}
