"""TIPLOptimizer inside Tianshou agents: the factory, where jumps happen, guards, state, example."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import pytest
import torch
from tianshou.algorithm.optim import (
    AdamOptimizerFactory,
    LRSchedulerFactoryLinear,
    RMSpropOptimizerFactory,
    TorchOptimizerFactory,
)
from torch import nn

from tipl_opt.adapters import TrainSpec
from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.collect.runner import RunTask, run_one
from tipl_opt.errors import ConfigError
from tipl_opt.hookspecs import hookimpl
from tipl_opt.jumps import JumpReport
from tipl_opt.optimizer import TIPLOptimizer
from tipl_opt.paths import LearningPath, Snapshot, flatten
from tipl_opt.plugins import get_plugin_manager
from tipl_tianshou.adapter import TianshouAdapter
from tipl_tianshou.algorithms import resolve
from tipl_tianshou.attachment import TIPLAttachment, rollout_size
from tipl_tianshou.build import Agent, build_agent, optimized_parameters
from tipl_tianshou.collect import run_collection
from tipl_tianshou.optim import TIPLOptimizerFactory

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[3]
PPO_SPEC = TrainSpec(algo="ppo", env_id="CartPole-v1", seed=0, total_steps=3000, every=100,
                     hidden_sizes=(16,), eval_episodes=0,
                     hyperparams={"collection_step_num_env_steps": 100})
"""30 rollouts of 100 steps, a snapshot at every rollout boundary (:data:`EVERY_BOUNDARY`; by
default rollouts this short snapshot every third boundary): with 'linear' a jump at the 8th
snapshot and every 2 boundaries after it."""
EVERY_BOUNDARY = {"snapshot_every": 1}


class JumpRecorder:
    """Plugin that keeps every jump report while registered."""

    def __init__(self) -> None:
        self.reports: list[JumpReport] = []

    @hookimpl
    def tipl_on_jump(self, report: JumpReport) -> None:
        self.reports.append(report)


def _collect(spec: TrainSpec, tipl: TIPLSetup | None) -> tuple[list[Snapshot], dict[str, Any],
                                                                list[JumpReport]]:
    snapshots: list[Snapshot] = []

    def keep(snapshot: Snapshot) -> None:
        snapshots.append(Snapshot(
            params=[type(p)(p.name, p.role, p.tensor.clone()) for p in snapshot.params],
            env_steps=snapshot.env_steps, grad_steps=snapshot.grad_steps,
            return_mean=snapshot.return_mean, return_std=snapshot.return_std,
            eval_steps=snapshot.eval_steps))

    recorder = JumpRecorder()
    pm = get_plugin_manager()
    pm.register(recorder)
    try:
        hyperparams = run_collection(spec, keep, lambda steps: None, tipl=tipl)
    finally:
        pm.unregister(recorder)
    return snapshots, hyperparams, recorder.reports


_runs: dict[str, tuple[list[Snapshot], dict[str, Any], list[JumpReport]]] = {}


def _cached(key: str, spec: TrainSpec, tipl: TIPLSetup | None) -> tuple[
        list[Snapshot], dict[str, Any], list[JumpReport]]:
    if key not in _runs:
        _runs[key] = _collect(spec, tipl)
    return _runs[key]


def _agent(algo: str, env_id: str, tipl: TIPLSetup, seed: int = 0) -> tuple[Agent,
                                                                            TIPLAttachment]:
    attachment = TIPLAttachment(algo, tipl)
    torch.manual_seed(seed)
    env = gym.make(env_id)
    try:
        agent = build_agent(algo, env, resolve(algo, {}), (16,), "tanh", attachment.wrappers())
    finally:
        env.close()
    return agent, attachment


# -- the factory ----------------------------------------------------------------------------

def test_factory_wraps_the_base_and_keeps_its_lr_scheduler() -> None:
    base = AdamOptimizerFactory(lr=0.1).with_lr_scheduler_factory(LRSchedulerFactoryLinear(
        max_epochs=1, epoch_num_steps=10, collection_step_num_env_steps=1))
    factory = TIPLOptimizerFactory(base, "linear")
    assert factory.lr_scheduler_factory is base.lr_scheduler_factory
    net = nn.Linear(3, 2)
    optimizer, scheduler = factory.create_instances(net)
    assert isinstance(optimizer, TIPLOptimizer) and isinstance(optimizer.base, torch.optim.Adam)
    assert factory.optimizers == [optimizer]
    assert base.lr_scheduler_factory is not None  # the wrapped factory is left as it was
    assert scheduler is not None and scheduler.optimizer is optimizer
    assert [s.name for s in optimizer.specs] == ["weight", "bias"]
    for _ in range(3):
        net(torch.ones(1, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
    assert optimizer.base.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - 3 / 10))
    assert optimizer.steps == 3


@pytest.mark.parametrize("base", [
    RMSpropOptimizerFactory(lr=0.01),
    TorchOptimizerFactory(torch.optim.SGD, lr=0.5, momentum=0.9),
])
def test_factory_wraps_any_optimizer_factory(base: Any) -> None:
    factory = TIPLOptimizerFactory(base, "linear", config={"snapshot_every": 2})
    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    optimizer, scheduler = factory.create_instances(net)
    assert scheduler is None
    assert isinstance(optimizer, TIPLOptimizer)
    assert type(optimizer.base) is type(base.create_instances(net)[0])
    assert optimizer.config.schedule.snapshot_every == 2
    assert [s.name for s in optimizer.specs] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_factory_refuses_what_it_cannot_wrap() -> None:
    factory = TIPLOptimizerFactory(AdamOptimizerFactory(), "linear")
    with pytest.raises(ConfigError, match="already a TIPLOptimizerFactory"):
        TIPLOptimizerFactory(factory)
    with pytest.raises(ConfigError, match="OptimizerFactory"):
        TIPLOptimizerFactory(cast(Any, torch.optim.Adam))
    with pytest.raises(ConfigError, match="Invalid TIPL jump config"):
        TIPLOptimizerFactory(AdamOptimizerFactory(), config={"snapshot_every": 0})


def test_factory_loads_the_predictor_once_and_shares_it() -> None:
    factory = TIPLOptimizerFactory(AdamOptimizerFactory(), "default")
    first, _ = factory.create_instances(nn.Linear(2, 2))
    second, _ = factory.create_instances(nn.Linear(3, 1))
    assert isinstance(first, TIPLOptimizer) and isinstance(second, TIPLOptimizer)
    assert first.predictor is second.predictor is factory.predictor
    assert factory.counters() == [first.counters, second.counters]


# -- inside the algorithms ------------------------------------------------------------------

@pytest.mark.parametrize(("algo", "env_id"), [("ppo", "CartPole-v1"), ("dqn", "CartPole-v1"),
                                              ("sac", "Pendulum-v1")])
def test_the_algorithm_steps_a_tipl_optimizer_named_like_the_snapshots(algo: str,
                                                                       env_id: str) -> None:
    agent, attachment = _agent(algo, env_id, TIPLSetup(predictor="linear"))
    optimizers = attachment.optimizers
    assert list(optimizers) == [label for label, _ in agent.optimizers]
    snapshot_specs = {p.name: p.role for p in optimized_parameters(agent)}
    for label, raw in agent.optimizers:
        assert raw is optimizers[label]
        assert isinstance(raw.base, torch.optim.Adam)
        assert {s.name: s.role for s in raw.specs}.items() <= snapshot_specs.items()
    named = [s.name for opt in optimizers.values() for s in opt.specs]
    assert named == list(snapshot_specs)  # every snapshotted tensor, in snapshot order
    assert agent.description["optimizers"] == dict.fromkeys(optimizers, "TIPLOptimizer")


def test_sac_targets_choose_which_optimizers_get_tipl() -> None:
    agent, attachment = _agent("sac", "Pendulum-v1",
                               TIPLSetup(predictor="linear", targets="critic"))
    kinds = {label: type(opt).__name__ for label, opt in agent.optimizers}
    assert kinds == {"actor": "Adam", "critic1": "TIPLOptimizer", "critic2": "TIPLOptimizer"}
    assert list(attachment.optimizers) == ["critic1", "critic2"]
    assert TIPLAttachment("sac", TIPLSetup(targets="actor")).parts == ("actor",)


def test_bad_setups_fail_before_training() -> None:
    with pytest.raises(ConfigError, match="rollout boundaries"):
        TIPLAttachment("ppo", TIPLSetup(predictor="linear", jump={"mode": "auto"}))
    with pytest.raises(ConfigError, match="targets must be 'both'"):
        TIPLAttachment("dqn", TIPLSetup(predictor="linear", targets="actor"))
    with pytest.raises(ConfigError, match="Invalid TIPL jump config"):
        TIPLAttachment("sac", TIPLSetup(predictor="linear", jump={"snapshot_every": 0}))
    with pytest.raises(ConfigError, match="not both"):
        run_collection(PPO_SPEC, lambda s: None, lambda n: None,
                       wrap_optim=lambda f: f, tipl=TIPLSetup(predictor="linear"))


# -- where jumps happen ---------------------------------------------------------------------

def test_short_ppo_collects_snapshot_every_256_env_steps_by_default() -> None:
    settings = resolve("ppo", {"collection_step_num_env_steps": 100})
    rollout = rollout_size("ppo", settings, 100)
    assert rollout == (100, settings["update_step_num_repetitions"] * 2)  # 2 batches of 64
    attachment = TIPLAttachment("ppo", TIPLSetup(predictor="linear"), rollout)
    assert attachment.config.schedule.snapshot_every == 2 * rollout[1] + 1  # every 3rd
    assert TIPLAttachment("ppo", TIPLSetup(), (512, 80)).config.schedule.snapshot_every == 1
    assert rollout_size("sac", resolve("sac", {}), 10) is None


@pytest.mark.slow
def test_ppo_jumps_only_at_rollout_boundaries() -> None:
    jump = {**EVERY_BOUNDARY, "watchdog": False}  # no hold: the cadence alone decides
    snapshots, hyperparams, reports = _cached("ppo-tipl", PPO_SPEC,
                                              TIPLSetup(predictor="linear", jump=jump))
    summary = hyperparams["tipl"]
    counters = summary["counters"]["actor_critic"]
    assert summary["predictor"] == "linear" and summary["jump"]["mode"] == "manual"
    assert summary["guard"] == {"actor_critic": {
        "kind": "kl+value_change+entropy_drop+value_grad", "limit": 0.02,
        "limits": {"kl": 0.02, "value_change": 0.1, "entropy_drop": 0.02, "value_grad": 2.0}}}
    assert counters["jumps_tried"] >= 3 and counters["jumps_tried"] == len(reports)
    assert counters["jumps_accepted"] >= 1
    # every rollout boundary is a snapshot here: a jump's step must be one of theirs
    boundaries = {s.grad_steps for s in snapshots}
    rollouts = hyperparams["env_steps"] // hyperparams["collection_step_num_env_steps"]
    assert len(boundaries) == rollouts + 1  # each boundary, and the end
    per_rollout = hyperparams["grad_steps"] // rollouts
    assert per_rollout * rollouts == hyperparams["grad_steps"]
    for report in reports:
        assert report.step in boundaries and report.step % per_rollout == 0
        assert math.isfinite(report.guard)  # measured on the last rollout's observations
    # one snapshot per boundary: 8 fill the first window (the start and 7 boundaries), which PPO
    # keeps (moved by each jump, not restarted from a new snapshot); a jump every 2 after it
    assert counters["snapshots"] == rollouts
    assert [r.step // per_rollout for r in reports] == list(range(7, rollouts, 2))


@pytest.mark.slow
def test_a_guard_that_rejects_everything_leaves_the_base_trajectory() -> None:
    base, _, _ = _cached("ppo-base", PPO_SPEC, None)
    tipl, hyperparams, reports = _cached(
        "ppo-reject", PPO_SPEC, TIPLSetup(predictor="linear", guard_limit=0.0,
                                          jump=EVERY_BOUNDARY))
    counters = hyperparams["tipl"]["counters"]["actor_critic"]
    assert counters["jumps_tried"] >= 3 and counters["jumps_rejected"] == counters["jumps_tried"]
    assert all(not r.accepted and r.fraction == 0.0 for r in reports)
    assert all(math.isfinite(r.guard) and r.guard > 0 for r in reports)  # a real KL, not NaN
    # bit-identical to Adam alone at every rollout boundary, jumps included, and at the end
    assert [s.grad_steps for s in tipl] == [s.grad_steps for s in base]
    for ours, theirs in zip(tipl, base, strict=True):
        assert torch.equal(flatten(ours.params), flatten(theirs.params))


@pytest.mark.slow
def test_dqn_jumps_inside_its_updates_and_the_runner_counts_them(tmp_path: Path) -> None:
    spec = TrainSpec(algo="dqn", env_id="CartPole-v1", seed=0, total_steps=3000, every=1000,
                     hidden_sizes=(16,), eval_episodes=1)
    task = RunTask("dqn-tipl", "tianshou", spec, tmp_path / "dqn-tipl.safetensors", "float32",
                   tipl=TIPLSetup(predictor="linear", jump={"snapshot_every": 5}))
    events: list[Any] = []
    result = run_one(task, events.append)
    counters = result.hyperparameters["tipl"]["counters"]["q"]
    assert result.hyperparameters["tipl"]["jump"]["mode"] == "auto"
    assert counters["jumps_tried"] >= 3
    assert result.jumps == {k: v for k, v in counters.items() if k != "snapshots"}
    assert sum(e.kind == "jump" for e in events) == counters["jumps_tried"]
    # the path written with TIPL loads back into a plain agent by name
    path = LearningPath(result.path)
    final = path.snapshot(-1)
    mean, std = TianshouAdapter().evaluate_weights(spec.model_copy(update={"hyperparams": {}}),
                                                   final, episodes=1)
    assert (mean, std) == pytest.approx((path.return_mean[-1], path.return_std[-1]))


@pytest.mark.slow
def test_sac_jumps_with_every_optimizer_guarded() -> None:
    spec = TrainSpec(algo="sac", env_id="Pendulum-v1", seed=0, total_steps=1500, every=500,
                     hidden_sizes=(16,), eval_episodes=0,
                     hyperparams={"update_step_num_gradient_steps_per_sample": 0.3})
    _, hyperparams, reports = _collect(spec, TIPLSetup(predictor="linear",
                                                       jump={"snapshot_every": 10}))
    summary = hyperparams["tipl"]
    assert {part: (g["kind"], g["limit"]) for part, g in summary["guard"].items()} == {
        "actor": ("action_distance", 0.1), "critic1": ("q_change", 0.1),
        "critic2": ("q_change", 0.1)}
    assert summary["solved_return"] == -200.0  # the env's solved level reached the watchdog
    for part in ("actor", "critic1", "critic2"):
        assert summary["counters"][part]["jumps_tried"] >= 1
    assert len(reports) == sum(c["jumps_tried"] for c in summary["counters"].values())
    assert all(math.isfinite(r.guard) for r in reports)


# -- state ----------------------------------------------------------------------------------

def _weights(agent: Agent) -> torch.Tensor:
    return torch.cat([p.tensor.detach().reshape(-1) for p in optimized_parameters(agent)])


def _dqn_steps(agent: Agent, n: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    model: Any = agent.policy.model
    optim: Any = agent.algorithm.optim
    for _ in range(n):
        obs = torch.randn(16, 4, generator=generator)
        loss = (model(obs)[0] - 1.0).pow(2).mean()
        optim.step(loss)  # Tianshou's Algorithm.Optimizer: zero_grad, backward, step


def test_algorithm_state_dict_round_trips_the_tipl_state() -> None:
    setup = TIPLSetup(predictor="linear", guard=False, jump={"snapshot_every": 2})
    agent, attachment = _agent("dqn", "CartPole-v1", setup)
    _dqn_steps(agent, 25, seed=1)
    tipl = attachment.optimizers["q"]
    assert tipl.counters["jumps_tried"] >= 1
    state = agent.algorithm.state_dict()
    assert "tipl" in state["_optimizers"][0]  # Tianshou stores optimizer.state_dict() there
    weights = _weights(agent).clone()
    buffer = io.BytesIO()
    torch.save(state, buffer)

    def saved() -> dict[str, Any]:  # load_state_dict pops "_optimizers": a fresh copy each
        buffer.seek(0)
        loaded: dict[str, Any] = torch.load(buffer, weights_only=True)
        return loaded

    other, other_attachment = _agent("dqn", "CartPole-v1", setup, seed=123)
    other.algorithm.load_state_dict(saved())
    restored = other_attachment.optimizers["q"]
    assert restored.counters == tipl.counters and restored.steps == tipl.steps == 25
    assert torch.equal(restored.history.window()[0], tipl.history.window()[0])
    assert restored.base.state is restored.state
    assert restored.base.param_groups is restored.param_groups
    # both continue identically: weights, moments, history and jumps came back
    _dqn_steps(agent, 20, seed=2)
    _dqn_steps(other, 20, seed=2)
    assert restored.counters == tipl.counters
    for a, b in zip(optimized_parameters(agent), optimized_parameters(other), strict=True):
        assert torch.equal(a.tensor, b.tensor)

    env = gym.make("CartPole-v1")
    plain = build_agent("dqn", env, resolve("dqn", {}), (16,), "tanh")
    env.close()
    plain.algorithm.load_state_dict(saved())  # a plain agent ignores the TIPL entry
    assert torch.equal(_weights(plain), weights)


# -- the example ----------------------------------------------------------------------------

@pytest.mark.slow
def test_example_script_runs() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "tianshou_ppo.py"),
                             "--steps", "3000"], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "final eval return" in result.stdout and "jumps_tried" in result.stdout


# -- the value-fit check --------------------------------------------------------------------

def test_rollout_returns_keep_the_newest_value_targets_of_each_update() -> None:
    from tianshou.data import Batch

    from tipl_tianshou.guards import RolloutReturns

    class Algorithm:
        def _add_returns_and_advantages(self, batch: Any, scale: float = 1.0) -> Any:
            batch.returns = torch.arange(len(batch.obs), dtype=torch.float64) * scale
            return batch

    algorithm, returns = Algorithm(), RolloutReturns(size=4)
    assert returns.read()[0].numel() == 0  # before the first update: nothing to check on
    returns.install(algorithm)
    obs = np.arange(20, dtype=np.float64).reshape(10, 2)
    out = algorithm._add_returns_and_advantages(Batch(obs=obs), scale=2.0)
    assert torch.equal(out.returns, torch.arange(10, dtype=torch.float64) * 2)  # passed on
    got_obs, got_returns = returns.read()
    assert got_obs.dtype == torch.float32 and torch.equal(got_obs, torch.tensor(obs[-4:]).float())
    assert torch.equal(got_returns, torch.tensor([12.0, 14.0, 16.0, 18.0]))


@pytest.mark.slow
def test_ppo_checks_the_value_fit_on_the_newest_returns_when_asked() -> None:
    _, hyperparams, reports = _collect(PPO_SPEC, TIPLSetup(
        predictor="linear", jump=EVERY_BOUNDARY, value_fit_limit=1.0))
    guard = hyperparams["tipl"]["guard"]["actor_critic"]
    assert guard["limits"]["value_fit"] == 1.0
    counters = hyperparams["tipl"]["counters"]["actor_critic"]
    assert counters["jumps_tried"] >= 3
    assert all(math.isfinite(r.guard) for r in reports)  # measured on real returns, not empty
