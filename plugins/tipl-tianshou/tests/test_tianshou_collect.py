"""The Tianshou adapter trains for real (tiny budgets) and records what the contract promises."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch

from tipl_opt.adapters import SnapshotClock, TrainSpec
from tipl_opt.adapters.conformance import AdapterConformance
from tipl_opt.errors import ConfigError, IncompatibleEnvError
from tipl_opt.paths import LearningPath, PathWriter, Snapshot, flatten
from tipl_tianshou.adapter import TianshouAdapter
from tipl_tianshou.algorithms import plan_budget, resolve
from tipl_tianshou.build import build_agent, optimized_parameters

torch.set_num_threads(1)

TOTAL, EVERY = 1500, 500


@dataclass
class Run:
    spec: TrainSpec
    snapshots: list[Snapshot]
    progress: list[int]
    hyperparams: dict[str, Any]


def _spec(algo: str, env_id: str, *, seed: int = 0, eval_episodes: int = 1,
          total: int = TOTAL, **hyperparams: Any) -> TrainSpec:
    return TrainSpec(algo=algo, env_id=env_id, seed=seed, total_steps=total, every=EVERY,
                     hidden_sizes=(16,), eval_episodes=eval_episodes, hyperparams=hyperparams)


def _collect(spec: TrainSpec) -> Run:
    snapshots: list[Snapshot] = []
    progress: list[int] = []

    def keep(snapshot: Snapshot) -> None:  # the sink copies, as the contract asks
        snapshots.append(Snapshot(
            params=[type(p)(p.name, p.role, p.tensor.clone()) for p in snapshot.params],
            env_steps=snapshot.env_steps, grad_steps=snapshot.grad_steps,
            return_mean=snapshot.return_mean, return_std=snapshot.return_std,
            eval_steps=snapshot.eval_steps))

    hyperparams = TianshouAdapter().collect(spec, keep, progress.append)
    return Run(spec, snapshots, progress, hyperparams)


CASES = {
    "ppo-CartPole": _spec("ppo", "CartPole-v1", collection_step_num_env_steps=250),
    "ppo-Pendulum": _spec("ppo", "Pendulum-v1", collection_step_num_env_steps=250),
    "dqn-CartPole": _spec("dqn", "CartPole-v1"),
    "sac-Pendulum": _spec("sac", "Pendulum-v1", update_step_num_gradient_steps_per_sample=0.3),
}
ROLES = {"ppo": {"actor", "critic"}, "dqn": {"q"}, "sac": {"actor", "critic"}}

_runs: dict[str, Run] = {}


@pytest.fixture(params=list(CASES), scope="module")
def run(request: pytest.FixtureRequest) -> Run:
    if request.param not in _runs:
        _runs[request.param] = _collect(CASES[request.param])
    return _runs[request.param]


def _expected_env_steps(run: Run) -> list[int]:
    """Replays the schedule: training_fn before each collect step, then the final weights."""
    hp = run.hyperparams
    clock = SnapshotClock(run.spec.every)
    expected = [0]
    step = hp["warmup_steps"]
    while step < hp["env_steps"]:
        if clock.due(step):
            expected.append(step)
        step += hp["collection_step_num_env_steps"]
    if expected[-1] != hp["env_steps"]:
        expected.append(hp["env_steps"])
    return expected


def _fresh_agent(spec: TrainSpec) -> Any:
    torch.manual_seed(spec.seed)
    env = gym.make(spec.env_id)
    try:
        return build_agent(spec.algo, env, resolve(spec.algo, spec.hyperparams),
                           spec.hidden_sizes, spec.activation)
    finally:
        env.close()


# -- collection -----------------------------------------------------------------------------

@pytest.mark.slow
def test_snapshots_follow_the_cadence_from_zero_to_the_budget(run: Run) -> None:
    steps = [s.env_steps for s in run.snapshots]
    assert steps == _expected_env_steps(run)
    assert len(steps) >= 4
    assert steps[0] == 0
    assert all(b > a for a, b in pairwise(steps))
    collect = run.hyperparams["collection_step_num_env_steps"]
    assert abs(steps[-1] - run.spec.total_steps) <= collect // 2 + 1
    assert steps[-1] == run.hyperparams["env_steps"]
    assert run.progress[-1] == steps[-1]
    assert run.progress == sorted(run.progress)


@pytest.mark.slow
def test_training_steps_the_optimizer_and_moves_the_weights(run: Run) -> None:
    grads = [s.grad_steps for s in run.snapshots]
    assert grads[0] == 0 and grads[-1] > 0
    assert grads == sorted(grads)
    assert grads[-1] == run.hyperparams["grad_steps"]
    first, last = flatten(run.snapshots[0].params), flatten(run.snapshots[-1].params)
    assert not torch.equal(first, last)


@pytest.mark.slow
def test_params_are_exactly_what_the_optimizers_own(run: Run) -> None:
    agent = _fresh_agent(run.spec)
    owned = [p for _, opt in agent.optimizers for g in opt.param_groups for p in g["params"]]
    params = run.snapshots[0].params
    assert len(params) == len(owned)
    assert sum(p.tensor.numel() for p in params) == sum(p.numel() for p in owned)
    assert [(p.name, tuple(p.tensor.shape)) for p in params] == [
        (p.name, tuple(p.tensor.shape)) for p in optimized_parameters(agent)]
    # the initial snapshot is the freshly initialised network of the same seed
    assert torch.equal(flatten(params), flatten(optimized_parameters(agent)))  # type: ignore[arg-type]


@pytest.mark.slow
def test_target_networks_are_never_recorded(run: Run) -> None:
    agent = _fresh_agent(run.spec)
    names = {p.name for p in run.snapshots[-1].params}
    all_names = {n for n, _ in agent.algorithm.named_parameters()}
    targets = {n for n in all_names if "_old." in n}
    if run.spec.algo in ("dqn", "sac"):
        assert targets, "the algorithm should keep target networks"
    assert not names & targets
    if run.spec.algo == "ppo":
        assert names == all_names


@pytest.mark.slow
def test_roles_tag_actor_critic_and_q(run: Run) -> None:
    params = run.snapshots[0].params
    assert {p.role for p in params} == ROLES[run.spec.algo]
    for p in params:
        if p.role == "actor":
            assert p.name.startswith("policy.actor.")
        elif p.role == "critic":
            assert p.name.startswith(("critic.", "critic2."))
        else:
            assert p.name.startswith("policy.model.")
    if run.spec.algo == "sac":
        roots = [p.name.split(".")[0] for p in params]
        assert roots.index("critic") < roots.index("critic2")  # actor, critic 1, critic 2
        assert params[0].role == "actor"


@pytest.mark.slow
def test_eval_returns_are_finite_and_counted_apart(run: Run) -> None:
    assert all(math.isfinite(s.return_mean) and math.isfinite(s.return_std)
               for s in run.snapshots)
    evals = [s.eval_steps for s in run.snapshots]
    assert evals[0] > 0 and all(b > a for a, b in pairwise(evals))
    if run.spec.env_id == "Pendulum-v1":  # fixed 200-step episodes
        assert evals == [200 * (i + 1) for i in range(len(evals))]


@pytest.mark.slow
def test_learning_path_round_trip(run: Run, tmp_path: Path) -> None:
    writer = PathWriter(tmp_path / "x.safetensors",
                        meta={"library": "tianshou", "algorithm": run.spec.algo,
                              "env_id": run.spec.env_id, "seed": run.spec.seed})
    for snapshot in run.snapshots:
        writer.add(snapshot)
    path = LearningPath(writer.finish(hyperparameters=run.hyperparams))
    assert path.num_snapshots == len(run.snapshots)
    assert path.num_params == sum(p.tensor.numel() for p in run.snapshots[0].params)
    assert [s.name for s in path.specs] == [p.name for p in run.snapshots[0].params]
    assert [s.role for s in path.specs] == [p.role for p in run.snapshots[0].params]
    assert list(path.env_steps) == [s.env_steps for s in run.snapshots]
    np.testing.assert_array_equal(path.weights[-1], flatten(run.snapshots[-1].params).numpy())


@pytest.mark.slow
def test_evaluate_weights_reproduces_the_recorded_return(run: Run) -> None:
    final = run.snapshots[-1]
    spec = run.spec.model_copy(update={"hyperparams": {}})  # as `tipl infer` rebuilds it
    named = {p.name: p.tensor for p in final.params}
    mean, std = TianshouAdapter().evaluate_weights(spec, named, episodes=1)
    assert (mean, std) == pytest.approx((final.return_mean, final.return_std))


@pytest.mark.slow
def test_no_eval_episodes_gives_nan_returns_and_leaves_training_alone() -> None:
    spec = CASES["ppo-CartPole"]
    quiet = _collect(spec.model_copy(update={"eval_episodes": 0}))
    assert all(math.isnan(s.return_mean) and s.eval_steps == 0 for s in quiet.snapshots)
    reference = _runs.get("ppo-CartPole") or _collect(spec)
    assert torch.equal(flatten(quiet.snapshots[-1].params), flatten(reference.snapshots[-1].params))


# -- building blocks -------------------------------------------------------------------------

def test_discrete_actor_feeds_probabilities_to_categorical() -> None:
    agent = _fresh_agent(_spec("ppo", "CartPole-v1"))
    obs = torch.randn(5, 4)
    probs, _ = agent.policy.actor(obs)
    assert torch.allclose(probs.sum(-1), torch.ones(5))
    dist = agent.policy.dist_fn(probs)
    assert torch.allclose(dist.probs, probs)  # not softmax(probs): no double softmax


def test_evaluation_restores_the_policy_mode_and_maps_box_actions() -> None:
    from tipl_tianshou.collect import inference_mode, policy_act

    agent = _fresh_agent(_spec("sac", "Pendulum-v1"))
    agent.policy.train(True)
    agent.policy.is_within_training_step = True
    act = policy_act(agent)
    obs = np.array([1.0, 0.0, 0.5], dtype=np.float32)
    with inference_mode(agent):
        a1, a2 = act(obs), act(obs)
    assert agent.policy.training and agent.policy.is_within_training_step
    np.testing.assert_array_equal(a1, a2)  # deterministic
    assert a1.shape == (1,) and -2.0 <= float(a1[0]) <= 2.0  # scaled to Pendulum's [-2, 2]


def test_budget_lands_near_total_steps() -> None:
    ppo = resolve("ppo", {"collection_step_num_env_steps": 300})
    budget = plan_budget("ppo", ppo, 1000)
    assert (budget.collect, budget.max_epochs, budget.planned_env_steps) == (300, 1, 900)
    assert plan_budget("ppo", resolve("ppo", {}), 1000).planned_env_steps == 1000  # capped
    epochs = plan_budget("ppo", resolve("ppo", {"collection_step_num_env_steps": 100,
                                                "epoch_num_steps": 250}), 2000)
    assert (epochs.epoch_num_steps, epochs.max_epochs) == (300, 7)
    dqn = plan_budget("dqn", resolve("dqn", {}), 1500)
    assert (dqn.warmup, dqn.planned_env_steps) == (64, 1504)
    with pytest.raises(ConfigError, match="no gradient step"):
        plan_budget("dqn", resolve("dqn", {"update_step_num_gradient_steps_per_sample": 0.01}),
                    1500)


# -- check -----------------------------------------------------------------------------------

def test_check_rejects_sac_on_a_discrete_env() -> None:
    with pytest.raises(IncompatibleEnvError, match="Box"):
        TianshouAdapter().check(_spec("sac", "CartPole-v1"))


def test_check_names_a_misspelled_hyperparameter_and_suggests_the_key() -> None:
    with pytest.raises(ConfigError, match=r"'lrr'.*'lr'"):
        TianshouAdapter().check(_spec("ppo", "CartPole-v1", lrr=1e-3))
    with pytest.raises(ConfigError, match=r"'learning_rate'.*'lr'"):
        TianshouAdapter().check(_spec("dqn", "CartPole-v1", learning_rate=1e-3))
    with pytest.raises(ConfigError, match="buffer_size"):  # PPO keeps no replay buffer
        TianshouAdapter().check(_spec("ppo", "CartPole-v1", buffer_size=100))


def test_check_rejects_bad_values_and_unknown_envs() -> None:
    with pytest.raises(ConfigError, match="batch_size.*integer"):
        TianshouAdapter().check(_spec("ppo", "CartPole-v1", batch_size=3.5))
    with pytest.raises(ConfigError, match="lr.*>= 0"):
        TianshouAdapter().check(_spec("sac", "Pendulum-v1", lr=-1.0))
    with pytest.raises(ConfigError, match="true or false"):
        TianshouAdapter().check(_spec("sac", "Pendulum-v1", auto_alpha="yes"))
    with pytest.raises(ConfigError, match="Unknown env id"):
        TianshouAdapter().check(_spec("ppo", "NoSuchEnv-v0"))


# -- the adapter contract, shared by every adapter plugin --------------------------------------
class TestTianshouConformance(AdapterConformance):
    adapter_name = "tianshou"
    library_module = "tianshou"
    cases: ClassVar[dict[str, TrainSpec]] = {"ppo": CASES["ppo-CartPole"],
                                             "sac": CASES["sac-Pendulum"]}
    discrete_only = "dqn"
