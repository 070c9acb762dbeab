"""Build a Tianshou 2 agent (networks, policy, algorithm) and its training collector.

Only the low-level Tianshou API is used: ``Net`` trunks, actor/critic heads, an
``AdamOptimizerFactory`` per optimizer, and the ``PPO``/``DQN``/``SAC`` algorithm classes. Every
network gets its own trunk (actor and critic never share weights), so each optimized tensor has
exactly one role. Tianshou is imported inside the functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from tianshou.algorithm import Algorithm
    from tianshou.algorithm.algorithm_base import Policy
    from tianshou.algorithm.optim import OptimizerFactory
    from tianshou.data import Collector
    from tianshou.env import BaseVectorEnv
    from tianshou.utils.net.common import Net

OptimWrapper = Callable[["OptimizerFactory"], "OptimizerFactory"]
"""Turns the adapter's base optimizer factory into the one actually used (identity if absent).

Applied to every optimizer whose parameters are snapshotted (PPO's actor-critic, DQN's Q-net,
SAC's actor and both critics), never to SAC's entropy-coefficient optimizer."""

OptimWrapping = OptimWrapper | Mapping[str, OptimWrapper]
"""One wrapper for every snapshotted optimizer, or one per part label (see :data:`PARTS`;
parts left out keep the plain factory)."""

PARTS: dict[str, tuple[str, ...]] = {"ppo": ("actor_critic",), "dqn": ("q",),
                                     "sac": ("actor", "critic1", "critic2")}
"""Labels of each algorithm's snapshotted optimizers, in the algorithm's order (the labels of
:attr:`Agent.optimizers`, and the keys a per-part ``wrap_optim`` mapping takes)."""

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass(frozen=True)
class Agent:
    """A freshly built Tianshou algorithm and how to read its trainable state.

    ``optimizers`` lists the raw torch optimizers in the algorithm's order (PPO: actor-critic;
    DQN: Q-network; SAC: actor, critic 1, critic 2), each with a label. ``role_modules`` maps
    roles to the modules whose parameters carry them. ``counted`` is the optimizer whose
    ``step()`` calls are reported as gradient steps.
    """

    algo: str
    algorithm: Algorithm[Any, Any]
    policy: Policy
    optimizers: tuple[tuple[str, torch.optim.Optimizer], ...]
    role_modules: tuple[tuple[str, nn.Module], ...]
    counted: torch.optim.Optimizer
    on_policy: bool
    description: dict[str, Any]
    """JSON-serialisable summary: network layout and optimizer classes."""


def _identity(factory: OptimizerFactory) -> OptimizerFactory:
    return factory


def _adam(lr: float, wrap: OptimWrapping, part: str) -> OptimizerFactory:
    from tianshou.algorithm.optim import AdamOptimizerFactory

    factory = AdamOptimizerFactory(lr=lr)
    if isinstance(wrap, Mapping):
        return wrap[part](factory) if part in wrap else factory
    return wrap(factory)


def _trunk(obs_shape: Sequence[int], hidden: Sequence[int], activation: type[nn.Module],
           action_shape: int | Sequence[int] = 0, concat: bool = False) -> Net:
    from tianshou.utils.net.common import Net

    return Net(state_shape=tuple(obs_shape), action_shape=action_shape,
               hidden_sizes=tuple(hidden), activation=activation, concat=concat)


def _orthogonal_init(*modules: nn.Module) -> None:
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight)
                nn.init.zeros_(m.bias)


def _gaussian(loc_scale: tuple[torch.Tensor, torch.Tensor]) -> torch.distributions.Distribution:
    loc, scale = loc_scale
    return torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)


def _raw(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside Tianshou's ``Algorithm.Optimizer`` wrapper."""
    raw = optimizer._optim
    if not isinstance(raw, torch.optim.Optimizer):
        raise TypeError(f"expected a torch optimizer inside {type(optimizer).__name__}, "
                        f"got {type(raw).__name__}")
    return raw


def _shape(space: gym.Space[Any]) -> tuple[int, ...]:
    if space.shape is None:
        raise ValueError(f"space {space} has no shape")
    return tuple(space.shape)


def _obs_shape(env: gym.Env[Any, Any]) -> tuple[int, ...]:
    return _shape(env.observation_space)


def _build_ppo(env: gym.Env[Any, Any], s: Mapping[str, Any], hidden: Sequence[int],
               act: type[nn.Module], wrap: OptimWrapping) -> Agent:
    from tianshou.algorithm import PPO
    from tianshou.algorithm.modelfree.reinforce import (
        DiscreteActorPolicy,
        ProbabilisticActorPolicy,
    )
    from tianshou.utils.net.continuous import ContinuousActorProbabilistic, ContinuousCritic
    from tianshou.utils.net.discrete import DiscreteActor, DiscreteCritic

    obs_shape = _obs_shape(env)
    space = env.action_space
    policy: ProbabilisticActorPolicy
    critic: nn.Module
    if isinstance(space, gym.spaces.Discrete):
        # DiscreteActor ends in a softmax: its output is probabilities, which
        # torch.distributions.Categorical takes as its first (``probs``) argument.
        actor = DiscreteActor(preprocess_net=_trunk(obs_shape, hidden, act),
                              action_shape=int(space.n), softmax_output=True)
        critic = DiscreteCritic(preprocess_net=_trunk(obs_shape, hidden, act))
        if s["orthogonal_init"]:
            _orthogonal_init(actor, critic)
        policy = DiscreteActorPolicy(actor=actor, dist_fn=torch.distributions.Categorical,
                                     deterministic_eval=True, action_space=space,
                                     observation_space=env.observation_space)
        head = "DiscreteActor(softmax) + Categorical(probs)"
    else:
        continuous_actor = ContinuousActorProbabilistic(
            preprocess_net=_trunk(obs_shape, hidden, act), action_shape=_shape(space),
            unbounded=True)
        critic = ContinuousCritic(preprocess_net=_trunk(obs_shape, hidden, act))
        if s["orthogonal_init"]:
            _orthogonal_init(continuous_actor, critic)
        with warnings.catch_warnings():
            # Tianshou reads ``max_action == 1.0`` of an unbounded actor as "already bounded"
            # and warns; its own PPO examples build exactly this policy.
            warnings.filterwarnings("ignore", message="action_scaling and action_bound_method")
            policy = ProbabilisticActorPolicy(actor=continuous_actor, dist_fn=_gaussian,
                                              deterministic_eval=True, action_space=space,
                                              observation_space=env.observation_space,
                                              action_scaling=True, action_bound_method="clip")
        head = "ContinuousActorProbabilistic(unbounded, state-independent sigma) + Normal"
    algorithm = PPO(
        policy=policy, critic=critic, optim=_adam(s["lr"], wrap, "actor_critic"),
        eps_clip=s["eps_clip"],
        dual_clip=s["dual_clip"], value_clip=s["value_clip"],
        advantage_normalization=s["advantage_normalization"],
        recompute_advantage=s["recompute_advantage"], vf_coef=s["vf_coef"],
        ent_coef=s["ent_coef"], max_grad_norm=s["max_grad_norm"], gae_lambda=s["gae_lambda"],
        gamma=s["gamma"], return_scaling=s["return_scaling"],
    )
    raw = _raw(algorithm.optim)
    return Agent(
        algo="ppo", algorithm=algorithm, policy=policy, optimizers=(("actor_critic", raw),),
        role_modules=(("actor", policy.actor), ("critic", algorithm.critic)), counted=raw,
        on_policy=True,
        description={"actor": head, "critic": type(critic).__name__,
                     "shared_trunk": False, "orthogonal_init": s["orthogonal_init"]},
    )


def _build_dqn(env: gym.Env[Any, Any], s: Mapping[str, Any], hidden: Sequence[int],
               act: type[nn.Module], wrap: OptimWrapping) -> Agent:
    from tianshou.algorithm import DQN
    from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy

    space = env.action_space
    assert isinstance(space, gym.spaces.Discrete)
    q_net = _trunk(_obs_shape(env), hidden, act, action_shape=int(space.n))
    policy = DiscreteQLearningPolicy(model=q_net, action_space=space,
                                     observation_space=env.observation_space,
                                     eps_training=s["eps_train"], eps_inference=0.0)
    algorithm = DQN(policy=policy, optim=_adam(s["lr"], wrap, "q"), gamma=s["gamma"],
                    n_step_return_horizon=s["n_step_return_horizon"],
                    target_update_freq=s["target_update_freq"], is_double=s["is_double"],
                    huber_loss_delta=s["huber_loss_delta"])
    raw = _raw(algorithm.optim)
    return Agent(
        algo="dqn", algorithm=algorithm, policy=policy, optimizers=(("q", raw),),
        role_modules=(("q", policy.model),), counted=raw, on_policy=False,
        description={"q": "Net (MLP to one value per action)",
                     "target_network": s["target_update_freq"] > 0},
    )


def _build_sac(env: gym.Env[Any, Any], s: Mapping[str, Any], hidden: Sequence[int],
               act: type[nn.Module], wrap: OptimWrapping) -> Agent:
    from tianshou.algorithm import SAC
    from tianshou.algorithm.modelfree.sac import AutoAlpha, SACPolicy
    from tianshou.algorithm.optim import AdamOptimizerFactory
    from tianshou.utils.net.continuous import ContinuousActorProbabilistic, ContinuousCritic

    obs_shape = _obs_shape(env)
    space = env.action_space
    assert isinstance(space, gym.spaces.Box)
    actor = ContinuousActorProbabilistic(preprocess_net=_trunk(obs_shape, hidden, act),
                                         action_shape=_shape(space), unbounded=True,
                                         conditioned_sigma=True)
    critics = [ContinuousCritic(preprocess_net=_trunk(obs_shape, hidden, act,
                                                      action_shape=_shape(space),
                                                      concat=True))
               for _ in range(2)]
    policy = SACPolicy(actor=actor, action_space=space, observation_space=env.observation_space)
    actor_lr = s["lr"] if s["actor_lr"] is None else s["actor_lr"]
    critic_lr = s["lr"] if s["critic_lr"] is None else s["critic_lr"]
    alpha: Any = float(s["alpha"])
    if s["auto_alpha"]:
        alpha = AutoAlpha(target_entropy=-float(np.prod(space.shape)),
                          log_alpha=float(np.log(s["alpha"])),
                          optim=AdamOptimizerFactory(lr=s["alpha_lr"]))
    algorithm: SAC[Any] = SAC(
        policy=policy, policy_optim=_adam(actor_lr, wrap, "actor"), critic=critics[0],
        critic_optim=_adam(critic_lr, wrap, "critic1"), critic2=critics[1],
        critic2_optim=_adam(critic_lr, wrap, "critic2"), tau=s["tau"], gamma=s["gamma"],
        alpha=alpha, n_step_return_horizon=s["n_step_return_horizon"])
    optimizers = (("actor", _raw(algorithm.policy_optim)),
                  ("critic1", _raw(algorithm.critic_optim)),
                  ("critic2", _raw(algorithm.critic2_optim)))
    return Agent(
        algo="sac", algorithm=algorithm, policy=policy, optimizers=optimizers,
        role_modules=(("actor", policy.actor), ("critic", algorithm.critic),
                      ("critic", algorithm.critic2)),
        counted=optimizers[1][1], on_policy=False,
        description={"actor": "ContinuousActorProbabilistic(conditioned sigma) + tanh squash",
                     "critics": 2, "target_networks": "Polyak"},
    )


_BUILDERS = {"ppo": _build_ppo, "dqn": _build_dqn, "sac": _build_sac}


def build_agent(algo: str, env: gym.Env[Any, Any], settings: Mapping[str, Any],
                hidden_sizes: Sequence[int], activation: str,
                wrap_optim: OptimWrapping | None = None) -> Agent:
    """Build the networks and the Tianshou algorithm for ``algo`` on ``env``'s spaces.

    ``settings`` are resolved hyperparameters (:func:`tipl_tianshou.algorithms.resolve`).
    ``wrap_optim``: one :data:`OptimWrapper` for every snapshotted optimizer, or a mapping from
    part labels (:data:`PARTS`) to wrappers. Seed torch before calling: the weights are
    initialised here.
    """
    if isinstance(wrap_optim, Mapping):
        unknown = sorted(set(wrap_optim) - set(PARTS[algo]))
        if unknown:
            raise ValueError(f"unknown optimizer part(s) {unknown} for {algo.upper()}; "
                             f"parts: {', '.join(PARTS[algo])}")
    agent = _BUILDERS[algo](env, settings, hidden_sizes, ACTIVATIONS[activation],
                            wrap_optim or _identity)
    agent.description.update({
        "hidden_sizes": list(hidden_sizes), "activation": activation,
        "optimizers": {label: type(opt).__name__ for label, opt in agent.optimizers},
    })
    return agent


def build_collector(agent: Agent, envs: BaseVectorEnv, buffer_size: int,
                    collector_class: type[Collector[Any]] | None = None) -> Collector[Any]:
    """The training collector: a replay buffer of ``buffer_size`` over ``envs``.

    Exploration noise is on for off-policy agents (DQN's epsilon-greedy lives there).
    ``collector_class``: a ``Collector`` subclass to build instead (same arguments).
    """
    from tianshou.data import Collector, VectorReplayBuffer

    buffer = VectorReplayBuffer(buffer_size, len(envs))
    cls = collector_class or Collector
    return cls(agent.algorithm, envs, buffer, exploration_noise=not agent.on_policy)


@dataclass(frozen=True)
class OptimizedParam:
    """One tensor an optimizer owns: its name in ``algorithm.named_parameters()`` and role."""

    name: str
    role: str
    tensor: torch.Tensor


def optimized_parameters(agent: Agent) -> list[OptimizedParam]:
    """Every tensor the agent's optimizers own, in optimizer then param-group order.

    Names come from ``agent.algorithm.named_parameters()`` (matched by tensor identity); roles
    from ``agent.role_modules``. Target networks are never included: no optimizer owns them.
    Raises ``RuntimeError`` for a tensor owned twice, unnamed, or of no or several roles.
    """
    names = {id(p): n for n, p in agent.algorithm.named_parameters()}
    roles: dict[int, set[str]] = {}
    for role, module in agent.role_modules:
        for p in module.parameters():
            roles.setdefault(id(p), set()).add(role)
    out: list[OptimizedParam] = []
    seen: set[int] = set()
    for label, optimizer in agent.optimizers:
        for group in optimizer.param_groups:
            for p in group["params"]:
                key = id(p)
                if key in seen:
                    raise RuntimeError(f"a tensor is owned by two optimizers (again in {label})")
                seen.add(key)
                if key not in names:
                    raise RuntimeError(f"optimizer {label} owns a tensor that is not a parameter "
                                       "of the algorithm")
                tensor_roles = roles.get(key, set())
                if len(tensor_roles) != 1:
                    raise RuntimeError(f"{names[key]} has roles {sorted(tensor_roles)}; "
                                       "expected exactly one")
                out.append(OptimizedParam(names[key], next(iter(tensor_roles)), p))
    return out
