"""TIPLOptimizer attached to real SB3 agents on tiny budgets.

Cadence traced by hand for the PPO case (n_steps=64, batch_size=64, n_epochs=2, predictor
``linear`` with a context of 8, snapshot_every=1): a snapshot at every rollout start (env steps
0, 64, 128, ...; 2 optimizer steps per rollout), the window is full at the 8th (env step 448,
optimizer step 14) -> jump; the window restarts with that snapshot, so the next jumps come
every 7 rollouts: env steps 896, 1344, ...
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

import tipl_sb3
from tipl_opt.adapters import TIPLSetup, TrainSpec
from tipl_opt.errors import ConfigError
from tipl_opt.hookspecs import hookimpl
from tipl_opt.jumps import JumpConfig, JumpReport
from tipl_opt.optimizer import TIPLOptimizer
from tipl_opt.plugins import get_plugin_manager
from tipl_sb3 import SB3Adapter, TIPLCallback, attach
from tipl_sb3.attachment import env_id_of, jump_config, rollout_size

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[3]
PPO_HP: dict[str, Any] = {"n_steps": 64, "batch_size": 64, "n_epochs": 2}
EVERY_BOUNDARY = {"snapshot_every": 1, "enabled": True, "watchdog": False}
"""These rollouts are shorter than 256 env steps, so by default a snapshot is taken only every
few boundaries; the cadence traced above asks for one at every boundary (and for jumps on A2C,
which are off by default), with no return watchdog holding a jump back."""
FRESH_WINDOWS = {**EVERY_BOUNDARY, "keep_window": False}
"""As :data:`EVERY_BOUNDARY`, with a fresh window of 8 snapshots per jump instead of PPO's
default kept window and a jump every 2 snapshots."""
OFF_HP: dict[str, Any] = {"learning_starts": 100, "batch_size": 32, "buffer_size": 1000}
SMALL = {"net_arch": [32, 32]}


def ppo(seed: int = 0, **kwargs: Any) -> PPO:
    return PPO("MlpPolicy", "CartPole-v1", seed=seed, device="cpu", **{**PPO_HP, **kwargs})


def make(cls: type[BaseAlgorithm], env_id: str, **kwargs: Any) -> Any:
    return cls("MlpPolicy", env_id, seed=0, device="cpu", policy_kwargs=dict(SMALL), **kwargs)


def flat(params: Iterator[torch.Tensor] | list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for p in params])


def owned(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


class JumpRecorder:
    """tipl_on_jump plugin: records each report with ``probe()`` evaluated at that moment."""

    def __init__(self, probe: Callable[[], Any] = lambda: None) -> None:
        self.probe = probe
        self.jumps: list[tuple[JumpReport, Any]] = []

    @hookimpl
    def tipl_on_jump(self, report: JumpReport) -> None:
        self.jumps.append((report, self.probe()))


@pytest.fixture
def recorder() -> Iterator[JumpRecorder]:
    rec = JumpRecorder()
    pm = get_plugin_manager()
    pm.register(rec)
    yield rec
    pm.unregister(rec)


# -- SB3's own optimizers stay the base ---------------------------------------------------------
def base_hyperparameters(opt: torch.optim.Optimizer) -> list[dict[str, Any]]:
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


@pytest.mark.parametrize(("cls", "env_id", "expected"), [
    (PPO, "CartPole-v1", {"policy": (torch.optim.Adam, 1e-5)}),
    (A2C, "CartPole-v1", {"policy": (torch.optim.RMSprop, 1e-5)}),
    (DQN, "CartPole-v1", {"policy": (torch.optim.Adam, 1e-8)}),
    (SAC, "Pendulum-v1", {"actor": (torch.optim.Adam, 1e-8), "critic": (torch.optim.Adam, 1e-8)}),
])
def test_attach_wraps_the_optimizers_sb3_built(cls: type[BaseAlgorithm], env_id: str,
                                               expected: dict[str, tuple[type, float]]) -> None:
    plain = make(cls, env_id)
    model = make(cls, env_id)
    owners = {part: (model.policy if part == "policy" else getattr(model, part))
              for part in expected}
    built = {part: owner.optimizer for part, owner in owners.items()}
    callback = attach(model, "linear", guard=False)
    for part, (base_class, eps) in expected.items():
        tipl = owners[part].optimizer
        assert isinstance(tipl, TIPLOptimizer) and callback.optimizers[part] is tipl
        assert tipl.base is built[part] and type(tipl.base) is base_class
        assert all(ours is theirs for ours, theirs in  # the same group dicts: lr writes reach
                   zip(tipl.param_groups, tipl.base.param_groups, strict=True))
        assert tipl.state is tipl.base.state
        assert tipl.param_groups[0]["eps"] == eps
        plain_owner = plain.policy if part == "policy" else getattr(plain, part)
        assert base_hyperparameters(tipl.base) == base_hyperparameters(plain_owner.optimizer)
    if cls is A2C:
        assert owners["policy"].optimizer.param_groups[0]["alpha"] == 0.99


def test_td3_jumps_are_off_by_default_and_its_actor_alone_jumps_when_asked(
        caplog: pytest.LogCaptureFixture) -> None:
    model = make(TD3, "Pendulum-v1")
    critic_optimizer = model.critic.optimizer
    with caplog.at_level(logging.WARNING, logger="tipl_opt.adapters.attachment"):
        callback = attach(model, "linear", guard=False)
    assert "jumps are off by default for SB3 TD3" in caplog.text
    assert callback.optimizers["actor"].config.schedule.enabled is False
    asked = attach(make(TD3, "Pendulum-v1"), "linear", {"enabled": True}, guard=False)
    assert asked.optimizers["actor"].config.schedule.enabled is True
    assert set(callback.optimizers) == {"actor"}
    assert isinstance(model.actor.optimizer, TIPLOptimizer)
    assert model.critic.optimizer is critic_optimizer  # left as SB3 built it
    both = attach(make(TD3, "Pendulum-v1"), "linear", guard=False, targets="both")
    assert set(both.optimizers) == {"actor", "critic"}


def test_specs_name_the_parameters_the_optimizer_owns() -> None:
    model = make(SAC, "Pendulum-v1")
    callback = attach(model, "linear", guard=False, targets="critic")
    assert list(callback.optimizers) == ["critic"]
    assert type(model.actor.optimizer) is torch.optim.Adam  # left alone
    specs = callback.optimizers["critic"].specs
    assert specs[0].name == "critic.qf0.0.weight" and {s.role for s in specs} == {"critic"}
    assert sum(s.numel for s in specs) == sum(p.numel() for p in model.critic.parameters())


# -- configuration at the edge ------------------------------------------------------------------
def test_jump_config_defaults_and_overrides() -> None:
    assert jump_config("ppo", None).schedule.model_dump(include={"mode", "snapshot_every"}) == {
        "mode": "manual", "snapshot_every": 1}
    assert jump_config("sac", None).schedule.mode == "auto"
    assert (jump_config("sac", None).schedule.snapshot_every
            == JumpConfig().schedule.snapshot_every)
    assert jump_config("ppo", {"snapshot_every": 3}).schedule.snapshot_every == 3
    only_horizon = jump_config("a2c", JumpConfig(horizon=2))  # unset fields keep the defaults
    assert (only_horizon.schedule.mode, only_horizon.schedule.horizon) == ("manual", 2)
    with pytest.raises(ConfigError, match="rollout boundaries"):
        jump_config("ppo", {"mode": "auto"})
    with pytest.raises(ConfigError, match="snapshot_every"):
        jump_config("dqn", {"snapshot_every": 0})


def test_ppo_decides_once_which_network_jumps_by_default() -> None:
    """PPO's default check: one meter per network (SB3's actor and critic), each settling on
    its first windows (2 here instead of 32, to stay short) and kept for the rest of the run."""
    from tipl_opt.persistence import RolePersistence

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=256, batch_size=64, seed=0,
                policy_kwargs={"net_arch": [16]})
    callback = tipl_sb3.attach(model, "linear", {"persistence_windows": 2})
    opt = model.policy.optimizer
    assert isinstance(opt, TIPLOptimizer) and isinstance(opt.persistence, RolePersistence)
    assert set(opt.persistence.meters) == {"actor", "critic"}
    model.learn(256 * 24, callback=callback)
    values = opt.persistence.values
    assert all(meter.settled for meter in opt.persistence.meters.values())
    settled = dict(values)
    model.learn(256 * 8, callback=callback, reset_num_timesteps=False)
    assert opt.persistence.values == settled  # decided once: later snapshots change nothing
    for role, value in settled.items():
        assert value is not None
        assert (opt.counters.get(f"role_held_{role}", 0) > 0) == (value < 0.1)


def test_ppo_targets_jump_only_that_role() -> None:
    model = ppo()
    callback = attach(model, "linear", guard=False, targets="critic")
    opt = callback.optimizers["policy"]
    assert opt.config.acceptance.roles == ("critic",)
    critic = torch.tensor([s.role == "critic" for s in opt.specs for _ in range(s.numel)])
    assert 0 < int(critic.sum()) < critic.numel()
    starts: list[torch.Tensor] = []  # the weights each jump starts from
    predict = opt.predictor.predict

    def recording(window: torch.Tensor, *args: Any) -> torch.Tensor:
        starts.append(window[-1].clone())
        return predict(window, *args)

    opt.predictor.predict = recording  # type: ignore[method-assign]
    after: list[tuple[torch.Tensor, bool]] = []
    opt.register_jump_hook(lambda o, report: after.append((o.flat_weights(), report.accepted)))
    model.learn(3000, callback=callback)
    assert len(starts) == len(after) > 0 and all(accepted for _, accepted in after)
    for start, (weights, _) in zip(starts, after, strict=True):
        assert torch.equal(weights[~critic], start[~critic])  # the actor kept its weights
        assert not torch.equal(weights[critic], start[critic])  # the critic jumped


def test_attach_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ConfigError, match="single optimizer"):
        attach(make(DQN, "CartPole-v1"), "linear", targets="actor")
    model = ppo()
    attach(model, "linear")
    with pytest.raises(ConfigError, match="already has TIPL attached"):
        attach(model, "linear")
    with pytest.raises(ConfigError, match="not one of the SB3 algorithms"):
        attach(cast(Any, object()), "linear")


def test_the_callback_refuses_another_model() -> None:
    callback = attach(ppo(), "linear")
    with pytest.raises(ConfigError, match="another model"):
        ppo().learn(64, callback=callback)


# -- on-policy: snapshots sized in env steps ----------------------------------------------------
def test_short_rollouts_snapshot_every_256_env_steps_by_default() -> None:
    a2c = A2C("MlpPolicy", "CartPole-v1", seed=0, device="cpu", n_steps=5)
    assert rollout_size(a2c, "a2c") == (5, 1)
    callback = attach(a2c, "linear", {"enabled": True}, guard=False)
    assert callback.optimizers["policy"].config.schedule.snapshot_every == 52  # 52 rollouts
    a2c.learn(2600, callback=callback)
    counters = callback.counters()["policy"]
    assert counters["snapshots"] == 10 + counters["jumps_tried"]  # one per 260 env steps
    assert counters["jumps_tried"] == 1  # the 8th snapshot, at 1,820 env steps
    model = ppo()  # 64 env steps, 2 optimizer steps per rollout: every 4th boundary
    assert rollout_size(model, "ppo") == (64, 2)
    assert attach(model, "linear").optimizers["policy"].config.schedule.snapshot_every == 7
    big = PPO("MlpPolicy", "CartPole-v1", n_steps=512, batch_size=64, device="cpu")
    assert attach(big, "linear").optimizers["policy"].config.schedule.snapshot_every == 1


def test_a2c_jumps_are_off_by_default_and_on_when_asked(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    a2c = A2C("MlpPolicy", "CartPole-v1", seed=0, device="cpu", n_steps=5)
    with caplog.at_level(logging.WARNING, logger="tipl_opt.adapters.attachment"):
        callback = attach(a2c, "linear", guard=False)
    assert "jumps are off by default for SB3 A2C" in caplog.text
    assert "--jump enabled=true" in caplog.text
    assert callback.describe()["jump"]["enabled"] is False
    a2c.learn(2600, callback=callback)
    counters = callback.counters()["policy"]
    assert counters["jumps_tried"] == 0 and counters["snapshots"] == 10  # snapshots still taken
    asked = attach(A2C("MlpPolicy", "CartPole-v1", seed=0, device="cpu"), "linear",
                   {"enabled": True})
    assert asked.optimizers["policy"].config.schedule.enabled is True
    assert attach(ppo(), "linear").optimizers["policy"].config.schedule.enabled is True


# -- on-policy: jumps only at rollout starts ----------------------------------------------------
@pytest.mark.parametrize(("cls", "hp", "steps_per_rollout"), [
    (PPO, PPO_HP, 2), (A2C, {"n_steps": 16}, 1)])
def test_on_policy_jumps_only_at_rollout_starts(cls: type[BaseAlgorithm], hp: dict[str, Any],
                                                steps_per_rollout: int,
                                                recorder: JumpRecorder) -> None:
    model = cls("MlpPolicy", "CartPole-v1", seed=0, device="cpu", **hp)
    buffer = model.rollout_buffer  # type: ignore[attr-defined]
    recorder.probe = lambda: (model.num_timesteps, buffer.pos, buffer.full)
    callback = attach(model, "linear", EVERY_BOUNDARY)
    model.learn(1400, callback=callback)
    n_steps = hp["n_steps"]
    # PPO keeps the window and jumps every 2 snapshots after the first full one (7 rollouts of
    # 64 steps); A2C takes a fresh window of 8 snapshots (7 rollouts of 16 steps) per jump
    expected_at = ([448 + 128 * k for k in range(8)] if cls is PPO
                   else [112 * k for k in range(1, 13)])
    assert [at for _, (at, _, _) in recorder.jumps] == expected_at
    for report, (env_steps, pos, full) in recorder.jumps:
        assert env_steps % n_steps == 0
        assert (pos, full) == (0, False)  # the rollout buffer was just reset: a rollout start
        assert report.step == env_steps // n_steps * steps_per_rollout  # after a whole train()
        assert report.guard < 0.02
    counters = callback.counters()["policy"]
    # a fresh window starts with a snapshot of the jumped weights; a kept one is moved instead
    fresh_windows = 0 if cls is PPO else len(recorder.jumps)
    assert counters["snapshots"] == model.num_timesteps // n_steps + fresh_windows
    assert counters["jumps_tried"] == len(expected_at) == counters["jumps_accepted"]


def test_a_guard_of_limit_zero_rejects_every_jump_and_keeps_training_as_plain_sb3(
        recorder: JumpRecorder) -> None:
    plain = ppo()
    plain.learn(1000)
    model = ppo()
    recorder.probe = lambda: flat(model.policy.parameters())
    before: list[torch.Tensor] = []

    class WeightsAtRolloutStart(BaseCallback):
        def _on_rollout_start(self) -> None:
            before.append(flat(model.policy.parameters()))

        def _on_step(self) -> bool:
            return True

    callback = attach(model, "linear", EVERY_BOUNDARY, guard_limit=0.0)
    model.learn(1000, callback=CallbackList([WeightsAtRolloutStart(), callback]))
    # a rejected jump keeps the window as it was: the next is due 2 snapshots on
    assert [report.step for report, _ in recorder.jumps] == [14, 18, 22, 26, 30]
    for report, weights in recorder.jumps:
        assert not report.accepted and report.guard > 0 and "kl" in report.reason
        rollout = report.step // 2  # 2 optimizer steps per rollout
        assert torch.equal(weights, before[rollout])  # exactly the weights before the jump
    assert torch.equal(flat(model.policy.parameters()), flat(plain.policy.parameters()))


def test_learning_rate_schedule_reaches_the_base_optimizer() -> None:
    def schedule(progress_remaining: float) -> float:
        return 1e-3 * progress_remaining

    model = ppo(learning_rate=schedule)
    callback = attach(model, "linear")
    base = callback.optimizers["policy"].base
    seen: list[float] = []

    class BaseLR(BaseCallback):
        def _on_rollout_start(self) -> None:
            seen.append(base.param_groups[0]["lr"])

        def _on_step(self) -> bool:
            return True

    model.learn(640, callback=CallbackList([callback, BaseLR()]))
    # SB3 writes param_group["lr"] at each train(); the first rollout precedes any train().
    expected = [schedule(1 - k * 64 / 640) for k in range(10)]
    assert seen[0] == 1e-3 and seen[1:] == pytest.approx(expected[1:])
    assert base.param_groups[0]["lr"] == pytest.approx(schedule(model._current_progress_remaining))


# -- off-policy: auto mode, target networks untouched -------------------------------------------
TARGETS: dict[str, Callable[[Any], list[torch.Tensor]]] = {
    "dqn": lambda m: list(m.q_net_target.parameters()),
    "sac": lambda m: list(m.critic_target.parameters()),
    "td3": lambda m: [*m.critic_target.parameters(), *m.actor_target.parameters()],
}


@pytest.mark.parametrize(("algo", "cls", "env_id", "steps"), [
    ("dqn", DQN, "CartPole-v1", 1200),
    ("sac", SAC, "Pendulum-v1", 500),
    ("td3", TD3, "Pendulum-v1", 500),
])
def test_off_policy_jumps_in_step_and_never_moves_target_networks(
        algo: str, cls: type[BaseAlgorithm], env_id: str, steps: int,
        recorder: JumpRecorder) -> None:
    model = make(cls, env_id, **OFF_HP)
    targets = TARGETS[algo](model)
    callback = attach(model, "linear", {"snapshot_every": 10, "enabled": True})  # TD3: off
    owned_ids = {id(p) for opt in callback.optimizers.values() for p in owned(opt)}
    assert owned_ids.isdisjoint(id(t) for t in targets)
    at_step_start: list[torch.Tensor] = [flat(targets)]
    for opt in callback.optimizers.values():
        opt.register_step_pre_hook(lambda *_: at_step_start.__setitem__(0, flat(targets)))
    recorder.probe = lambda: (flat(targets), at_step_start[0])
    model.learn(steps, callback=callback)
    counters = callback.counters()
    assert all(c["jumps_tried"] >= 1 for c in counters.values()), counters
    assert sum(c["jumps_accepted"] for c in counters.values()) >= 1
    assert len(recorder.jumps) == sum(c["jumps_tried"] for c in counters.values())
    for _, (targets_after_jump, targets_at_step_start) in recorder.jumps:
        # The jump happens inside step(): the targets are as they were when that step began.
        assert torch.equal(targets_after_jump, targets_at_step_start)


def test_dqn_rejected_jumps_restore_the_exact_weights(recorder: JumpRecorder) -> None:
    model = make(DQN, "CartPole-v1", **OFF_HP)
    callback = attach(model, "linear", {"snapshot_every": 5, "max_backtracks": 0},
                      guard_limit=-1.0)
    opt = callback.optimizers["policy"]
    after_base_step: list[torch.Tensor] = [torch.empty(0)]
    opt.base.register_step_post_hook(
        lambda *_: after_base_step.__setitem__(0, flat(owned(opt))))
    recorder.probe = lambda: (flat(owned(opt)), after_base_step[0])
    model.learn(400, callback=callback)
    assert len(recorder.jumps) >= 2 and all(not r.accepted for r, _ in recorder.jumps)
    for report, (weights, weights_after_gradient_step) in recorder.jumps:
        assert report.guard >= 0 and "greedy_change" in report.reason
        assert torch.equal(weights, weights_after_gradient_step)


# -- save and load ------------------------------------------------------------------------------
def trained_ppo(steps: int, guard: bool = True,
                config: dict[str, Any] | None = None) -> tuple[PPO, TIPLCallback]:
    model = ppo()
    callback = attach(model, "linear", FRESH_WINDOWS if config is None else config, guard=guard)
    model.learn(steps, callback=callback)
    return model, callback


def test_save_and_load_continue_the_tipl_history(tmp_path: Path) -> None:
    model, callback = trained_ppo(640)  # 10 rollout starts: one jump, window of 3 after it
    saved = callback.optimizers["policy"].state_dict()
    model.save(tmp_path / "agent.zip")
    loaded, resumed = tipl_sb3.load(PPO, tmp_path / "agent.zip", env=model.get_env(),
                                    predictor="linear", device="cpu")
    opt = resumed.optimizers["policy"]
    state = opt.state_dict()
    for key in ("steps", "last_snapshot", "counters", "config", "predictor"):
        assert state["tipl"][key] == saved["tipl"][key]
    for key in ("window", "steps", "count"):
        assert torch.equal(torch.as_tensor(state["tipl"]["history"][key]),
                           torch.as_tensor(saved["tipl"]["history"][key]))
    for index, moments in saved["state"].items():
        for name, value in moments.items():
            assert torch.equal(state["state"][index][name], value)
    assert state["param_groups"] == saved["param_groups"]
    assert opt.base.param_groups[0]["eps"] == 1e-5 and loaded.policy.optimizer is opt
    assert torch.equal(flat(loaded.policy.parameters()), flat(model.policy.parameters()))
    before = dict(opt.counters)
    loaded.learn(512, callback=resumed, reset_num_timesteps=False)
    # boundary at 640 skipped (no rollout seen yet for the guard), then 704 ... 1088: 7 more
    assert opt.counters["snapshots"] == before["snapshots"] + 7 + 1  # + the jump's restart
    assert opt.counters["jumps_tried"] == before["jumps_tried"] + 1
    assert opt.steps == saved["tipl"]["steps"] + 8 * 2


def test_resume_is_bit_identical_to_continuing_in_memory(tmp_path: Path) -> None:
    """SB3 saves neither the env's state nor the random generators: both sides are reseeded
    the same way, so only what the zip holds (weights, moments, TIPL state) can differ."""
    model, callback = trained_ppo(640, guard=False, config=EVERY_BOUNDARY)  # a kept window
    model.save(tmp_path / "agent.zip")
    loaded, resumed = tipl_sb3.load(PPO, tmp_path / "agent.zip", env=ppo().get_env(),
                                    predictor="linear", guard=False, device="cpu")
    for agent, cb in ((model, callback), (loaded, resumed)):
        agent.set_random_seed(7)  # Python, NumPy, torch, the action space and the env
        agent._last_obs = None  # learn() resets the env
        agent.learn(640, callback=cb, reset_num_timesteps=False)
    assert torch.equal(flat(loaded.policy.parameters()), flat(model.policy.parameters()))
    assert resumed.counters() == callback.counters()
    assert resumed.counters()["policy"]["jumps_tried"] == 7  # at 448, then every 128 steps


def test_plain_sb3_loads_an_agent_saved_with_tipl(tmp_path: Path) -> None:
    model, callback = trained_ppo(320)
    model.save(tmp_path / "agent.zip")
    plain = PPO.load(tmp_path / "agent.zip", device="cpu")
    assert type(plain.policy.optimizer) is torch.optim.Adam  # "tipl" entry ignored
    base = callback.optimizers["policy"].base
    for index, moments in base.state_dict()["state"].items():
        assert torch.equal(plain.policy.optimizer.state_dict()["state"][index]["exp_avg"],
                           moments["exp_avg"])
    plain.save(tmp_path / "plain.zip")
    with pytest.raises(ConfigError, match="holds no TIPL state"):
        attach(plain, "linear", resume=tmp_path / "plain.zip")


# -- the adapter --------------------------------------------------------------------------------
def test_collect_with_a_tipl_setup_reports_the_counters() -> None:
    spec = TrainSpec(algo="ppo", env_id="CartPole-v1", seed=0, total_steps=1024, every=300,
                     hidden_sizes=(16,), eval_episodes=1, hyperparams=dict(PPO_HP))
    env_steps: list[int] = []
    hyperparameters = SB3Adapter().collect(
        spec, lambda s: env_steps.append(s.env_steps), lambda n: None,
        tipl=TIPLSetup(predictor="linear", jump={"horizon": 2, **FRESH_WINDOWS},
                       value_limit=0.3))
    assert env_steps == [0, 320, 640, 960, 1024]  # the cadence of a plain collection
    tipl = hyperparameters["tipl"]
    assert tipl["predictor"] == "linear" and tipl["jump"]["horizon"] == 2
    assert tipl["jump"]["mode"] == "manual" and tipl["parts"] == ["policy"]
    assert tipl["counters"]["policy"]["jumps_tried"] == 2  # at 448 and 896
    assert hyperparameters["optimizer"] == {"policy": "Adam"}
    assert tipl["guard"]["policy"]["limits"] == {"kl": 0.02, "value_change": 0.3,
                                                 "entropy_drop": 0.02, "value_grad": 2.0}


def test_the_watchdog_holds_jumps_at_the_solved_level_of_the_models_env() -> None:
    assert env_id_of(ppo()) == "CartPole-v1"
    callback = attach(ppo(), "linear")
    assert callback.attachment.summary()["solved_return"] == 475.0
    sac = make(SAC, "Pendulum-v1", **OFF_HP)
    assert attach(sac, "linear").attachment.summary()["solved_return"] == -200.0
    quiet = attach(ppo(), "linear", {"solved_return": None})
    assert quiet.attachment.summary()["solved_return"] is None


def test_collect_refuses_an_invalid_tipl_setup() -> None:
    spec = TrainSpec(algo="a2c", env_id="CartPole-v1", seed=0, total_steps=100, every=50)
    with pytest.raises(ConfigError, match="rollout boundaries"):
        SB3Adapter().collect(spec, lambda s: None, lambda n: None,
                             tipl=TIPLSetup(predictor="linear", jump={"mode": "auto"}))


# -- the example --------------------------------------------------------------------------------
def test_the_sb3_ppo_example_runs() -> None:
    result = subprocess.run([sys.executable, str(REPO / "examples" / "sb3_ppo.py"),
                             "--steps", "3000"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "jumps" in result.stdout and "return" in result.stdout


# -- the PPO score for the search rule ----------------------------------------------------------
def test_the_ppo_guard_scores_weights_by_the_surrogate_on_the_newest_rollout() -> None:
    from tipl_opt.acceptance import ScoredGuard

    model = ppo()
    callback = attach(model, "linear", {"rule": "search", **FRESH_WINDOWS})
    guard = callback.optimizers["policy"].guard
    assert isinstance(guard, ScoredGuard)
    assert guard.name == "kl+value_change+entropy_drop+value_grad"
    assert guard.score() == -math.inf  # no rollout seen yet: nothing says a length is good
    scores: list[float] = []

    class ScoreAtRolloutEnd(BaseCallback):
        def _on_rollout_end(self) -> None:  # the weights that collected this rollout
            scores.append(guard.score())

        def _on_step(self) -> bool:
            return True

    model.learn(640, callback=CallbackList([callback, ScoreAtRolloutEnd()]))
    # ratio 1 everywhere, advantages normalised: the surrogate of the collecting weights is 0
    assert len(scores) == 10 and all(abs(s) < 1e-5 for s in scores)
    after_update = guard.score()  # PPO just maximised (a clipped form of) it on this rollout
    assert math.isfinite(after_update) and after_update > 0
    counters = callback.counters()["policy"]
    assert counters["jumps_tried"] == 1
