"""The attachment core shared by every adapter: jump defaults, part selection, guards per kind
of part, the snapshot cadence of short rollouts, and the combined actor-critic guard."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Categorical

from tipl_opt.adapters import TIPLSetup
from tipl_opt.adapters.attachment import (
    CRITIC_JUMPS_OFF_BY_DEFAULT,
    ENTROPY_LIMIT,
    GUARDS,
    ROLE_CHECK,
    VALUE_LIMIT,
    Attachment,
    GuardInputs,
    adapter_defaults,
    jump_config,
    jump_roles,
    make_guard,
    rollout_snapshot_every,
    select_parts,
    targets_of,
)
from tipl_opt.errors import ConfigError
from tipl_opt.guard import (
    AllOfGuard,
    EntropyDropGuard,
    KLGuard,
    ValueChangeGuard,
    ValueFitGuard,
)


def test_on_policy_defaults_to_manual_jumps_and_refuses_auto() -> None:
    cfg = jump_config("Lib", "ppo", on_policy=True)
    assert (cfg.schedule.mode, cfg.schedule.snapshot_every) == ("manual", 1)
    assert jump_config("Lib", "ppo", on_policy=True, config={"horizon": 2}).schedule.horizon == 2
    with pytest.raises(ConfigError, match="Lib PPO can only jump at rollout boundaries"):
        jump_config("Lib", "ppo", on_policy=True, config={"mode": "auto"})
    off = jump_config("Lib", "sac", on_policy=False, auto_defaults={"snapshot_every": 50})
    assert (off.schedule.mode, off.schedule.snapshot_every) == ("auto", 50)
    with pytest.raises(ConfigError, match="Invalid TIPL jump config"):
        jump_config("Lib", "sac", on_policy=False, config={"snapshot_every": 0})


def test_ppo_and_sac_keep_the_window_and_jump_every_2_snapshots_by_default() -> None:
    for algo, on_policy in (("ppo", True), ("sac", False)):
        cfg = jump_config("Lib", algo, on_policy=on_policy)
        assert (cfg.prediction.keep_window, cfg.schedule.jump_every) == (True, 2)
        # the user's settings win, in flat or section form
        fresh = jump_config("Lib", algo, on_policy=on_policy, config={"keep_window": False})
        assert (fresh.prediction.keep_window, fresh.schedule.jump_every) == (False, None)
        nested = jump_config("Lib", algo, on_policy=on_policy,
                             config={"schedule": {"jump_every": 4}})
        assert (nested.prediction.keep_window, nested.schedule.jump_every) == (True, 4)
    for algo, on_policy in (("dqn", False), ("td3", False), ("a2c", True)):
        other = jump_config("Lib", algo, on_policy=on_policy)  # not measured: JumpConfig's own
        assert (other.prediction.keep_window, other.schedule.jump_every) == (False, None)


def test_ppo_checks_each_networks_path_once_by_default() -> None:
    schedule = jump_config("Lib", "ppo", on_policy=True).schedule
    assert (schedule.min_persistence, schedule.persistence_scope, schedule.persistence_windows,
            schedule.persistence_mode) == (0.1, "role", 32, "once")
    # min_persistence=None turns it off; a level of the user's own keeps the check's own
    # defaults (the whole path, rolling), as the option always worked
    assert jump_config("Lib", "ppo", on_policy=True,
                       config={"min_persistence": None}).schedule.min_persistence is None
    own = jump_config("Lib", "ppo", on_policy=True, config={"min_persistence": 0.2}).schedule
    assert (own.min_persistence, own.persistence_scope, own.persistence_mode) == (
        0.2, "all", "rolling")
    for algo, on_policy in (("sac", False), ("a2c", True), ("dqn", False)):
        assert jump_config("Lib", algo, on_policy=on_policy).schedule.min_persistence is None
        assert "role_check" not in adapter_defaults(algo)  # their runs keep their fingerprint
    assert adapter_defaults("ppo")["role_check"] == ROLE_CHECK


def test_explicit_fields_flattens_sections_and_the_schedule_alias() -> None:
    from tipl_opt.jumps import JumpConfig, explicit_fields

    assert explicit_fields(None) == {}
    assert explicit_fields({"schedule": {"horizon": 2}, "scale": 2}) == {"horizon": 2,
                                                                         "scale": 2}
    assert explicit_fields({"schedule": "shrinking"}) == {"horizon_schedule": "shrinking"}
    assert explicit_fields(JumpConfig(horizon=2)) == {"horizon": 2}


def test_short_rollouts_snapshot_at_least_256_env_steps_apart() -> None:
    # traced: 5-step rollouts, 1 step each -> 52 rollouts -> 51 whole updates + 1 step
    assert rollout_snapshot_every(5, 1) == 52
    assert rollout_snapshot_every(64, 2) == 7      # 4 rollouts: 3 updates of 2 steps + 1
    assert rollout_snapshot_every(256, 40) == 1    # long enough: every boundary
    assert rollout_snapshot_every(2048, 320) == 1
    cfg = jump_config("Lib", "a2c", on_policy=True, rollout=(5, 1))
    assert cfg.schedule.snapshot_every == 52
    explicit = jump_config("Lib", "a2c", on_policy=True, rollout=(5, 1),
                           config={"snapshot_every": 1})
    assert explicit.schedule.snapshot_every == 1  # the user's setting wins


def test_targets_select_parts_by_kind() -> None:
    parts = {"actor": "actor", "critic1": "critic", "critic2": "critic"}
    assert select_parts("L", "sac", parts, "both") == ["actor", "critic1", "critic2"]
    assert select_parts("L", "sac", parts, "critic") == ["critic1", "critic2"]
    assert select_parts("L", "sac", parts, "actor") == ["actor"]
    assert select_parts("L", "ppo", {"policy": "policy"}, "actor") == ["policy"]  # by role
    with pytest.raises(ConfigError, match="single optimizer"):
        select_parts("L", "dqn", {"policy": "q"}, "actor")
    with pytest.raises(ConfigError, match="'actor', 'critic' or 'both'"):
        select_parts("L", "ppo", {"policy": "policy"}, "all")


def test_td3_jumps_its_actor_alone_unless_told_otherwise() -> None:
    parts, unset = {"actor": "actor", "critic": "critic"}, TIPLSetup()
    assert select_parts("L", "td3", parts, targets_of(unset, "td3")) == ["actor"]  # harmed
    assert select_parts("L", "sac", parts, targets_of(unset, "sac")) == ["actor", "critic"]
    assert select_parts("L", "td3", parts, "both") == ["actor", "critic"]
    assert select_parts("L", "ppo", {"policy": "policy"}, targets_of(unset, "ppo")) == ["policy"]
    assert set(CRITIC_JUMPS_OFF_BY_DEFAULT) == {"td3"}
    assert targets_of(TIPLSetup(), "TD3") == "actor" and targets_of(TIPLSetup(), "sac") == "both"
    assert targets_of(TIPLSetup(targets="critic"), "td3") == "critic"


def test_on_policy_targets_choose_the_roles_a_jump_moves() -> None:
    config = jump_config("L", "ppo", on_policy=True)
    assert config.acceptance.roles is None
    assert jump_roles(config, "critic", on_policy=True).acceptance.roles == ("critic",)
    assert jump_roles(config, "both", on_policy=True) is config
    assert jump_roles(config, "actor", on_policy=False) is config  # SAC/TD3: by optimizer
    own = jump_config("L", "ppo", on_policy=True, config={"roles": ["actor", "critic"]})
    assert jump_roles(own, "critic", on_policy=True).acceptance.roles == ("actor", "critic")


class ActorCritic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.pi, self.v = nn.Linear(4, 2), nn.Linear(4, 1)


def test_a_shared_actor_critic_jump_is_checked_on_the_value_head_too() -> None:
    net, obs = ActorCritic(), torch.randn(64, 4)
    inputs = GuardInputs(lambda o: Categorical(logits=net.pi(o)), lambda: obs,
                         values=lambda o: net.v(o))
    guard = make_guard("policy", inputs, 0.02, entropy_limit=None)
    assert isinstance(guard, AllOfGuard) and guard.name == "kl+value_change"
    assert guard.limit == 0.02
    policy_only = make_guard("policy", GuardInputs(inputs.model, inputs.batch), 0.02,
                             entropy_limit=None)
    assert isinstance(policy_only, KLGuard)  # no value head given: the KL alone
    guard.reference()
    policy_only.reference()
    assert guard.measure() == 0.0
    with torch.no_grad():
        net.v.bias += 10.0  # only the critic moves: no KL, a large value change
    assert policy_only.measure() == 0.0  # the KL alone would let this jump through
    assert guard.measure() > guard.limit  # rejected, although the policy did not change
    assert GUARDS["critic"][1] == VALUE_LIMIT


def test_the_entropy_drop_guard_sees_a_sharpening_the_kl_lets_through() -> None:
    net, obs = ActorCritic(), torch.randn(256, 4)

    def policy(o: torch.Tensor) -> Categorical:
        return Categorical(logits=net.pi(o))

    entropy = EntropyDropGuard(policy, obs, 0.01)
    kl = KLGuard(policy, obs, 0.02)
    entropy.reference()
    kl.reference()
    with torch.no_grad():
        old = float(policy(obs).entropy().mean())
    with torch.no_grad():
        net.pi.weight *= 1.5  # the same preferences, held more firmly
        net.pi.bias *= 1.5
    with torch.no_grad():
        drop = old - float(policy(obs).entropy().mean())
    assert drop > 0
    assert entropy.measure() == pytest.approx(drop)
    with torch.no_grad():
        net.pi.weight /= 3.0  # flatter than at the reference: a rise counts as no drop
        net.pi.bias /= 3.0
    assert entropy.measure() == 0.0


def test_the_entropy_drop_is_per_action_dimension() -> None:
    from torch.distributions import Independent, Normal

    obs = torch.zeros(8, 3)
    log_std = torch.zeros(4)
    summed = EntropyDropGuard(lambda o: Independent(Normal(o[:, :1].expand(-1, 4),
                                                           log_std.exp()), 1), obs, 0.01)
    per_dim = EntropyDropGuard(lambda o: Normal(o[:, :1].expand(-1, 4), log_std.exp()), obs,
                               0.01)
    summed.reference()
    per_dim.reference()
    log_std -= 0.1  # every dimension 0.1 nats more certain
    assert summed.measure() == pytest.approx(0.1, abs=1e-6)
    assert per_dim.measure() == pytest.approx(0.1, abs=1e-6)


def test_the_policy_guard_checks_the_entropy_when_a_limit_is_set() -> None:
    net, obs = ActorCritic(), torch.randn(64, 4)
    inputs = GuardInputs(lambda o: Categorical(logits=net.pi(o)), lambda: obs,
                         values=lambda o: net.v(o))
    guard = make_guard("policy", inputs, 0.02, entropy_limit=0.01)
    assert isinstance(guard, AllOfGuard) and guard.name == "kl+value_change+entropy_drop"
    assert guard.scopes == ("actor", "critic", "actor")
    assert make_guard("policy", inputs, 0.02).name == "kl+value_change+entropy_drop"
    assert ENTROPY_LIMIT == 0.02  # on by default
    assert make_guard("policy", inputs, 0.02, entropy_limit=None).name == "kl+value_change"
    setup = TIPLSetup(entropy_limit=0.05)
    attachment = Attachment("Lib", "ppo", on_policy=True, setup=setup, predictor="linear")
    attachment.wrap("policy", "policy", torch.optim.Adam(net.parameters(), lr=1e-3), None)
    made = attachment.set_guard("policy", inputs)
    assert made is not None and made.name.endswith("entropy_drop")
    assert attachment.summary()["guard"]["policy"]["limits"]["entropy_drop"] == 0.05


def test_the_value_fit_guard_accepts_a_critic_move_towards_its_targets_only() -> None:
    net, obs = ActorCritic(), torch.randn(128, 4)
    with torch.no_grad():
        targets = net.v(obs).reshape(-1) - 5.0  # the returns sit 5 below the values
    guard = ValueFitGuard(lambda o: net.v(o), lambda: (obs, targets), 1.0)
    guard.reference()
    with torch.no_grad():
        net.v.bias -= 2.0  # towards the returns: the error falls from 5 to 3
    assert guard.measure() == pytest.approx(3.0 / 5.0, rel=1e-5)
    with torch.no_grad():
        net.v.bias -= 6.0  # past them by 3: the same error, on the other side
    assert guard.measure() == pytest.approx(3.0 / 5.0, rel=1e-5)
    with torch.no_grad():
        net.v.bias -= 3.0  # past them by 6: a worse fit than before the move
    assert guard.measure() == pytest.approx(6.0 / 5.0, rel=1e-5)
    assert guard.measure() > guard.limit
    empty = ValueFitGuard(lambda o: net.v(o), (torch.empty(0, 4), torch.empty(0)), 1.0)
    empty.reference()
    assert empty.measure() == math.inf  # no rollout yet: nothing says the jump is safe


def test_the_value_fit_check_is_added_only_with_a_limit_and_targets() -> None:
    net, obs = ActorCritic(), torch.randn(64, 4)
    with torch.no_grad():
        net.v.bias += 40.0  # values about 40: the value-change limit allows moves of 4
        returns = net.v(obs).reshape(-1) + 1.0
    inputs = GuardInputs(lambda o: Categorical(logits=net.pi(o)), lambda: obs,
                         values=lambda o: net.v(o), value_targets=lambda: (obs, returns))
    assert make_guard("policy", inputs, 0.02).name == "kl+value_change+entropy_drop"
    guard = make_guard("policy", inputs, 0.02, value_fit_limit=1.0)
    assert isinstance(guard, AllOfGuard)
    assert guard.name == "kl+value_change+value_fit+entropy_drop"
    assert guard.scopes == ("actor", "critic", "critic", "actor")
    no_targets = GuardInputs(inputs.model, inputs.batch, values=inputs.values)
    assert "value_fit" not in make_guard("policy", no_targets, 0.02, value_fit_limit=1.0).name
    guard.reference()
    with torch.no_grad():
        net.v.bias += 0.5  # half way to the returns: the KL and the fit both accept it
    assert guard.measure() <= guard.limit
    with torch.no_grad():
        net.v.bias += 2.0  # 1.5 past them: inside the value-change limit, a worse fit
    assert guard.measure() > guard.limit
    parts = {name: (limit, value) for name, _, limit, value in guard.last_parts()}
    assert parts["value_fit"][1] > 1.0 and parts["value_change"][1] <= parts["value_change"][0]
    setup = TIPLSetup(value_fit_limit=1.1)
    attachment = Attachment("Lib", "ppo", on_policy=True, setup=setup, predictor="linear")
    attachment.wrap("policy", "policy", torch.optim.Adam(net.parameters(), lr=1e-3), None)
    made = attachment.set_guard("policy", inputs)
    assert made is not None and "value_fit" in made.name
    assert attachment.summary()["guard"]["policy"]["limits"]["value_fit"] == 1.1


def test_the_combined_guard_reads_in_the_first_guards_units() -> None:
    net, obs = ActorCritic(), torch.randn(64, 4)
    kl = KLGuard(lambda o: Categorical(logits=net.pi(o)), obs, 0.02)
    value = ValueChangeGuard(lambda o: net.v(o), obs, 0.1)
    both = AllOfGuard(kl, value)
    both.reference()
    with torch.no_grad():
        net.pi.weight += 0.05  # the value head does not move
    assert both.measure() == pytest.approx(kl.measure())  # the KL is the tightest
    with torch.no_grad():
        scale = float(net.v(obs).abs().mean())
        net.v.bias += scale  # V changes by about its own mean: far beyond 0.1
    assert both.measure() == pytest.approx(0.02 * value.measure() / 0.1)
    assert both.measure() > 0.02
    zero = AllOfGuard(KLGuard(lambda o: Categorical(logits=net.pi(o)), obs, 0.0), value)
    zero.reference()
    with torch.no_grad():
        net.pi.weight += 0.05
    assert 0 < zero.measure() < math.inf  # a real KL: limit 0 rejects every move
    with pytest.raises(ValueError, match="positive limit"):
        AllOfGuard(kl, ValueChangeGuard(lambda o: net.v(o), obs, 0.0))


def test_the_attachment_resolves_the_predictor_once_and_summarises() -> None:
    net = nn.Linear(3, 2)
    base = torch.optim.Adam(net.parameters(), lr=1e-3)
    tipl = Attachment("L", "ppo", on_policy=True, setup=TIPLSetup(predictor="linear"))
    opt = tipl.wrap("policy", "policy", base, None)
    assert opt.base is base and tipl.optimizers == {"policy": opt}
    assert tipl.set_guard("policy", GuardInputs(lambda o: Categorical(logits=net(o)),
                                                lambda: torch.randn(8, 3))) is not None
    summary = tipl.summary()
    assert summary["predictor"] == "linear" and summary["parts"] == ["policy"]
    assert summary["guard"] == {"policy": {"kind": "kl+entropy_drop", "limit": 0.02,
                                           "limits": {"kl": 0.02, "entropy_drop": 0.02}}}
    assert summary["counters"]["policy"]["jumps_tried"] == 0
    with pytest.raises(ConfigError, match="unknown part kind"):
        tipl.wrap("x", "value", torch.optim.Adam(nn.Linear(1, 1).parameters()), None)
    off = Attachment("L", "ppo", on_policy=True, setup=TIPLSetup(guard=False, guard_limit=0.5))
    assert off.limit("policy") == 0.5
    assert off.set_guard("policy", GuardInputs(lambda o: o, lambda: torch.zeros(1, 3))) is None


def test_the_setup_sets_the_value_heads_trust_region() -> None:
    net = ActorCritic()
    inputs = GuardInputs(lambda o: Categorical(logits=net.pi(o)), lambda: torch.randn(8, 4),
                         values=lambda o: net.v(o))
    for value_limit, expected in ((None, VALUE_LIMIT), (0.3, 0.3)):
        tipl = Attachment("L", "ppo", on_policy=True,
                          setup=TIPLSetup(predictor="linear", value_limit=value_limit))
        tipl.wrap("policy", "policy", torch.optim.Adam(net.parameters()), None)
        guard = tipl.set_guard("policy", inputs)
        assert isinstance(guard, AllOfGuard)
        assert [g.limit for g in guard.guards] == [0.02, expected, ENTROPY_LIMIT]
    with pytest.raises(ValueError):
        TIPLSetup(value_limit=0)


def test_a_score_makes_the_policy_guard_a_scored_guard_for_the_search_rule() -> None:
    from tipl_opt.acceptance import ScoredGuard, StepSearch
    from tipl_opt.jumps import AcceptanceConfig

    net, obs = ActorCritic(), torch.randn(64, 4)
    target = torch.tensor([1.0, -1.0])
    inputs = GuardInputs(lambda o: Categorical(logits=net.pi(o)), lambda: obs,
                         values=lambda o: net.v(o),
                         score=lambda: -float((net.pi.bias.detach() - target).abs().sum()))
    guard = make_guard("policy", inputs, 1.0, entropy_limit=None)
    assert isinstance(guard, ScoredGuard) and guard.name == "kl+value_change"

    class Move:  # a candidate move of the actor's bias towards (and past) the target
        relative_size = 0.1
        start = net.pi.bias.detach().clone()

        def write(self, fraction: float) -> None:
            with torch.no_grad():
                net.pi.bias.copy_(self.start + fraction * (target - self.start))

    guard.reference()
    decision = StepSearch(AcceptanceConfig(fractions=(0.5, 1.0, 2.0))).decide(Move(), guard)
    assert decision.fraction == 1.0  # the best-scoring length, exactly at the target
    plain = make_guard("policy", GuardInputs(inputs.model, inputs.batch, values=inputs.values), 1.0)
    plain.reference()
    longest = StepSearch(AcceptanceConfig(fractions=(0.5, 1.0, 2.0))).decide(Move(), plain)
    assert longest.fraction == 2.0  # without a score: the longest length allowed


def test_the_policy_guard_tells_the_split_rule_which_network_each_part_watches() -> None:
    from tipl_opt.guard import log_binding

    net, obs = ActorCritic(), torch.randn(16, 4)
    inputs = GuardInputs(lambda o: Categorical(logits=net.pi(o)), lambda: obs,
                         values=lambda o: net.v(o), score=lambda: 0.0)
    logged = log_binding(make_guard("policy", inputs, 0.02))  # WithScore(AllOfGuard) inside
    logged.reference()
    logged.measure()
    parts = logged.last_parts()  # type: ignore[attr-defined]
    assert [(name, scope, limit) for name, scope, limit, _ in parts] == [
        ("kl", "actor", 0.02), ("value_change", "critic", VALUE_LIMIT),
        ("entropy_drop", "actor", ENTROPY_LIMIT)]
    assert not hasattr(log_binding(KLGuard(inputs.model, obs)), "last_parts")
