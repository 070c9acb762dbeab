"""The value-gradient check on Tianshou PPO: the newest rollout's returns reach it."""

from __future__ import annotations

import math

import pytest

from tipl_opt.adapters import TrainSpec
from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.hookspecs import hookimpl
from tipl_opt.jumps import JumpReport
from tipl_opt.plugins import get_plugin_manager
from tipl_tianshou.collect import run_collection

SPEC = TrainSpec(algo="ppo", env_id="CartPole-v1", seed=0, total_steps=2000, every=100,
                 hidden_sizes=(16,), eval_episodes=0,
                 hyperparams={"collection_step_num_env_steps": 100})


class _Reports:
    def __init__(self) -> None:
        self.reports: list[JumpReport] = []

    @hookimpl
    def tipl_on_jump(self, report: JumpReport) -> None:
        self.reports.append(report)


@pytest.mark.slow
def test_ppo_checks_the_critics_gradient_on_the_newest_returns_when_asked() -> None:
    recorder = _Reports()
    pm = get_plugin_manager()
    pm.register(recorder)
    try:
        hyperparams = run_collection(SPEC, lambda snapshot: None, lambda steps: None,
                                     tipl=TIPLSetup(predictor="linear",
                                                    jump={"snapshot_every": 1},
                                                    value_grad_limit=1.0))
    finally:
        pm.unregister(recorder)
    guard = hyperparams["tipl"]["guard"]["actor_critic"]
    assert guard["limits"]["value_grad"] == 1.0
    assert hyperparams["tipl"]["counters"]["actor_critic"]["jumps_tried"] >= 3
    assert recorder.reports and all(math.isfinite(r.guard) for r in recorder.reports)
