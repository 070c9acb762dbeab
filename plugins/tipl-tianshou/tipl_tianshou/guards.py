"""The recent transitions the Tianshou jump guards measure on.

A guard (:class:`tipl_opt.guard.JumpGuard`) measures how much a candidate jump changes what the
agent does on a batch of recent observations, read afresh at every jump
(:mod:`tipl_tianshou.attachment` builds them):

* PPO: :class:`tipl_opt.guard.KLGuard` on the policy's action distribution (Categorical over
  the actor's probabilities, or the diagonal Normal for Box actions); with a value-fit limit,
  :class:`tipl_opt.guard.ValueFitGuard` on the newest rollout's returns
  (:class:`RolloutReturns`);
* DQN: :class:`tipl_opt.guard.GreedyActionGuard`, the share of greedy actions that change;
* SAC actor: :class:`tipl_opt.guard.ActionDistanceGuard` on the deterministic action
  ``tanh(mean)``, in the policy's [-1, 1] scale; SAC critic:
  :class:`tipl_opt.guard.QChangeGuard`, the relative change of Q on recent (observation,
  action) pairs.

Where the batch comes from: an on-policy trainer empties its buffer right after each update,
before the rollout boundary where the jump happens, so :class:`RolloutCollector` keeps the
newest transitions of each collect (:attr:`RolloutCollector.last_batch`). Off-policy guards read
the replay buffer (:func:`newest_transitions`) only when a jump asks for a reference, so an env
step costs nothing. An empty batch makes a guard measure ``inf``: the jump is rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from tianshou.data import Collector, ReplayBuffer

GUARD_BATCH = 256
"""Transitions a guard measures on, at most (the newest ones)."""


class GuardBatch(NamedTuple):
    """Observations [N, *obs_shape] (float32) and the actions taken there [N, *act_shape]
    (float32; the policy's own action scale, as stored in the buffer). A pair, as
    :class:`tipl_opt.guard.QChangeGuard` takes it; ``N`` is ``len(batch.obs)``."""

    obs: torch.Tensor
    act: torch.Tensor


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


class EpisodeCollector(Collector):
    """A Tianshou ``Collector`` that hands the returns of the episodes each ``collect()``
    finished to :attr:`on_returns` (the TIPL return watchdog; set by
    :meth:`~tipl_tianshou.attachment.TIPLAttachment.bind`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_returns: Callable[[list[float]], None] | None = None

    def collect(self, *args: Any, **kwargs: Any) -> Any:
        stats = super().collect(*args, **kwargs)
        if self.on_returns is not None:
            self.on_returns([float(r) for r in np.asarray(stats.returns).reshape(-1)])
        return stats


class RolloutCollector(EpisodeCollector):
    """An :class:`EpisodeCollector` that also keeps the newest transitions of its last
    ``collect()`` (:attr:`last_batch`, at most ``guard_batch`` of them) for the jump at the next
    rollout boundary, after the on-policy trainer has emptied the buffer."""

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


class RolloutReturns:
    """The newest rollout's observations and value targets, as an on-policy actor-critic
    computes them (:meth:`record`, installed around the algorithm's
    ``_add_returns_and_advantages``): :attr:`targets` is ``(observations [N, *obs_shape],
    returns [N])``, both float32, the newest ``size`` transitions (``N = 0`` before the first
    update). The returns are in the critic's own scale (scaled when the algorithm scales
    returns)."""

    def __init__(self, size: int = GUARD_BATCH) -> None:
        self.size = size
        self.targets: tuple[torch.Tensor, torch.Tensor] = (torch.empty(0), torch.empty(0))

    def record(self, batch: Any) -> None:
        """Keep the newest rows of a batch that carries ``obs`` and ``returns``."""
        device = batch.returns.device if isinstance(batch.returns, torch.Tensor) else "cpu"
        obs = torch.as_tensor(np.asarray(batch.obs[-self.size:]), dtype=torch.float32,
                              device=device)
        returns = torch.as_tensor(batch.returns[-self.size:], dtype=torch.float32,
                                  device=device).flatten()
        self.targets = (obs, returns)

    def install(self, algorithm: Any) -> None:
        """Record every batch ``algorithm._add_returns_and_advantages`` returns (PPO and A2C
        call it before each update; PPO again with ``recompute_advantage``: the last counts)."""
        inner = algorithm._add_returns_and_advantages

        def add_returns_and_advantages(*args: Any, **kwargs: Any) -> Any:
            batch = inner(*args, **kwargs)
            self.record(batch)
            return batch

        algorithm._add_returns_and_advantages = add_returns_and_advantages

    def read(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:attr:`targets` (the value-fit guard's batch source)."""
        return self.targets
