"""Where the SB3 jump guards get their observations from.

A guard (:class:`tipl_opt.guard.JumpGuard`) measures how much a candidate jump changes what the
agent does on a batch of recent observations, read afresh at every jump:

* PPO/A2C: :class:`tipl_opt.guard.KLGuard` on ``policy.get_distribution(obs)``; the batch is
  kept by :class:`RecentRolloutObservations`, refreshed at every rollout end (the rollout buffer
  is already reset when the next rollout starts, where the jump happens);
* DQN: :class:`tipl_opt.guard.GreedyActionGuard`, the share of greedy actions that change;
* SAC/TD3 actor: :class:`tipl_opt.guard.ActionDistanceGuard`, the mean distance between
  deterministic actions in the policy's [-1, 1] scale; critic:
  :class:`tipl_opt.guard.QChangeGuard`, the relative change of Q on recent (observation, action)
  pairs.

Off-policy guards read the newest transitions of the replay buffer (:meth:`RecentTransitions.read`)
only when a jump asks for a reference, so an env step costs nothing. Until a batch exists (no
rollout or transition seen yet) a guard measures ``inf``: the jump is rejected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.buffers import RolloutBuffer

GUARD_BATCH = 512
"""Observations a guard measures on, at most."""


def _spread(rows: int, size: int) -> np.ndarray:
    """``size`` evenly spaced indices into ``rows`` rows, the newest row always included."""
    if rows <= size:
        return np.arange(rows)
    return np.linspace(0, rows - 1, size).round().astype(np.int64)


class RecentRolloutObservations:
    """The newest observations of an on-policy agent's rollouts, at most ``size`` of them.

    :meth:`capture` (at a rollout end) puts the rollout's observations first (evenly spaced
    if it holds more than ``size``) and tops them up with earlier rollouts' (A2C's 5-step
    rollouts are short). Observations are as the policy sees them (after ``VecNormalize``).
    ``tensor`` is ``[N, *obs_shape]`` on the model's device; empty until the first capture.
    :meth:`read` is the batch source of the KL guard.
    """

    def __init__(self, device: torch.device, size: int = GUARD_BATCH) -> None:
        self.size = size
        self.tensor = torch.empty(0, device=device)
        self.sample: RolloutSample | None = None

    def capture(self, buffer: RolloutBuffer) -> None:
        upper = buffer.buffer_size if buffer.full else buffer.pos
        obs = buffer.observations[:upper]
        obs = obs.reshape(-1, *obs.shape[2:])  # [steps * envs, *obs_shape]
        index = _spread(len(obs), self.size)
        device = self.tensor.device

        def rows(array: np.ndarray) -> torch.Tensor:
            flat = array[:upper].reshape(len(obs), *array.shape[2:])
            return torch.as_tensor(flat[index], device=device)

        advantages = rows(buffer.advantages).float()
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        self.sample = RolloutSample(rows(buffer.observations), rows(buffer.actions),
                                    rows(buffer.log_probs).float(), advantages,
                                    rows(buffer.returns).float().flatten())
        new = torch.as_tensor(obs[index], device=device)
        if len(new) < self.size and len(self.tensor):
            new = torch.cat([new, self.tensor[: self.size - len(new)].to(new.dtype)])
        self.tensor = new

    def read(self) -> torch.Tensor:
        """The observations kept now, ``[N, *obs_shape]`` (``N = 0`` before any capture)."""
        return self.tensor

    @property
    def ready(self) -> bool:
        """Whether a rollout has been captured (a jump can be checked)."""
        return self.tensor.numel() > 0


class RolloutSample(NamedTuple):
    """The newest rollout's observations, actions, log-probabilities under the weights that
    collected it, normalised advantages (``[N, ...]`` each): what the PPO surrogate is computed
    on; and its returns ``[N]`` (the value head's targets: advantages plus the values at
    collection), what the value-fit check compares the value head with."""

    observations: torch.Tensor
    actions: torch.Tensor
    log_prob: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


class Transitions(NamedTuple):
    """A batch of stored transitions: observations ``[N, *obs_shape]`` (normalised as the agent
    sees them) and actions ``[N, *action_shape]`` (as stored: SAC/TD3 in [-1, 1]). A pair, as
    :class:`tipl_opt.guard.QChangeGuard` takes it."""

    observations: torch.Tensor
    actions: torch.Tensor


class RecentTransitions:
    """Reads the newest ``size`` transitions of ``model.replay_buffer`` on demand.

    Nothing is copied until :meth:`read` is called (once per jump, by the guard's reference).
    """

    def __init__(self, model: BaseAlgorithm, size: int = GUARD_BATCH) -> None:
        self.model, self.size = model, size

    def read(self) -> Transitions:
        """The transitions of the newest ``size // n_envs`` env steps (at least one) of every
        env, or all stored if fewer; ``N = 0`` while the buffer is empty."""
        buffer = self.model.replay_buffer  # type: ignore[attr-defined]
        stored = buffer.buffer_size if buffer.full else buffer.pos
        count = min(self.size // buffer.n_envs or 1, stored)
        rows = (np.arange(buffer.pos - count, buffer.pos)) % buffer.buffer_size
        obs = buffer.observations[rows].reshape(-1, *buffer.obs_shape)
        actions = buffer.actions[rows].reshape(count * buffer.n_envs, -1)
        normalizer = self.model.get_vec_normalize_env()
        if normalizer is not None:
            obs = normalizer.normalize_obs(obs)
        device = self.model.device
        return Transitions(torch.as_tensor(obs, device=device),
                           torch.as_tensor(actions, device=device))
