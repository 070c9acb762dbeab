"""Attach TIPLOptimizer to the agent a run trains, as a :class:`~tipl_opt.adapters.TIPLSetup`
describes: which optimizers, which jump mode, which guard.

* PPO: ``mode="manual"``, one snapshot per rollout boundary (``snapshot_every=1``); jumps
  happen only in the trainer's ``training_fn`` (:meth:`TIPLAttachment.at_safe_point`), right
  after the previous update and before the next collect. ``mode="auto"`` is refused.
* DQN, SAC: ``mode="auto"``, a snapshot every 50 gradient steps; jumps happen inside the
  optimizers' ``step()``. The setup's ``jump`` fields override these defaults.

Guards (:mod:`tipl_opt.guard`; default limits in :data:`GUARD_LIMITS`) measure on the newest
transitions (:mod:`tipl_tianshou.guards`), read at every jump: the last rollout for PPO, the
newest replay transitions for DQN and SAC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from pydantic import ValidationError

from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.errors import ConfigError
from tipl_opt.guard import (
    ActionDistanceGuard,
    GreedyActionGuard,
    JumpGuard,
    KLGuard,
    QChangeGuard,
)
from tipl_opt.jumps import JumpConfig
from tipl_opt.optimizer import TIPLOptimizer
from tipl_tianshou.agents import Agent, OptimWrapper
from tipl_tianshou.guards import GuardBatch, RolloutCollector, newest_transitions
from tipl_tianshou.optim import SpecsFor, TIPLOptimizerFactory, resolve_predictor, tagged_specs

logger = logging.getLogger(__name__)

JUMP_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {"mode": "manual", "snapshot_every": 1},
    "dqn": {"mode": "auto", "snapshot_every": 50},
    "sac": {"mode": "auto", "snapshot_every": 50},
}
"""Jump config per algorithm before the setup's ``jump`` fields (``snapshot_every`` counts
optimizer steps; in manual mode, the first safe point at or after)."""

GUARD_LIMITS: dict[str, float] = {"actor_critic": 0.02, "q": 0.1, "actor": 0.1,
                                  "critic1": 0.1, "critic2": 0.1}
"""Default trust region per optimizer part: mean KL of the action distribution (PPO), share
of greedy actions that change (DQN), mean distance of deterministic actions in [-1, 1] units
(SAC actor), relative change of Q (SAC critics)."""

TARGETS: dict[str, dict[str, tuple[str, ...]]] = {
    "ppo": {"both": ("actor_critic",)},
    "dqn": {"both": ("q",)},
    "sac": {"both": ("actor", "critic1", "critic2"), "actor": ("actor",),
            "critic": ("critic1", "critic2")},
}
"""Which optimizer parts get TIPL for each ``TIPLSetup.targets``."""


def _ppo_name(name: str) -> str:
    # ActorCritic(actor, critic): the actor lives under ``policy.`` in the algorithm.
    return f"policy.{name}" if name.startswith("actor.") else name


SPECS: dict[str, SpecsFor] = {
    "actor_critic": tagged_specs(None, _ppo_name),
    "q": tagged_specs("q", lambda n: f"policy.{n}"),
    "actor": tagged_specs("actor", lambda n: f"policy.{n}"),
    "critic1": tagged_specs("critic", lambda n: f"critic.{n}"),
    "critic2": tagged_specs("critic", lambda n: f"critic2.{n}"),
}
"""Parameter names and roles per part, as in the snapshots (``algorithm.named_parameters()``):
the factory sees the module Tianshou optimizes (PPO: ``ActorCritic``; DQN and the SAC actor:
the policy; SAC critics: each critic)."""


def jump_config(algo: str, overrides: dict[str, Any]) -> JumpConfig:
    """:data:`JUMP_DEFAULTS` of ``algo`` updated with ``overrides``; raises ConfigError for an
    invalid field or for ``mode="auto"`` on PPO."""
    fields = {**JUMP_DEFAULTS[algo], **overrides}
    try:
        config = JumpConfig.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(f"Invalid TIPL jump config {fields}: {exc}") from exc
    if algo == "ppo" and config.schedule.mode != "manual":
        raise ConfigError("Tianshou PPO can only jump at rollout boundaries: use mode='manual' "
                          "(the default) or leave mode out.")
    return config


def target_parts(algo: str, targets: str) -> tuple[str, ...]:
    """Optimizer parts that get TIPL; ConfigError for a target the algorithm lacks."""
    choices = TARGETS[algo]
    if targets not in choices:
        raise ConfigError(f"Tianshou {algo.upper()} has a single optimizer over "
                          f"{'actor and critic' if algo == 'ppo' else 'the Q-network'}: "
                          f"targets must be 'both', got {targets!r}.")
    return choices[targets]


class TIPLAttachment:
    """TIPL for one run: builds the factories (:meth:`wrappers`), then the guards once agent
    and collector exist (:meth:`bind`), jumps at safe points, and summarises the counters."""

    def __init__(self, algo: str, setup: TIPLSetup) -> None:
        self.algo = algo
        self.setup = setup
        self.config = jump_config(algo, dict(setup.jump))
        self.parts = target_parts(algo, setup.targets)
        self.predictor = resolve_predictor(setup.predictor)
        self.factories: dict[str, TIPLOptimizerFactory] = {}
        self.guards: dict[str, JumpGuard] = {}

    # -- building ----------------------------------------------------------------------------
    def wrappers(self) -> dict[str, OptimWrapper]:
        """Per-part wrappers for :func:`tipl_tianshou.agents.build_agent`."""

        def wrapper(part: str) -> OptimWrapper:
            def wrap(base: Any) -> Any:
                factory = TIPLOptimizerFactory(base, self.predictor, self.config,
                                               specs_for=SPECS[part])
                self.factories[part] = factory
                return factory
            return wrap

        return {part: wrapper(part) for part in self.parts}

    def collector_class(self, agent: Agent) -> type[Any] | None:
        """On-policy agents with a guard keep each rollout's observations for the next jump."""
        return RolloutCollector if self.setup.guard and agent.on_policy else None

    @property
    def optimizers(self) -> dict[str, TIPLOptimizer]:
        """The TIPLOptimizers by part label (after the agent is built)."""
        return {part: f.optimizers[-1] for part, f in self.factories.items() if f.optimizers}

    def bind(self, agent: Agent, collector: Any) -> None:
        """Check every part got its TIPLOptimizer, and give each its guard (if the setup has
        one), measuring on the collector's newest transitions."""
        missing = [p for p in self.parts if p not in self.optimizers]
        if missing:
            raise RuntimeError(f"no TIPLOptimizer was built for {missing}")
        raw = dict(agent.optimizers)
        for part, opt in self.optimizers.items():
            if raw[part] is not opt:
                raise RuntimeError(f"the {part} optimizer of the algorithm is not its "
                                   "TIPLOptimizer")
        if not self.setup.guard:
            return
        device = next(agent.algorithm.parameters()).device
        batch: Callable[[], GuardBatch]
        if isinstance(collector, RolloutCollector):
            def batch() -> GuardBatch:
                return collector.last_batch
        else:
            def batch() -> GuardBatch:
                return newest_transitions(collector.buffer, device=device)
        for part, opt in self.optimizers.items():
            limit = (GUARD_LIMITS[part] if self.setup.guard_limit is None
                     else float(self.setup.guard_limit))
            guard = _guard(agent, part, limit, batch)
            opt.guard = guard
            self.guards[part] = guard

    # -- training ----------------------------------------------------------------------------
    def at_safe_point(self) -> None:
        """Call between an update and the next collect: manual-mode optimizers snapshot if due
        and jump when their window is full."""
        for opt in self.optimizers.values():
            if opt.config.schedule.mode == "manual":
                opt.maybe_jump()

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable: predictor, jump config, guards and final counters per part."""
        return {
            "predictor": str(getattr(self.predictor, "name", self.predictor)),
            "parts": list(self.parts),
            "jump": self.config.flat(),
            "guard": ({part: {"kind": g.name, "limit": g.limit} for part, g in self.guards.items()}
                      if self.guards else None),
            "counters": {part: dict(opt.counters) for part, opt in self.optimizers.items()},
        }


def _guard(agent: Agent, part: str, limit: float, batch: Callable[[], GuardBatch]) -> JumpGuard:
    """The guard of ``part``, reading ``batch()`` afresh at every jump's reference."""
    policy: Any = agent.policy

    def observations() -> torch.Tensor:
        return batch().obs

    if part == "actor_critic":
        return KLGuard(lambda obs: policy.dist_fn(policy.actor(obs)[0]), observations, limit)
    if part == "q":
        return GreedyActionGuard(lambda obs: policy.model(obs)[0], observations, limit)
    if part == "actor":
        return ActionDistanceGuard(lambda obs: torch.tanh(policy.actor(obs)[0][0]), observations,
                                   limit)
    algorithm: Any = agent.algorithm
    critic = algorithm.critic if part == "critic1" else algorithm.critic2
    return QChangeGuard(lambda obs, act: critic(obs, act), batch, limit)
