"""Attach :class:`~tipl_opt.optimizer.TIPLOptimizer` to an SB3 agent in one call, and resume
it from a saved agent.

    model = PPO("MlpPolicy", "CartPole-v1")
    callback = tipl_sb3.attach(model, "linear")
    model.learn(20_000, callback=callback)
    model.save("agent.zip")                      # the TIPL state is saved with the optimizer
    model, callback = tipl_sb3.load(PPO, "agent.zip", env=env, predictor="linear")

Each optimizer SB3 built is wrapped, not replaced, so SB3's own defaults stay the base (Adam
with ``eps=1e-5`` for PPO, RMSprop for A2C, the learning rate and its schedule, the param
groups). A saved agent loads in plain SB3 too: ``torch.optim.Optimizer.load_state_dict``
ignores the extra ``"tipl"`` entry, which is why resuming reads it from the zip file itself.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import gymnasium as gym
import torch

from tipl_opt.adapters.attachment import (
    Attachment,
    GuardInputs,
    Targets,
    select_parts,
    targets_of,
)
from tipl_opt.adapters.attachment import jump_config as core_jump_config
from tipl_opt.adapters.base import TIPLSetup
from tipl_opt.errors import ConfigError
from tipl_opt.jumps import JumpConfig
from tipl_opt.optimizer import TIPLOptimizer
from tipl_opt.predictors.base import Predictor
from tipl_sb3.algorithms import algorithm_info
from tipl_sb3.params import SAVED_OPTIMIZER, algorithm_of, optimizer_specs, owned_optimizers

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from tipl_sb3.callback import TIPLCallback
    from tipl_sb3.guards import RecentRolloutObservations

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound="BaseAlgorithm")
__all__ = ["attach", "attach_setup", "jump_config", "load", "part_kind", "rollout_size",
           "saved_tipl_states"]


def jump_config(algo: str, config: JumpConfig | Mapping[str, Any] | None,
                rollout: tuple[int, int] | None = None) -> JumpConfig:
    """The jump config for ``algo`` (:func:`tipl_opt.adapters.attachment.jump_config`):
    PPO/A2C ``mode="manual"`` with a snapshot at every rollout boundary (every few, for
    rollouts shorter than 256 env steps: ``rollout`` = env and optimizer steps per rollout),
    DQN/SAC/TD3 ``mode="auto"`` (JumpConfig's cadence, in gradient steps), updated with
    ``config``."""
    return core_jump_config("SB3", algo, on_policy=algorithm_info(algo).on_policy,
                            config=config, rollout=rollout)


def rollout_size(model: BaseAlgorithm, algo: str) -> tuple[int, int] | None:
    """(env steps, optimizer steps) of one PPO/A2C rollout and its update; ``None`` for
    off-policy algorithms."""
    if not algorithm_info(algo).on_policy:
        return None
    agent: Any = model
    env_steps = int(agent.n_steps) * int(agent.n_envs)
    if algo == "a2c":
        return env_steps, 1
    return env_steps, int(agent.n_epochs) * math.ceil(env_steps / int(agent.batch_size))


def part_kind(algo: str, part: str) -> str:
    """The :data:`~tipl_opt.adapters.attachment.PartKind` of an SB3 optimizer part."""
    if part == "policy":
        return "policy" if algorithm_info(algo).on_policy else "q"
    return part  # "actor" or "critic"


def _check_guardable(model: BaseAlgorithm) -> None:
    if isinstance(model.observation_space, gym.spaces.Dict):
        raise ConfigError("The TIPL guards need array observations, not a Dict space; attach "
                          "with guard=False.")
    if isinstance(model.action_space, gym.spaces.MultiDiscrete):
        raise ConfigError("The KL guard cannot compare MultiDiscrete action distributions; "
                          "attach with guard=False.")


def _guard_inputs(model: BaseAlgorithm, algo: str, kind: str,
                  recent_rollouts: RecentRolloutObservations | None) -> GuardInputs:
    """The network and the newest data each kind of part's guard measures on."""
    from tipl_sb3.guards import RecentTransitions

    policy: Any = model.policy
    if kind == "policy":
        assert recent_rollouts is not None
        rollouts = recent_rollouts
        discrete = isinstance(model.action_space, gym.spaces.Discrete)

        def surrogate() -> float:
            sample = rollouts.sample
            if sample is None:
                return -math.inf
            actions = sample.actions.long().flatten() if discrete else sample.actions
            with torch.no_grad():
                _, log_prob, _ = policy.evaluate_actions(sample.observations, actions)
                ratio = torch.exp(log_prob.flatten() - sample.log_prob.flatten())
                return float((ratio * sample.advantages.flatten()).mean())

        def value_targets() -> tuple[torch.Tensor, torch.Tensor]:
            sample = rollouts.sample
            if sample is None:  # no rollout yet: an empty batch, the jump is rejected
                empty = torch.empty(0, device=rollouts.tensor.device)
                return empty, empty
            return sample.observations, sample.returns

        return GuardInputs(lambda obs: policy.get_distribution(obs).distribution,
                           recent_rollouts.read, values=lambda obs: policy.predict_values(obs),
                           score=surrogate, value_targets=value_targets)
    recent = RecentTransitions(model)
    if kind == "critic":
        return GuardInputs(lambda obs, actions: policy.critic(obs, actions), recent.read)

    def observations() -> torch.Tensor:
        return recent.read().observations

    if kind == "q":
        return GuardInputs(lambda obs: policy.q_net(obs), observations)
    if algo == "sac":
        return GuardInputs(lambda obs: policy.actor(obs, deterministic=True), observations)
    return GuardInputs(lambda obs: policy.actor(obs), observations)


def _install(model: BaseAlgorithm, part: str, optimizer: torch.optim.Optimizer) -> None:
    owner: Any = model.policy if part == "policy" else getattr(model, part)
    owner.optimizer = optimizer


def saved_tipl_states(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The optimizer ``state_dict()`` s that ``model.save(path)`` stored, by part, for the
    parts whose state holds a ``"tipl"`` entry (saved while TIPL was attached)."""
    from stable_baselines3.common.save_util import load_from_zip_file

    _, params, _ = load_from_zip_file(Path(path), device="cpu", load_data=False)
    states: dict[str, dict[str, Any]] = {}
    for part, name in SAVED_OPTIMIZER.items():
        state: Any = params.get(name)
        if isinstance(state, dict) and "tipl" in state:
            states[part] = state
    return states


def env_id_of(model: BaseAlgorithm) -> str | None:
    """The registered id of the env ``model`` trains on (``None`` for an unregistered env or
    one the vectorised env does not tell)."""
    env = model.get_env()
    if env is None:
        return None
    try:
        spec = env.get_attr("spec", indices=[0])[0]
    except (AttributeError, IndexError, TypeError):
        return None
    return getattr(spec, "id", None)


def attach(model: BaseAlgorithm, predictor: Predictor | str | os.PathLike[str] = "default",
           config: JumpConfig | Mapping[str, Any] | None = None, *, guard: bool = True,
           guard_limit: float | None = None, value_limit: float | None = None,
           targets: Targets | None = None,
           resume: str | os.PathLike[str] | None = None) -> TIPLCallback:
    """Wrap the optimizer(s) of ``model`` in TIPLOptimizers and return the callback to pass to
    ``model.learn(callback=...)`` (PPO/A2C need it to jump; DQN/SAC/TD3 jump inside their
    optimizers' ``step()`` and need it only for ``mode="manual"``).

    * ``predictor``: ``"default"`` (the embedded predictor, ``linear`` if the install ships
      none), a registered name (``"linear"``), a checkpoint folder, or a predictor object.
    * ``config``: :class:`~tipl_opt.jumps.JumpConfig` fields overriding the defaults of
      :func:`jump_config`.
    * ``guard``/``guard_limit``: check every jump against the behaviour change (see
      :mod:`tipl_sb3.guards`; default limits per kind of part in
      :data:`tipl_opt.adapters.attachment.GUARDS`). A rejected jump restores
      the exact previous weights. ``value_limit``: PPO/A2C's value-head check (default
      :data:`tipl_opt.adapters.attachment.VALUE_LIMIT`).
    * ``targets``: which of SAC/TD3's optimizers get TIPL (default: ``"both"`` for SAC,
      ``"actor"`` for TD3, see :data:`tipl_opt.adapters.attachment.CRITIC_JUMPS_OFF_BY_DEFAULT`);
      for PPO/A2C (one optimizer over actor and critic) which parameters a jump moves
      (default ``"both"``); DQN takes only ``"both"``.
    * ``resume``: a zip written by ``model.save()`` while TIPL was attached: each optimizer
      continues that file's history, counters, step count and jump config (see :func:`load`).

    Only the parameters the optimizers own are ever written; target networks (DQN's
    ``q_net_target``, SAC/TD3's ``*_target``) move only through SB3's own updates.
    """
    setup = TIPLSetup(guard=guard, guard_limit=guard_limit, value_limit=value_limit,
                      targets=targets)
    return attach_setup(model, setup, predictor, config, resume=resume)


def attach_setup(model: BaseAlgorithm, setup: TIPLSetup,
                 predictor: Predictor | str | os.PathLike[str] | None = None,
                 config: JumpConfig | Mapping[str, Any] | None = None, *,
                 resume: str | os.PathLike[str] | None = None) -> TIPLCallback:
    """:func:`attach` from a whole :class:`~tipl_opt.adapters.TIPLSetup` (guard settings,
    targets; ``predictor``/``config`` default to the setup's ``predictor``/``jump``), as a
    collected run gets it: no field of the setup can be left behind."""
    predictor = setup.predictor if predictor is None else predictor
    config = setup.jump if config is None else config
    guard = setup.guard
    algo = algorithm_of(model)
    optimizers = owned_optimizers(model, algo)
    kinds = {part: part_kind(algo, part) for part in optimizers}
    parts = select_parts("SB3", algo, kinds, targets_of(setup, algo))
    if any(isinstance(opt, TIPLOptimizer) for opt in optimizers.values()):
        raise ConfigError("This model already has TIPL attached; keep using the callback "
                          "attach() returned (it works across learn() calls).")
    if guard:
        _check_guardable(model)
    if isinstance(predictor, os.PathLike):
        predictor = os.fspath(predictor)
    on_policy = algorithm_info(algo).on_policy
    attachment = Attachment("SB3", algo, on_policy=on_policy, setup=setup, config=config,
                            predictor=predictor, rollout=rollout_size(model, algo),
                            env_id=env_id_of(model))

    from tipl_sb3.callback import TIPLCallback
    from tipl_sb3.guards import RecentRolloutObservations

    recent = RecentRolloutObservations(model.device) if guard and on_policy else None
    specs = optimizer_specs(model, algo)
    for part in parts:
        attachment.wrap(part, kinds[part], optimizers[part], specs[part])
        if guard:
            attachment.set_guard(part, _guard_inputs(model, algo, kinds[part], recent))
    if resume is not None:
        _resume(attachment.optimizers, resume)
    for part, tipl in attachment.optimizers.items():
        _install(model, part, tipl)
    logger.info("TIPL attached: %r", attachment)
    return TIPLCallback(model, attachment, recent)


def _resume(optimizers: dict[str, TIPLOptimizer], path: str | os.PathLike[str]) -> None:
    states = saved_tipl_states(path)
    if not states:
        raise ConfigError(f"{os.fspath(path)} holds no TIPL state (saved without TIPL "
                          "attached); attach without resume= to start a fresh history.")
    for part, opt in optimizers.items():
        state = states.get(part)
        if state is None:
            logger.info("TIPL: %s has no saved TIPL state for the %s optimizer; starting fresh",
                        os.fspath(path), part)
            continue
        saved_name = state["tipl"].get("predictor")
        current = getattr(opt.predictor, "name", "?")
        if saved_name != current:
            logger.warning("TIPL: the %s history was recorded with predictor %r, continuing "
                           "with %r", part, saved_name, current)
        try:
            opt.load_state_dict(state)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"Cannot resume the {part} optimizer from {os.fspath(path)}: "
                              f"{exc}") from exc


def load(algorithm: type[ModelT], path: str | os.PathLike[str], *, env: Any = None,
         predictor: Predictor | str | os.PathLike[str] = "default", guard: bool = True,
         guard_limit: float | None = None, value_limit: float | None = None,
         targets: Targets | None = None, **load_kwargs: Any) -> tuple[ModelT, TIPLCallback]:
    """``algorithm.load(path, env=env, **load_kwargs)``, then :func:`attach` with
    ``resume=path``: the agent continues with its saved weights and optimizer moments, and
    TIPL with its saved history, counters and jump config. Continue with
    ``model.learn(steps, callback=callback, reset_num_timesteps=False)``.

    SB3 saves neither the env's state nor the random generators, nor the observations the
    PPO/A2C guard last saw: the first rollout boundary after loading is skipped when the
    saved history is not empty and a guard is on.
    """
    model = algorithm.load(Path(path), env=env, **load_kwargs)
    callback = attach(model, predictor, guard=guard, guard_limit=guard_limit,
                      value_limit=value_limit, targets=targets, resume=path)
    return model, callback
