"""Jump guards: how much does a candidate jump change what the policy does?

A guard is asked twice per jump: :meth:`JumpGuard.reference` on the current weights, then
:meth:`JumpGuard.measure` after each candidate is written into the parameters. A jump is accepted
when the measure is at most ``limit``; otherwise it is shortened (1, 1/2, 1/4 ...) or skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch.distributions import Distribution, kl_divergence


@runtime_checkable
class JumpGuard(Protocol):
    """Measures the behaviour change caused by a jump. ``limit`` is the trust region."""

    limit: float
    name: str

    def reference(self) -> None:
        """Record the behaviour of the current (pre-jump) weights."""
        ...

    def measure(self) -> float:
        """Behaviour change of the weights now in the model relative to the reference."""
        ...


class KLGuard:
    """Mean KL(old || new) of a stochastic policy over a batch of observations.

    ``distribution(obs)`` returns the policy's action distribution for ``obs`` [N, ...].
    """

    name = "kl"

    def __init__(self, distribution: Callable[[torch.Tensor], Distribution],
                 observations: torch.Tensor, limit: float = 0.02) -> None:
        self.distribution, self.observations, self.limit = distribution, observations, limit
        self._old: Distribution | None = None

    def reference(self) -> None:
        with torch.no_grad():
            self._old = self.distribution(self.observations)

    def measure(self) -> float:
        if self._old is None:
            raise RuntimeError("reference() must be called before measure()")
        with torch.no_grad():
            kl = kl_divergence(self._old, self.distribution(self.observations))
        if kl.ndim > 1:
            kl = kl.sum(dim=-1)
        return float(kl.mean())


class ActionDistanceGuard:
    """Mean L2 distance between deterministic actions before and after, over observations.

    ``act(obs)`` returns actions [N, A]; pick ``limit`` in the action space's units (for actions
    scaled to [-1, 1], 0.1 is a tenth of the range).
    """

    name = "action_distance"

    def __init__(self, act: Callable[[torch.Tensor], torch.Tensor], observations: torch.Tensor,
                 limit: float = 0.1) -> None:
        self.act, self.observations, self.limit = act, observations, limit
        self._old: torch.Tensor | None = None

    def reference(self) -> None:
        with torch.no_grad():
            self._old = self.act(self.observations).float()

    def measure(self) -> float:
        if self._old is None:
            raise RuntimeError("reference() must be called before measure()")
        with torch.no_grad():
            new = self.act(self.observations).float()
        return float((new - self._old).reshape(len(new), -1).norm(dim=-1).mean())


class LossGuard:
    """Relative increase of a loss ``closure()`` (plain supervised use): ``(new - old) / |old|``."""

    name = "loss"

    def __init__(self, closure: Callable[[], torch.Tensor | float], limit: float = 0.05) -> None:
        self.closure, self.limit = closure, limit
        self._old = float("nan")

    def reference(self) -> None:
        with torch.no_grad():
            self._old = float(self.closure())

    def measure(self) -> float:
        with torch.no_grad():
            new = float(self.closure())
        if not torch.isfinite(torch.tensor(new)):
            return float("inf")
        return (new - self._old) / max(abs(self._old), 1e-12)
