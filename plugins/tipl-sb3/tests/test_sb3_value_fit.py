"""The value-fit check on SB3 PPO: the newest rollout's returns reach the guard."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from tipl_opt.adapters import TIPLSetup
from tipl_sb3.attachment import attach_setup

HP = {"n_steps": 64, "batch_size": 64, "n_epochs": 2}
EVERY_BOUNDARY = {"snapshot_every": 1, "watchdog": False}


def test_the_value_fit_check_compares_the_value_head_with_the_newest_returns() -> None:
    model = PPO("MlpPolicy", "CartPole-v1", seed=0, device="cpu", **HP)
    callback = attach_setup(model, TIPLSetup(predictor="linear", jump=EVERY_BOUNDARY,
                                             value_fit_limit=1.0))
    guard = callback.optimizers["policy"].guard
    assert guard is not None
    assert guard.name == "kl+value_change+value_fit+entropy_drop+value_grad"
    parts = guard.guard.guards  # type: ignore[attr-defined]  # WithScore(AllOfGuard(...))
    fit = next(g for g in parts if g.name == "value_fit")
    returns: list[np.ndarray] = []

    class AtRolloutEnd(BaseCallback):
        def _on_rollout_end(self) -> None:  # after TIPL's callback has captured the rollout
            returns.append(model.rollout_buffer.returns.copy())

        def _on_step(self) -> bool:
            return True

    model.learn(640, callback=CallbackList([callback, AtRolloutEnd()]))
    sample = callback.rollout_observations.sample  # type: ignore[union-attr]
    assert sample is not None
    assert torch.allclose(sample.returns, torch.as_tensor(returns[-1]).flatten().float())
    obs, targets = fit.targets()
    assert obs.shape == (64, 4) and targets.shape == (64,)
    fit.reference()
    assert fit.measure() == 1.0  # the weights have not moved: the same fit
    with torch.no_grad():
        values = model.policy.predict_values(obs).flatten()
        error = float((targets - values).pow(2).mean().sqrt())
        model.policy.value_net.bias += 3 * error  # far past the returns on every side
    assert fit.measure() > 2.0
    counters = callback.counters()["policy"]
    assert counters["jumps_tried"] >= 1
    assert set(counters) >= {"jumps_tried", "jumps_accepted"}
