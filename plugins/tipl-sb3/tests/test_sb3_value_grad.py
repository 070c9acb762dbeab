"""The value-gradient check on SB3 PPO: measured on the newest rollout's returns, through the
same value head that PPO's updates clip together with the actor."""

from __future__ import annotations

import torch
from stable_baselines3 import PPO

from tipl_opt.adapters import TIPLSetup
from tipl_sb3.attachment import attach_setup

HP = {"n_steps": 64, "batch_size": 64, "n_epochs": 2}
EVERY_BOUNDARY = {"snapshot_every": 1, "watchdog": False}


def test_the_value_gradient_check_measures_the_critics_gradient_on_the_newest_returns() -> None:
    model = PPO("MlpPolicy", "CartPole-v1", seed=0, device="cpu", **HP)
    callback = attach_setup(model, TIPLSetup(predictor="linear", jump=EVERY_BOUNDARY,
                                             value_grad_limit=1.0))
    guard = callback.optimizers["policy"].guard
    assert guard is not None and guard.name == "kl+value_change+entropy_drop+value_grad"
    parts = guard.guard.guards  # type: ignore[attr-defined]  # WithScore(AllOfGuard(...))
    check = next(g for g in parts if g.name == "value_grad")
    model.learn(640, callback=callback)
    counters = callback.counters()["policy"]
    assert counters["jumps_tried"] >= 2
    obs, returns = check.targets()
    assert obs.shape == (64, 4) and returns.shape == (64,)
    grads = [None if p.grad is None else p.grad.clone() for p in model.policy.parameters()]
    check.reference()
    assert check.measure() == 1.0  # nothing moved
    with torch.no_grad():  # the critic's gradient grows with its error
        model.policy.value_net.bias += 100.0
    assert check.measure() > 2.0
    # the check computed the critic's gradient without writing the parameters' .grad
    for before, p in zip(grads, model.policy.parameters(), strict=True):
        assert (p.grad is None) if before is None else torch.equal(p.grad, before)
