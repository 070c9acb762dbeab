"""The value-gradient check: a jump may not leave the critic's gradient on the newest returns
larger than it was (SB3's PPO clips the actor's and the critic's gradients together, so the
critic's gradient sets how far the actor's next updates go)."""

from __future__ import annotations

import math

import pytest
import torch

from tipl_opt.adapters.attachment import GuardInputs, make_guard
from tipl_opt.guard import AllOfGuard, ValueGradGuard


def _critic() -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    critic = torch.nn.Linear(3, 1)
    obs = torch.randn(32, 3)
    returns = obs @ torch.tensor([1.0, -2.0, 0.5]) + 4.0
    return critic, obs, returns


def _grad_norm(critic: torch.nn.Linear, obs: torch.Tensor, returns: torch.Tensor) -> float:
    """The gradient of mean (R - V)^2 written out for a linear V = w.x + b."""
    with torch.no_grad():
        residual = critic(obs).reshape(-1) - returns  # V - R
        grad_w = 2 * (residual[:, None] * obs).mean(0)
        grad_b = 2 * residual.mean()
    return math.sqrt(float(grad_w.pow(2).sum() + grad_b**2))


def test_the_measure_is_the_ratio_of_the_gradient_norms_after_and_before() -> None:
    critic, obs, returns = _critic()
    guard = ValueGradGuard(critic, (obs, returns), limit=1.0)
    before = _grad_norm(critic, obs, returns)
    guard.reference()
    assert guard.measure() == pytest.approx(1.0)  # nothing moved
    with torch.no_grad():
        critic.bias += 10.0  # past the returns: a larger error and a larger gradient
    after = _grad_norm(critic, obs, returns)
    assert after > before
    assert guard.measure() == pytest.approx(after / before, rel=1e-5)


def test_a_move_towards_the_targets_measures_below_one() -> None:
    critic, obs, returns = _critic()
    guard = ValueGradGuard(critic, lambda: (obs, returns), limit=1.0)
    guard.reference()
    with torch.no_grad():  # half way to the least-squares fit
        design = torch.cat([obs, torch.ones(32, 1)], dim=1)
        best = torch.linalg.lstsq(design, returns[:, None]).solution.reshape(-1)
        critic.weight += 0.5 * (best[:3] - critic.weight.reshape(-1))
        critic.bias += 0.5 * (best[3] - critic.bias)
    assert guard.measure() == pytest.approx(0.5, rel=1e-4)  # the residual halves


def test_the_check_leaves_the_parameters_gradients_alone() -> None:
    critic, obs, returns = _critic()
    guard = ValueGradGuard(critic, (obs, returns))
    guard.reference()
    guard.measure()
    assert critic.weight.grad is None and critic.bias.grad is None


def test_values_without_their_graph_are_refused_with_a_clear_error() -> None:
    critic, obs, returns = _critic()

    def detached(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return critic(x)

    with pytest.raises(ValueError, match="with its graph"):
        ValueGradGuard(detached, (obs, returns)).reference()


def test_an_empty_rollout_rejects_the_jump() -> None:
    critic, _, _ = _critic()
    guard = ValueGradGuard(critic, (torch.empty(0, 3), torch.empty(0)))
    guard.reference()
    assert guard.measure() == math.inf


def test_make_guard_adds_the_check_on_the_critic_only_when_asked() -> None:
    critic, obs, returns = _critic()
    policy = torch.nn.Linear(3, 2)

    def distribution(x: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Categorical(logits=policy(x))

    inputs = GuardInputs(distribution, lambda: obs, values=critic,
                         value_targets=lambda: (obs, returns))
    plain = make_guard("policy", inputs, 0.02)
    assert "value_grad" not in plain.name
    checked = make_guard("policy", inputs, 0.02, value_grad_limit=1.0)
    assert isinstance(checked, AllOfGuard)
    assert checked.name == "kl+value_change+entropy_drop+value_grad"
    assert checked.scopes[-1] == "critic"
    checked.reference()
    with torch.no_grad():
        critic.bias += 10.0
    checked.measure()
    name, scope, limit, value = checked.last_parts()[-1]
    assert (name, scope, limit) == ("value_grad", "critic", 1.0) and value > 1.0
    # without the rollout's returns there is nothing to check it on
    no_targets = GuardInputs(distribution, lambda: obs, values=critic)
    assert "value_grad" not in make_guard("policy", no_targets, 0.02, value_grad_limit=1.0).name
