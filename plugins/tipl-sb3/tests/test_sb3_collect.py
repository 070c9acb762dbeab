"""Collection with real Stable-Baselines3 training on tiny budgets.

Each case traces by hand where the snapshots land and how many optimizer steps precede them:

* PPO, n_steps=128, every=300: rollout starts at 128, 256, 384 (>= 300: due), 512, 640 (>= 600:
  due), 768, 896 (< 900), then the final weights at 1024. Each rollout is followed by
  n_epochs=2 x (128 / batch_size 64) = 4 optimizer steps.
* A2C, n_steps=32, every=160: due at 160, 320, 480; final at 640; one optimizer step per rollout.
* DQN, train_freq=4, learning_starts=100, every=300: due at 300, 600, 900 (taken inside the
  rollout, before its train()), final at 1000 after the last train(); a gradient step after
  each rollout ending at 104, 108, ...
* SAC/TD3, train_freq=1, learning_starts=100, every=200: due at 200, 400; the check at 600 is
  left to the final snapshot (after the last train()); one critic step after each env step
  past 100.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from tipl_opt.adapters import TrainSpec
from tipl_opt.adapters.conformance import AdapterConformance, Recorded
from tipl_opt.adapters.conformance import record as conformance_record
from tipl_opt.errors import ConfigError, IncompatibleEnvError
from tipl_opt.paths import LearningPath, PathWriter, Snapshot
from tipl_sb3 import SB3Adapter
from tipl_sb3.build import build_model
from tipl_sb3.params import owned_optimizers, tagged_parameters

torch.set_num_threads(1)

OFF_POLICY_HP = {"learning_starts": 100, "batch_size": 32, "buffer_size": 1000}


@dataclass(frozen=True)
class Case:
    env_id: str
    total_steps: int
    every: int
    hyperparams: dict[str, Any]
    env_steps: list[int]
    grad_steps: list[int]


CASES: dict[str, Case] = {
    "ppo": Case("CartPole-v1", 1024, 300, {"n_steps": 128, "batch_size": 64, "n_epochs": 2},
                [0, 384, 640, 1024], [0, 12, 20, 32]),
    "a2c": Case("CartPole-v1", 640, 160, {"n_steps": 32},
                [0, 160, 320, 480, 640], [0, 5, 10, 15, 20]),
    "dqn": Case("CartPole-v1", 1000, 300, dict(OFF_POLICY_HP),
                [0, 300, 600, 900, 1000], [0, 49, 124, 199, 225]),
    "sac": Case("Pendulum-v1", 600, 200, dict(OFF_POLICY_HP),
                [0, 200, 400, 600], [0, 99, 299, 500]),
    "td3": Case("Pendulum-v1", 600, 200, dict(OFF_POLICY_HP),
                [0, 200, 400, 600], [0, 99, 299, 500]),
}


def make_spec(algo: str, seed: int = 0) -> TrainSpec:
    case = CASES[algo]
    return TrainSpec(algo=algo, env_id=case.env_id, seed=seed, total_steps=case.total_steps,
                     every=case.every, hidden_sizes=(16,), eval_episodes=1,
                     hyperparams=case.hyperparams)


def record(spec: TrainSpec) -> Recorded:
    return conformance_record(SB3Adapter(), spec)


@functools.cache
def collected(algo: str) -> Recorded:
    return record(make_spec(algo))


def optimizer_params(algo: str) -> list[torch.Tensor]:
    model = build_model(make_spec(algo))
    return [p for opt in owned_optimizers(model, algo).values()
            for group in opt.param_groups for p in group["params"]]


# -- collection, per algorithm ----------------------------------------------------------------
@pytest.mark.parametrize("algo", list(CASES))
def test_snapshots_land_on_the_traced_cadence(algo: str) -> None:
    rec, case = collected(algo), CASES[algo]
    env_steps = [s.env_steps for s in rec.snapshots]
    assert env_steps == case.env_steps
    assert [s.grad_steps for s in rec.snapshots] == case.grad_steps
    if algo in ("ppo", "a2c"):
        assert all(n % case.hyperparams["n_steps"] == 0 for n in env_steps)


@pytest.mark.parametrize("algo", list(CASES))
def test_weights_change_and_evaluation_is_recorded(algo: str) -> None:
    rec = collected(algo)
    assert not torch.equal(rec.weights[0], rec.weights[-1])
    assert all(math.isfinite(s.return_mean) and math.isfinite(s.return_std)
               for s in rec.snapshots)
    eval_steps = [s.eval_steps for s in rec.snapshots]
    assert eval_steps[0] > 0 and all(b > a for a, b in itertools.pairwise(eval_steps))
    assert rec.progress[-1] == rec.snapshots[-1].env_steps
    gaps = [b - a for a, b in itertools.pairwise([0, *rec.progress])]
    assert min(gaps) >= 0 and max(gaps) <= max(CASES[algo].hyperparams.get("n_steps", 0), 500)


@pytest.mark.parametrize("algo", list(CASES))
def test_snapshot_holds_exactly_the_optimizer_parameters(algo: str) -> None:
    rec = collected(algo)
    expected = optimizer_params(algo)
    for snapshot in rec.snapshots:
        assert [tuple(p.tensor.shape) for p in snapshot.params] == [
            tuple(p.shape) for p in expected]
    assert rec.weights[0].numel() == sum(p.numel() for p in expected)


@pytest.mark.parametrize("algo", list(CASES))
def test_tagged_parameters_are_the_optimizer_tensors_in_order(algo: str) -> None:
    model = build_model(make_spec(algo))
    owned = [p for opt in owned_optimizers(model, algo).values()
             for group in opt.param_groups for p in group["params"]]
    assert [id(p.tensor) for p in tagged_parameters(model, algo)] == [id(p) for p in owned]


def test_dqn_snapshot_excludes_the_target_network() -> None:
    model = build_model(make_spec("dqn"))
    q_numel = sum(p.numel() for p in model.q_net.parameters())
    target_numel = sum(p.numel() for p in model.q_net_target.parameters())
    params = collected("dqn").snapshots[0].params
    assert sum(p.tensor.numel() for p in params) == q_numel != q_numel + target_numel
    assert {p.role for p in params} == {"q"}
    assert all(p.name.startswith("q_net.") for p in params)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_actor_critic_snapshot_is_actor_then_critic_without_targets(algo: str) -> None:
    params = collected(algo).snapshots[0].params
    roles = [p.role for p in params]
    n_actor = roles.count("actor")
    assert n_actor > 0 and roles == ["actor"] * n_actor + ["critic"] * (len(roles) - n_actor)
    assert all(p.name.startswith(f"{p.role}.") for p in params)
    assert not any("target" in p.name or "ent_coef" in p.name for p in params)


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_on_policy_roles_follow_the_network(algo: str) -> None:
    params = collected(algo).snapshots[0].params
    for p in params:
        actor = p.name.startswith(("mlp_extractor.policy_net.", "action_net."))
        assert p.role == ("actor" if actor else "critic"), p.name
    assert {p.role for p in params} == {"actor", "critic"}


def test_continuous_ppo_tags_log_std_as_actor() -> None:
    spec = TrainSpec(algo="ppo", env_id="Pendulum-v1", seed=0, total_steps=64, every=64,
                     hidden_sizes=(8,))
    tagged = {p.name: p.role for p in tagged_parameters(build_model(spec), "ppo")}
    assert tagged["log_std"] == "actor"
    assert tagged["value_net.weight"] == "critic"


# -- hyperparameters ---------------------------------------------------------------------------
def test_reported_hyperparameters_are_read_from_the_model() -> None:
    ppo = collected("ppo").hyperparameters
    json.dumps(ppo)
    assert ppo["n_steps"] == 128 and ppo["batch_size"] == 64 and ppo["clip_range"] == 0.2
    assert ppo["net_arch"] == {"pi": [16], "vf": [16]} and ppo["activation"] == "tanh"
    assert ppo["optimizer"] == {"policy": "Adam"} and ppo["optimizer_kwargs"] == {"eps": 1e-5}
    sac = collected("sac").hyperparameters
    json.dumps(sac)
    assert sac["train_freq"] == [1, "step"] and sac["net_arch"] == [16]
    assert sac["optimizer"] == {"actor": "Adam", "critic": "Adam", "ent_coef": "Adam"}
    assert collected("a2c").hyperparameters["optimizer"] == {"policy": "RMSprop"}


def test_user_policy_kwargs_are_merged_into_a_fresh_dict() -> None:
    user = {"policy_kwargs": {"n_critics": 1}, "learning_starts": 10}
    spec = TrainSpec(algo="sac", env_id="Pendulum-v1", seed=0, total_steps=64, every=64,
                     hidden_sizes=(8,), activation="relu", hyperparams=user)
    model = build_model(spec)
    assert model.critic.n_critics == 1
    assert model.policy.net_arch == [8]
    assert isinstance(model.actor.latent_pi[1], torch.nn.ReLU)
    assert spec.hyperparams["policy_kwargs"] == {"n_critics": 1}


def test_action_noise_spec_builds_the_sb3_noise_in_action_units() -> None:
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    def build(noise: str) -> Any:
        return build_model(TrainSpec(algo="td3", env_id="Pendulum-v1", seed=0, total_steps=64,
                                     every=64, hidden_sizes=(8,),
                                     hyperparams={"action_noise": noise})).action_noise

    normal = build("normal:0.1")
    assert isinstance(normal, NormalActionNoise)
    assert normal._sigma.tolist() == [0.1] and normal._mu.tolist() == [0.0]
    assert isinstance(build("ou:0.3"), OrnsteinUhlenbeckActionNoise)
    for bad, says in [("normal", "must look like"), ("gauss:0.1", "must look like"),
                      ("normal:-1", "positive number"), ("normal:x", "positive number")]:
        with pytest.raises(ConfigError, match=says):
            build(bad)
    with pytest.raises(ConfigError, match="continuous actions"):
        build_model(TrainSpec(algo="dqn", env_id="CartPole-v1", seed=0, total_steps=64, every=64,
                              hidden_sizes=(8,), hyperparams={"action_noise": "normal:0.1"}))


def test_action_noise_is_reported_and_seeded_runs_repeat() -> None:
    spec = TrainSpec(algo="td3", env_id="Pendulum-v1", seed=3, total_steps=300, every=150,
                     hidden_sizes=(8,), eval_episodes=1,
                     hyperparams={**OFF_POLICY_HP, "action_noise": "normal:0.5"})
    first, again = record(spec), record(spec)
    assert "NormalActionNoise" in first.hyperparameters["action_noise"]
    assert all(torch.equal(a, b) for a, b in zip(first.weights, again.weights, strict=True))
    quiet = record(spec.model_copy(update={"hyperparams": dict(OFF_POLICY_HP)}))
    assert not torch.equal(first.weights[-1], quiet.weights[-1])


# -- learning-path file, determinism ----------------------------------------------------------
def test_collection_round_trips_through_a_learning_path(tmp_path: Path) -> None:
    spec = make_spec("a2c")
    writer = PathWriter(tmp_path / "x.safetensors", meta={"library": "sb3", "algorithm": "a2c",
                                                          "env_id": spec.env_id, "seed": 0})
    names: list[str] = []

    def on_snapshot(snapshot: Snapshot) -> None:
        names[:] = [p.name for p in snapshot.params]
        writer.add(snapshot)

    hyperparameters = SB3Adapter().collect(spec, on_snapshot, lambda n: None)
    path = LearningPath(writer.finish(hyperparameters=hyperparameters))
    assert path.num_snapshots == len(CASES["a2c"].env_steps)
    assert path.num_params == sum(p.numel() for p in optimizer_params("a2c"))
    assert [s.name for s in path.specs] == names
    assert path.env_steps.tolist() == CASES["a2c"].env_steps


# -- check, plugin -----------------------------------------------------------------------------
def spec_for(algo: str, env_id: str, **hyperparams: Any) -> TrainSpec:
    return TrainSpec(algo=algo, env_id=env_id, seed=0, total_steps=100, every=50,
                     hyperparams=hyperparams)


@pytest.mark.parametrize("algo, env_id", [("sac", "CartPole-v1"), ("td3", "CartPole-v1")])
def test_check_rejects_continuous_algorithms_on_a_discrete_env(algo: str, env_id: str) -> None:
    with pytest.raises(IncompatibleEnvError, match="Box"):
        SB3Adapter().check(spec_for(algo, env_id))


def test_check_suggests_the_hyperparameter_meant() -> None:
    with pytest.raises(ConfigError, match="learning_rat.*learning_rate"):
        SB3Adapter().check(spec_for("ppo", "CartPole-v1", learning_rat=1e-3))


def test_check_suggests_the_policy_kwarg_meant() -> None:
    with pytest.raises(ConfigError, match="net_arch"):
        SB3Adapter().check(spec_for("ppo", "CartPole-v1", policy_kwargs={"net_arc": [8]}))


def test_check_rejects_settings_the_run_owns() -> None:
    with pytest.raises(ConfigError, match="seed"):
        SB3Adapter().check(spec_for("ppo", "CartPole-v1", seed=3))


# -- the adapter contract, shared by every adapter plugin --------------------------------------
class TestSB3Conformance(AdapterConformance):
    adapter_name = "sb3"
    library_module = "stable_baselines3"
    cases: ClassVar[dict[str, TrainSpec]] = {"ppo": make_spec("ppo"), "sac": make_spec("sac")}
    discrete_only = "dqn"

    def recorded(self, case: str) -> Any:
        return collected(case)  # the runs this module's own tests collected
