"""Attach TIPLOptimizer to the agent a run trains, as a :class:`~tipl_opt.adapters.TIPLSetup`
describes. The rules shared with every library (jump defaults, part selection, guard per kind
of part, predictor, summary) are :class:`tipl_opt.adapters.attachment.Attachment`'s; this module
adds what is Tianshou's:

* the parts (:data:`KINDS`) and their parameter names (:data:`SPECS`);
* the TIPL optimizers are built *by* Tianshou, through a :class:`TIPLOptimizerFactory` per part
  (:meth:`TIPLAttachment.wrappers`), then adopted once the agent exists
  (:meth:`TIPLAttachment.bind`);
* PPO jumps only in the trainer's ``training_fn`` (:meth:`TIPLAttachment.at_safe_point`),
  right after the previous update and before the next collect; DQN and SAC jump inside their
  optimizers' ``step()``, with a snapshot every 50 gradient steps (:data:`AUTO_DEFAULTS`);
* the guards measure on the newest transitions (:mod:`tipl_tianshou.guards`), read at every
  jump: the last rollout for PPO, the newest replay transitions for DQN and SAC;
* the training collector reports each finished episode's return to the return watchdog
  (:class:`~tipl_tianshou.guards.EpisodeCollector`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch

from tipl_opt.adapters.attachment import (
    Attachment,
    GuardInputs,
    select_parts,
    targets_of,
    value_grad_limit_of,
)
from tipl_opt.adapters.base import TIPLSetup
from tipl_tianshou.build import PARTS, Agent, OptimWrapper
from tipl_tianshou.guards import (
    EpisodeCollector,
    GuardBatch,
    RolloutCollector,
    RolloutReturns,
    newest_transitions,
)
from tipl_tianshou.optim import SpecsFor, TIPLOptimizerFactory, tagged_specs

logger = logging.getLogger(__name__)

KINDS: dict[str, str] = {"actor_critic": "policy", "q": "q", "actor": "actor",
                         "critic1": "critic", "critic2": "critic"}
"""The :data:`~tipl_opt.adapters.attachment.PartKind` of each Tianshou optimizer part."""

AUTO_DEFAULTS: dict[str, Any] = {"snapshot_every": 50}
"""Off-policy jump defaults (``snapshot_every`` counts optimizer steps)."""


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


class TIPLAttachment(Attachment):
    """TIPL for one Tianshou run (``rollout``: PPO's env steps per collect and optimizer
    steps per update, see :func:`rollout_size`; ``env_id``: for the watchdog's solved level):
    builds the factories (:meth:`wrappers`),
    adopts their optimizers as Tianshou builds them and gives them guards once agent and
    collector exist (:meth:`bind`)."""

    def __init__(self, algo: str, setup: TIPLSetup,
                 rollout: tuple[int, int] | None = None, env_id: str | None = None) -> None:
        super().__init__("Tianshou", algo, on_policy=algo == "ppo", setup=setup,
                         auto_defaults=AUTO_DEFAULTS, rollout=rollout, env_id=env_id)
        self.parts = tuple(select_parts("Tianshou", algo, {p: KINDS[p] for p in PARTS[algo]},
                                        targets_of(setup, algo)))
        self.factories: dict[str, TIPLOptimizerFactory] = {}

    # -- building ----------------------------------------------------------------------------
    def wrappers(self) -> dict[str, OptimWrapper]:
        """Per-part wrappers for :func:`tipl_tianshou.build.build_agent`."""

        def wrapper(part: str) -> OptimWrapper:
            def wrap(base: Any) -> Any:
                factory = TIPLOptimizerFactory(
                    base, self.predictor, self.config, specs_for=SPECS[part],
                    on_build=lambda opt: self.adopt(part, KINDS[part], opt))
                self.factories[part] = factory
                return factory
            return wrap

        return {part: wrapper(part) for part in self.parts}

    def collector_class(self, agent: Agent) -> type[Any] | None:
        """On-policy agents with a guard keep each rollout's observations for the next jump;
        with the return watchdog on, the collector also reports finished episodes' returns."""
        if self.setup.guard and agent.on_policy:
            return RolloutCollector
        return EpisodeCollector if self.watchdog is not None else None

    def bind(self, agent: Agent, collector: Any) -> None:
        """Check each part's factory built the algorithm's optimizer (adopted as it was
        built), and give each its guard (if the setup has one), measuring on the collector's
        newest transitions."""
        missing = [p for p in self.parts if p not in self.optimizers]
        if missing:
            raise RuntimeError(f"no TIPLOptimizer was built for {missing}")
        raw = dict(agent.optimizers)
        for part, opt in self.optimizers.items():
            if raw[part] is not opt:
                raise RuntimeError(f"the {part} optimizer of the algorithm is not its "
                                   "TIPLOptimizer")
        if isinstance(collector, EpisodeCollector):
            collector.on_returns = self.record_returns
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
        returns = None
        if ("actor_critic" in self.parts and (
                self.setup.value_fit_limit is not None
                or value_grad_limit_of(self.setup, self.algo) is not None)):
            returns = RolloutReturns()
            returns.install(agent.algorithm)
        for part in self.parts:
            self.set_guard(part, _guard_inputs(agent, part, batch, returns))


def _guard_inputs(agent: Agent, part: str, batch: Callable[[], GuardBatch],
                  returns: RolloutReturns | None = None) -> GuardInputs:
    """The network of ``part`` and the newest data, read afresh at every jump's reference
    (``returns``: the newest rollout's value targets, for the value-fit check)."""
    policy: Any = agent.policy

    def observations() -> torch.Tensor:
        return batch().obs

    if part == "actor_critic":
        critic: Any = agent.algorithm.critic
        return GuardInputs(lambda obs: policy.dist_fn(policy.actor(obs)[0]), observations,
                           values=lambda obs: critic(obs),
                           value_targets=returns.read if returns is not None else None)
    if part == "q":
        return GuardInputs(lambda obs: policy.model(obs)[0], observations)
    if part == "actor":
        return GuardInputs(lambda obs: torch.tanh(policy.actor(obs)[0][0]), observations)
    algorithm: Any = agent.algorithm
    q = algorithm.critic if part == "critic1" else algorithm.critic2
    return GuardInputs(lambda obs, act: q(obs, act), batch)


def rollout_size(algo: str, settings: Any, collect: int) -> tuple[int, int] | None:
    """(env steps, optimizer steps) of one PPO collect step and its update (``settings``: the
    resolved hyperparameters); ``None`` for off-policy algorithms."""
    if algo != "ppo":
        return None
    steps = int(settings["update_step_num_repetitions"]) * math.ceil(
        collect / int(settings["batch_size"]))
    return collect, steps
