"""The value-gradient check is on for PPO by default (limit 2), off for other algorithms."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stable_baselines3 import PPO

from tipl_opt import run_cache
from tipl_opt.adapters import TIPLSetup
from tipl_opt.adapters.attachment import VALUE_GRAD_LIMIT_BY_DEFAULT, value_grad_limit_of
from tipl_opt.train import TrainConfig, make_tasks
from tipl_sb3.attachment import attach_setup


def test_ppo_checks_the_critics_gradient_by_default_and_others_do_not() -> None:
    assert VALUE_GRAD_LIMIT_BY_DEFAULT["ppo"][0] == 2.0
    assert value_grad_limit_of(TIPLSetup(), "ppo") == 2.0
    assert value_grad_limit_of(TIPLSetup(), "PPO") == 2.0
    for algo in ("a2c", "sac", "td3", "dqn"):
        assert value_grad_limit_of(TIPLSetup(), algo) is None
    assert value_grad_limit_of(TIPLSetup(value_grad_limit=1.0), "ppo") == 1.0
    assert value_grad_limit_of(TIPLSetup(value_grad_limit=3.0), "a2c") == 3.0


def test_an_sb3_ppo_guard_carries_the_check_with_the_default_limit() -> None:
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, seed=0, device="cpu")
    callback = attach_setup(model, TIPLSetup(predictor="linear"))
    guard = callback.optimizers["policy"].guard
    assert guard is not None and guard.name == "kl+value_change+entropy_drop+value_grad"
    parts = guard.guard.guards  # WithScore(AllOfGuard(...))
    check = [g for g in parts if g.name == "value_grad"]
    assert len(check) == 1 and check[0].limit == 2.0


def _tasks(out: Path, algo: str, **hp: int) -> TrainConfig:
    return TrainConfig(lib="sb3", algo=algo, env="Pendulum-v1", steps=512, every=256,
                       predictor="linear", eval_episodes=1, hidden_sizes=(8,), hyperparams=hp,
                       out=out)


def test_the_limit_in_effect_decides_a_ppo_runs_fingerprint_and_leaves_others_alone(
        tmp_path: Path) -> None:
    cfg = _tasks(tmp_path, "ppo", n_steps=128, batch_size=64)
    [(ppo, _)] = make_tasks(cfg, cfg.variants())
    assert ppo.tipl is not None and ppo.tipl.value_grad_limit is None
    default = run_cache.fingerprint(ppo)
    given = dataclasses.replace(ppo, tipl=ppo.tipl.model_copy(update={"value_grad_limit": 2.0}))
    assert run_cache.fingerprint(given) == default  # given or by default: the same run
    other = dataclasses.replace(ppo, tipl=ppo.tipl.model_copy(update={"value_grad_limit": 1.0}))
    assert run_cache.fingerprint(other) != default
    sac_cfg = _tasks(tmp_path, "sac")
    [(sac, _)] = make_tasks(sac_cfg, sac_cfg.variants())
    assert sac.tipl is not None
    plain = run_cache.fingerprint(sac)
    # SAC is checked only when asked (its kept runs keep their fingerprints); asked, it counts
    checked = dataclasses.replace(sac, tipl=sac.tipl.model_copy(update={"value_grad_limit": 2.0}))
    assert run_cache.fingerprint(checked) != plain
