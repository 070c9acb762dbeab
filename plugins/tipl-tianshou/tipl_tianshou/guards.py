"""Jump guards for Tianshou agents, and the recent transitions they measure on.

A guard (:class:`tipl_opt.guard.JumpGuard`) measures how much a candidate jump changes what the
agent does on a batch of recent observations:

* PPO: :class:`tipl_opt.guard.KLGuard` on the policy's action distribution (Categorical over
  the actor's probabilities, or the diagonal Normal for Box actions);
* DQN: :class:`GreedyActionGuard`, the share of greedy actions that change;
* SAC actor: :class:`tipl_opt.guard.ActionDistanceGuard` on the deterministic action
  ``tanh(mean)``, in the policy's [-1, 1] scale; SAC critic: :class:`QChangeGuard`, the relative
  change of Q on recent (observation, action) pairs.

Where the batch comes from: an on-policy trainer empties its buffer right after each update,
before the rollout boundary where the jump happens, so :class:`RolloutCollector` keeps the
newest observations of each collect. Off-policy guards read the replay buffer only when a jump
asks for a reference (:class:`FreshBatchGuard` with :func:`newest_transitions`), so an env
step costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tianshou.data import Collector, ReplayBuffer

from tipl_opt.guard import JumpGuard

GUARD_BATCH = 256
"""Transitions a guard measures on, at most (the newest ones)."""


@dataclass(frozen=True)
class GuardBatch:
    """Observations [N, *obs_shape] (float32) and the actions taken there [N, *act_shape]
    (float32; the policy's own action scale, as stored in the buffer)."""

    obs: torch.Tensor
    act: torch.Tensor

    def __len__(self) -> int:
        return len(self.obs)


EMPTY = GuardBatch(torch.empty(0), torch.empty(0))


def newest_transitions(buffer: ReplayBuffer, size: int = GUARD_BATCH,
                       device: torch.device | str = "cpu") -> GuardBatch:
    """The newest ``size`` transitions of ``buffer`` (all of them if it holds fewer)."""
    indices = buffer.sample_indices(0)[-size:]  # oldest to newest
    if len(indices) == 0:
        return EMPTY
    obs = np.asarray(buffer.obs[indices])
    act = np.asarray(buffer.act[indices])
    return GuardBatch(torch.as_tensor(obs, dtype=torch.float32, device=device),
                      torch.as_tensor(act, dtype=torch.float32, device=device))


class RolloutCollector(Collector):
    """A Tianshou ``Collector`` that keeps the newest transitions of its last ``collect()``
    (:attr:`last_batch`, at most ``guard_batch`` of them) for the jump at the next rollout
    boundary, after the on-policy trainer has emptied the buffer."""

    def __init__(self, *args: Any, guard_batch: int = GUARD_BATCH, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard_batch = guard_batch
        self.last_batch = EMPTY

    def collect(self, *args: Any, **kwargs: Any) -> Any:
        stats = super().collect(*args, **kwargs)
        self.last_batch = newest_transitions(self.buffer, self.guard_batch)
        return stats

    @property
    def last_observations(self) -> torch.Tensor:
        """Observations of :attr:`last_batch`: [N, *obs_shape] float32 (N = 0 before the
        first collect)."""
        return self.last_batch.obs


class GreedyActionGuard:
    """Share of observations whose greedy action (argmax of Q) changes; in [0, 1].

    ``q_values(obs)`` returns Q [N, num_actions]."""

    name = "greedy_action_change"

    def __init__(self, q_values: Callable[[torch.Tensor], torch.Tensor],
                 observations: torch.Tensor, limit: float = 0.1) -> None:
        self.q_values, self.observations, self.limit = q_values, observations, limit
        self._old: torch.Tensor | None = None

    def reference(self) -> None:
        with torch.no_grad():
            self._old = self.q_values(self.observations).argmax(dim=-1)

    def measure(self) -> float:
        if self._old is None:
            raise RuntimeError("reference() must be called before measure()")
        with torch.no_grad():
            new = self.q_values(self.observations).argmax(dim=-1)
        return float((new != self._old).float().mean())


class QChangeGuard:
    """Relative change of a critic's Q on (observation, action) pairs:
    ``mean |Q_new - Q_old| / mean |Q_old|``.

    ``q(obs, act)`` returns Q [N, 1] or [N]."""

    name = "q_change"

    def __init__(self, q: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 observations: torch.Tensor, actions: torch.Tensor, limit: float = 0.1) -> None:
        self.q, self.observations, self.actions, self.limit = q, observations, actions, limit
        self._old: torch.Tensor | None = None

    def reference(self) -> None:
        with torch.no_grad():
            self._old = self.q(self.observations, self.actions).reshape(-1)

    def measure(self) -> float:
        if self._old is None:
            raise RuntimeError("reference() must be called before measure()")
        with torch.no_grad():
            new = self.q(self.observations, self.actions).reshape(-1)
        scale = float(self._old.abs().mean().clamp_min(1e-8))
        return float((new - self._old).abs().mean()) / scale


class FreshBatchGuard:
    """Gives ``inner`` a fresh batch from ``source()`` before every reference, then measures
    with it. ``inner`` has an ``observations`` attribute (and ``actions``, like
    :class:`QChangeGuard`, if it needs them). An empty batch makes the measure NaN, so the jump
    is rejected."""

    def __init__(self, inner: JumpGuard, source: Callable[[], GuardBatch]) -> None:
        self.inner, self.source = inner, source
        self.name: str = inner.name
        self.limit: float = inner.limit
        self._empty = True

    def reference(self) -> None:
        batch = self.source()
        self._empty = len(batch) == 0
        if self._empty:
            return
        inner: Any = self.inner
        inner.observations = batch.obs
        if hasattr(inner, "actions"):
            inner.actions = batch.act
        self.inner.reference()

    def measure(self) -> float:
        return math.nan if self._empty else self.inner.measure()

    def __repr__(self) -> str:
        return f"FreshBatchGuard({self.name}, limit={self.limit:g})"
