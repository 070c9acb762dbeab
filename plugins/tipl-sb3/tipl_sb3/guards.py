"""Jump guards for SB3 agents, and where they get their observations from.

A guard (:class:`tipl_opt.guard.JumpGuard`) measures how much a candidate jump changes what the
agent does on a batch of recent observations:

* PPO/A2C: :class:`tipl_opt.guard.KLGuard` on ``policy.get_distribution(obs)``; the batch is
  kept by :class:`RecentRolloutObservations`, refreshed at every rollout end (the rollout buffer
  is already reset when the next rollout starts, where the jump happens);
* DQN: :class:`GreedyActionGuard`, the share of greedy actions that change;
* SAC/TD3 actor: :class:`ReplayActionDistanceGuard`, the mean distance between deterministic
  actions in the policy's [-1, 1] scale; critic: :class:`QChangeGuard`, the relative change of
  Q on recent (observation, action) pairs.

Off-policy guards read the newest transitions of the replay buffer (:class:`RecentTransitions`)
only when a jump asks for a reference, so an env step costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tipl_opt.guard import ActionDistanceGuard, KLGuard

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.buffers import RolloutBuffer
    from torch.distributions import Distribution

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
    """

    def __init__(self, device: torch.device, size: int = GUARD_BATCH) -> None:
        self.size = size
        self.tensor = torch.empty(0, device=device)

    def capture(self, buffer: RolloutBuffer) -> None:
        upper = buffer.buffer_size if buffer.full else buffer.pos
        obs = buffer.observations[:upper]
        obs = obs.reshape(-1, *obs.shape[2:])  # [steps * envs, *obs_shape]
        new = torch.as_tensor(obs[_spread(len(obs), self.size)], device=self.tensor.device)
        if len(new) < self.size and len(self.tensor):
            new = torch.cat([new, self.tensor[: self.size - len(new)].to(new.dtype)])
        self.tensor = new


class RolloutKLGuard(KLGuard):
    """:class:`~tipl_opt.guard.KLGuard` on the observations ``recent`` holds at each
    :meth:`reference`. ``distribution(obs)`` returns the policy's torch distribution."""

    def __init__(self, distribution: Callable[[torch.Tensor], Distribution],
                 recent: RecentRolloutObservations, limit: float = 0.02) -> None:
        super().__init__(distribution, recent.tensor, limit)
        self.recent = recent

    @property
    def ready(self) -> bool:
        """Whether a rollout has been observed (a jump can be checked)."""
        return self.recent.tensor.numel() > 0

    def reference(self) -> None:
        self.observations = self.recent.tensor
        super().reference()


@dataclass(frozen=True)
class Transitions:
    """A batch of stored transitions: observations ``[N, *obs_shape]`` (normalised as the agent
    sees them) and actions ``[N, *action_shape]`` (as stored: SAC/TD3 in [-1, 1])."""

    observations: torch.Tensor
    actions: torch.Tensor


class RecentTransitions:
    """Reads the newest ``size`` transitions of ``model.replay_buffer`` on demand.

    Nothing is copied until :meth:`read` is called (once per jump).
    """

    def __init__(self, model: BaseAlgorithm, size: int = GUARD_BATCH) -> None:
        self.model, self.size = model, size

    def read(self) -> Transitions:
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


class ReplayActionDistanceGuard(ActionDistanceGuard):
    """:class:`~tipl_opt.guard.ActionDistanceGuard` whose observations are the newest replay
    transitions, read at every :meth:`reference`. ``act(obs)`` returns actions ``[N, A]``."""

    def __init__(self, act: Callable[[torch.Tensor], torch.Tensor], recent: RecentTransitions,
                 limit: float = 0.1) -> None:
        super().__init__(act, torch.empty(0), limit)
        self.recent = recent

    def reference(self) -> None:
        self.observations = self.recent.read().observations
        super().reference()


class GreedyActionGuard:
    """Share of the newest replay observations whose greedy action ``argmax q_values(obs)``
    changes (0: none, 1: all). ``q_values(obs)`` returns ``[N, n_actions]``."""

    name = "greedy_change"

    def __init__(self, q_values: Callable[[torch.Tensor], torch.Tensor],
                 recent: RecentTransitions, limit: float = 0.1) -> None:
        self.q_values, self.recent, self.limit = q_values, recent, limit
        self._observations = torch.empty(0)
        self._old: torch.Tensor | None = None

    def reference(self) -> None:
        self._observations = self.recent.read().observations
        with torch.no_grad():
            self._old = self.q_values(self._observations).argmax(dim=-1)

    def measure(self) -> float:
        if self._old is None:
            raise RuntimeError("reference() must be called before measure()")
        if len(self._old) == 0:
            return math.inf
        with torch.no_grad():
            new = self.q_values(self._observations).argmax(dim=-1)
        return float((new != self._old).float().mean())


class QChangeGuard:
    """Relative change of a critic's Q-values on the newest replay transitions:
    ``mean |Q_new - Q_old| / mean |Q_old|`` over every Q-network of the critic.

    ``q_values(obs, actions)`` returns the critic's output: one tensor ``[N, 1]`` or a tuple of
    them (SB3's ``ContinuousCritic``)."""

    name = "q_change"

    def __init__(self, q_values: Callable[[torch.Tensor, torch.Tensor], Any],
                 recent: RecentTransitions, limit: float = 0.1) -> None:
        self.q_values, self.recent, self.limit = q_values, recent, limit
        self._batch: Transitions | None = None
        self._old = torch.empty(0)

    def _evaluate(self) -> torch.Tensor:
        assert self._batch is not None
        with torch.no_grad():
            out = self.q_values(self._batch.observations, self._batch.actions)
        return torch.cat(list(out), dim=-1) if isinstance(out, tuple | list) else out

    def reference(self) -> None:
        self._batch = self.recent.read()
        self._old = self._evaluate()

    def measure(self) -> float:
        if self._batch is None:
            raise RuntimeError("reference() must be called before measure()")
        if self._old.numel() == 0:
            return math.inf
        new = self._evaluate()
        scale = max(float(self._old.abs().mean()), 1e-6)
        return float((new - self._old).abs().mean()) / scale
