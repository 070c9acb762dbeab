"""Jump guards: how much does a candidate jump change what the policy does?

A guard is asked twice per jump: :meth:`JumpGuard.reference` on the current weights, then
:meth:`JumpGuard.measure` after each candidate is written into the parameters. A jump is accepted
when the measure is at most ``limit``; otherwise it is shortened (1, 1/2, 1/4 ...) or skipped.

The behaviour guards (:class:`KLGuard`, :class:`ActionDistanceGuard`,
:class:`GreedyActionGuard`, :class:`QChangeGuard`, :class:`ValueFitGuard`,
:class:`ValueGradGuard`, ...) measure on a batch: a tensor, or a zero-argument callable
returning one that is called at every :meth:`~JumpGuard.reference`, so each jump is checked on
the freshest data (an RL agent's newest rollout or replay transitions).
An empty batch (no rows) makes :meth:`~JumpGuard.measure` return ``math.inf``: the jump is
rejected, since nothing says it is safe.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, TypeAlias, runtime_checkable

import torch
from torch.distributions import Distribution, kl_divergence

Observations: TypeAlias = torch.Tensor | Callable[[], torch.Tensor]
"""Observations ``[N, *obs_shape]``, or a zero-argument callable returning them."""

ObservationActions: TypeAlias = (tuple[torch.Tensor, torch.Tensor]
                                 | Callable[[], tuple[torch.Tensor, torch.Tensor]])
"""``(observations [N, *obs_shape], actions [N, *action_shape])``, or a zero-argument callable
returning that pair."""

ObservationReturns: TypeAlias = (tuple[torch.Tensor, torch.Tensor]
                                 | Callable[[], tuple[torch.Tensor, torch.Tensor]])
"""``(observations [N, *obs_shape], returns [N])``, or a zero-argument callable returning that
pair."""


@runtime_checkable
class JumpGuard(Protocol):
    """Measures the behaviour change caused by a jump. ``limit`` is the trust region."""

    @property
    def name(self) -> str:
        """Short label of what is measured (shown in jump reports)."""
        ...

    @property
    def limit(self) -> float:
        """Largest accepted :meth:`measure`."""
        ...

    def reference(self) -> None:
        """Record the behaviour of the current (pre-jump) weights."""
        ...

    def measure(self) -> float:
        """Behaviour change of the weights now in the model relative to the reference."""
        ...


def _relative_change(old: torch.Tensor, new: torch.Tensor) -> float:
    """``mean |new - old| / max(mean |old|, 1e-6)`` (the value and Q critics' guards)."""
    return float((new - old).abs().mean()) / max(float(old.abs().mean()), 1e-6)


def _fresh(batch: Any) -> Any:
    """``batch()`` for a callable batch source, else ``batch`` itself."""
    return batch() if callable(batch) else batch


class _BatchGuard:
    """Shared reference/measure logic of the behaviour guards.

    A subclass says how to get the model inputs (:meth:`_inputs`: a tuple whose first entry has
    the batch rows), what the model does on them (:meth:`_behaviour`) and how far two behaviours
    are apart (:meth:`_change`). The inputs are read once per :meth:`reference` and reused by
    every :meth:`measure` of that jump.
    """

    name = "behaviour"

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._batch: tuple[torch.Tensor, ...] | None = None
        self._old: Any = None

    def _inputs(self) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def _behaviour(self, *inputs: torch.Tensor) -> Any:
        raise NotImplementedError

    def _change(self, old: Any, new: Any) -> float:
        raise NotImplementedError

    def reference(self) -> None:
        self._batch = self._inputs()
        self._old = None
        if self._batch[0].numel() > 0:
            with torch.no_grad():
                self._old = self._behaviour(*self._batch)

    def measure(self) -> float:
        if self._batch is None:
            raise RuntimeError("reference() must be called before measure()")
        if self._old is None:
            return math.inf  # empty batch: nothing to check the jump on
        with torch.no_grad():
            new = self._behaviour(*self._batch)
        return self._change(self._old, new)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, limit={self.limit:g})"


class _ObservationGuard(_BatchGuard):
    """A :class:`_BatchGuard` whose model input is a batch of observations ``[N, *obs_shape]``
    (:attr:`observations`: a tensor, or a callable returning one at each reference)."""

    def __init__(self, observations: Observations, limit: float) -> None:
        super().__init__(limit)
        self.observations = observations

    def _inputs(self) -> tuple[torch.Tensor, ...]:
        return (_fresh(self.observations),)


class _DistributionGuard(_ObservationGuard):
    """An :class:`_ObservationGuard` on a stochastic policy: ``distribution(obs)`` returns its
    action distribution for ``obs`` ``[N, *obs_shape]``."""

    def __init__(self, distribution: Callable[[torch.Tensor], Distribution],
                 observations: Observations, limit: float) -> None:
        super().__init__(observations, limit)
        self.distribution = distribution


class KLGuard(_DistributionGuard):
    """Mean KL(old || new) of a stochastic policy over a batch of observations.

    * ``distribution(obs)`` returns the policy's action distribution for ``obs``
      ``[N, *obs_shape]`` (batch shape ``[N]``, or ``[N, A]`` for independent action dimensions,
      whose KLs are summed);
    * ``observations``: ``[N, *obs_shape]``, or a callable returning them at each reference.
    """

    name = "kl"

    def __init__(self, distribution: Callable[[torch.Tensor], Distribution],
                 observations: Observations, limit: float = 0.02) -> None:
        super().__init__(distribution, observations, limit)

    def _behaviour(self, *inputs: torch.Tensor) -> Distribution:
        return self.distribution(*inputs)

    def _change(self, old: Distribution, new: Distribution) -> float:
        kl = kl_divergence(old, new)
        if kl.ndim > 1:
            kl = kl.sum(dim=-1)
        return float(kl.mean())


class ActionDistanceGuard(_ObservationGuard):
    """Mean L2 distance between deterministic actions before and after, over observations.

    * ``act(obs)`` returns actions ``[N, A]`` for observations ``[N, *obs_shape]``; pick
      ``limit`` in the action space's units (for actions scaled to [-1, 1], 0.1 is a tenth of
      the range);
    * ``observations``: ``[N, *obs_shape]``, or a callable returning them at each reference.
    """

    name = "action_distance"

    def __init__(self, act: Callable[[torch.Tensor], torch.Tensor],
                 observations: Observations, limit: float = 0.1) -> None:
        super().__init__(observations, limit)
        self.act = act

    def _behaviour(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.act(*inputs).float()

    def _change(self, old: torch.Tensor, new: torch.Tensor) -> float:
        return float((new - old).reshape(len(new), -1).norm(dim=-1).mean())


class GreedyActionGuard(_ObservationGuard):
    """Share of observations whose greedy action ``argmax_a Q(obs, a)`` changes, in [0, 1]
    (a discrete-action Q-learner such as DQN).

    * ``q_values(obs)`` returns Q ``[N, n_actions]`` for observations ``[N, *obs_shape]``;
    * ``observations``: ``[N, *obs_shape]``, or a callable returning them at each reference.
    """

    name = "greedy_change"

    def __init__(self, q_values: Callable[[torch.Tensor], torch.Tensor],
                 observations: Observations, limit: float = 0.1) -> None:
        super().__init__(observations, limit)
        self.q_values = q_values

    def _behaviour(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.q_values(*inputs).argmax(dim=-1)

    def _change(self, old: torch.Tensor, new: torch.Tensor) -> float:
        return float((new != old).float().mean())


class ValueChangeGuard(_ObservationGuard):
    """Relative change of a state-value critic over observations:
    ``mean |V_new - V_old| / max(mean |V_old|, 1e-6)``.

    * ``values(obs)`` takes observations ``[N, *obs_shape]`` and returns V ``[N]`` or
      ``[N, 1]`` (PPO/A2C's value head);
    * ``observations``: ``[N, *obs_shape]``, or a callable returning them at each reference.
    """

    name = "value_change"

    def __init__(self, values: Callable[[torch.Tensor], torch.Tensor],
                 observations: Observations, limit: float = 0.1) -> None:
        super().__init__(observations, limit)
        self.values = values

    def _behaviour(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.values(*inputs).reshape(-1)

    def _change(self, old: torch.Tensor, new: torch.Tensor) -> float:
        return _relative_change(old, new)


class _ReturnsGuard(_BatchGuard):
    """A guard on a state-value critic measured against the newest returns: ``values(obs)``
    and ``targets = (observations, returns)`` (or a callable returning that pair at each
    reference)."""

    def __init__(self, values: Callable[[torch.Tensor], torch.Tensor],
                 targets: ObservationReturns, limit: float = 1.0) -> None:
        super().__init__(limit)
        self.values, self.targets = values, targets

    def _inputs(self) -> tuple[torch.Tensor, ...]:
        obs, returns = _fresh(self.targets)
        return obs, returns


class ValueFitGuard(_ReturnsGuard):
    """How a jump changes a state-value critic's fit to the newest returns: the ratio of its
    RMS errors after and before, ``RMSE_new / RMSE_old`` (below 1: the jump fits them better),
    where ``RMSE = sqrt(mean (R - V(obs))^2)`` over the newest rollout's observations and
    returns. A limit of 1 accepts no rise of the error; 1.1 a rise of a tenth.

    :class:`ValueChangeGuard` measures a move against the size of the values; on a task whose
    values are large and nearly equal across states (Reacher-v5: about -60, spread 0.1) it lets
    a jump move them by many times the critic's own error, and an extrapolated critic then
    overshoots the level it was fitting and the advantages follow it. This guard asks what the
    jump does to the fit instead: a jump that carries the critic on towards its targets lowers
    the error and is accepted whole; one that overshoots raises it and is shortened. Measured
    on Reacher-v5 (SB3 PPO, 20 seeds) it cut most jumps after the first 9,000 env steps and did
    not raise the return (docs/benchmarks.md): an option, off by default.

    * ``values(obs)`` takes observations ``[N, *obs_shape]`` and returns V ``[N]`` or ``[N, 1]``;
    * ``targets``: ``(observations [N, *obs_shape], returns [N])``, or a callable returning
      that pair at each reference (an on-policy agent's newest rollout and its value targets).
    """

    name = "value_fit"

    def _behaviour(self, *inputs: torch.Tensor) -> float:
        obs, returns = inputs
        values = self.values(obs).reshape(-1).float()
        return float((returns.reshape(-1).float() - values).pow(2).mean().sqrt())

    def _change(self, old: float, new: float) -> float:
        return new / max(old, 1e-8)


def _leaf_parameters(output: torch.Tensor) -> list[torch.Tensor]:
    """The leaf tensors requiring grad that ``output`` was computed from (its graph's
    ``AccumulateGrad`` nodes): the parameters of the network that made it."""
    seen: set[Any] = set()
    found: list[torch.Tensor] = []
    stack = [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            found.append(variable)
        stack.extend(child for child, _ in node.next_functions)
    return found


class ValueGradGuard(_ReturnsGuard):
    """How a jump changes the size of a state-value critic's gradient on the newest returns:
    the ratio ``|g_new| / |g_old|`` of the norms of ``grad_theta mean (R - V(obs))^2`` over
    the parameters ``theta`` that V is computed from, after and before the jump. A limit of 1
    accepts no rise.

    Why the gradient and not the error (:class:`ValueFitGuard`): SB3's PPO clips the norm of
    the actor's and the critic's gradients together (``max_grad_norm``), and the critic's part
    is 50-400 times the actor's early in a run, so the critic's gradient sets how far the
    actor's next updates go. A jump that leaves the critic with a larger gradient shrinks the
    actor's updates for as long as it stays large; one that brings the critic to its targets
    lets them grow. Measured on SB3 PPO Reacher-v5 (docs/benchmarks.md, "The critic's gradient
    and the actor's step"): the default's jumps kept the critic's gradient at 56-81 from 12,000
    env steps on (the base's: 5-16), the clip factor at 0.04 instead of 0.07-0.12.

    * ``values(obs)`` takes observations ``[N, *obs_shape]`` and returns V ``[N]`` or ``[N, 1]``
      with its graph (not under ``torch.no_grad``);
    * ``targets``: ``(observations [N, *obs_shape], returns [N])``, or a callable returning
      that pair at each reference (an on-policy agent's newest rollout and its value targets).

    Cost: one forward and backward pass of the critic over the batch per measure; the
    parameters' ``.grad`` is left untouched.
    """

    name = "value_grad"

    def _behaviour(self, *inputs: torch.Tensor) -> float:
        obs, returns = inputs
        with torch.enable_grad():
            values = self.values(obs).reshape(-1).float()
            loss = (returns.reshape(-1).float() - values).pow(2).mean()
            params = _leaf_parameters(loss)
            if not params:
                raise ValueError("the value-gradient check needs V computed with its graph "
                                 "from parameters that require grad")
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        return math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None))

    def _change(self, old: float, new: float) -> float:
        return new / max(old, 1e-12)


class EntropyDropGuard(_DistributionGuard):
    """How much more certain a jump makes a stochastic policy: the drop of its mean entropy
    over a batch of observations, in nats per action dimension (``max(0, H_old - H_new)``; a
    rise counts as 0).

    A KL trust region does not see this: sharpening a distribution costs little KL, and the
    learning path of a policy that is converging too early (Acrobot's PPO runs that settle on
    one swing and never reach the goal) is a steady entropy fall a jump extrapolates; a jump
    every 2 snapshots then makes the policy deterministic four times as fast as training
    would, and it stays stuck.

    * ``distribution(obs)``: the policy's action distribution for ``obs`` ``[N, *obs_shape]``
      (batch shape ``[N]`` or ``[N, A]``; an ``Independent`` one's entropy, summed over its
      event, is divided by the event size);
    * ``observations``: ``[N, *obs_shape]``, or a callable returning them at each reference.
    """

    name = "entropy_drop"

    def __init__(self, distribution: Callable[[torch.Tensor], Distribution],
                 observations: Observations, limit: float = 0.01) -> None:
        super().__init__(distribution, observations, limit)

    def _behaviour(self, *inputs: torch.Tensor) -> float:
        dist = self.distribution(*inputs)
        per_event = max(1, math.prod(dist.event_shape))
        return float(dist.entropy().mean()) / per_event

    def _change(self, old: float, new: float) -> float:
        return max(0.0, old - new)


class AllOfGuard:
    """Several guards at once, for a jump that moves several networks (PPO/A2C's actor and
    value head share one optimizer): the jump must fit every guard's trust region.

    ``scopes`` (one per guard, optional) name the parameter role each guard watches (PPO's KL:
    ``actor``, its value check: ``critic``), for the ``split`` acceptance rule.

    :meth:`measure` is the largest share of its limit any guard uses, expressed in the first
    guard's units (``first.limit x max_i measure_i / limit_i``), so with ``limit = first.limit``
    the jump is accepted exactly when every guard accepts it, and a report reads like the first
    guard's (a KL, say) whenever that one is the tightest.
    """

    def __init__(self, first: JumpGuard, *others: JumpGuard,
                 scopes: tuple[str | None, ...] | None = None) -> None:
        if any(g.limit <= 0 for g in others):
            raise ValueError("the guards after the first need a positive limit")
        self.guards = (first, *others)
        self.scopes = scopes if scopes is not None else (None,) * len(self.guards)
        if len(self.scopes) != len(self.guards):
            raise ValueError(f"{len(self.scopes)} scopes for {len(self.guards)} guards")
        self.name = "+".join(g.name for g in self.guards)
        self.limit = first.limit
        self._last: list[float] = []

    def reference(self) -> None:
        self._last = []
        for g in self.guards:
            g.reference()

    def measure(self) -> float:
        self._last = [g.measure() for g in self.guards]
        first, *others = self._last
        return max(first, *(self.limit * v / g.limit
                            for v, g in zip(others, self.guards[1:], strict=True)))

    def last_parts(self) -> list[tuple[str, str | None, float, float]]:
        """``(name, scope, limit, measure)`` of each guard at the last :meth:`measure`; the
        scope is the parameter role that guard watches (``None``: not known), which lets the
        ``split`` acceptance rule shorten each network's move on its own."""
        return [(g.name, scope, g.limit, v)
                for g, scope, v in zip(self.guards, self.scopes, self._last, strict=True)]

    def __repr__(self) -> str:
        return f"AllOfGuard({', '.join(map(repr, self.guards))})"


class _Wrapping:
    """A guard around another (``self.guard``) that passes on a composite guard's
    ``last_parts()`` (:class:`AllOfGuard`), which the ``split`` rule looks for."""

    guard: JumpGuard

    def __getattr__(self, name: str) -> Any:
        if name == "last_parts" and "guard" in self.__dict__:
            return getattr(self.guard, name)
        raise AttributeError(name)


class WithScore(_Wrapping):
    """A guard that also says how *good* the weights are: ``guard`` decides what is allowed,
    ``score()`` (higher is better, computed on the weights now in the model) which allowed
    length is best; the ``search`` acceptance rule uses it (a
    :class:`~tipl_opt.acceptance.ScoredGuard`). For PPO/A2C the adapters' score is the
    surrogate objective on the newest rollout: mean of ``pi_new(a|s) / pi_old(a|s) x A``."""

    def __init__(self, guard: JumpGuard, score: Callable[[], float]) -> None:
        self.guard, self._score = guard, score
        self.name, self.limit = guard.name, guard.limit

    def reference(self) -> None:
        self.guard.reference()

    def measure(self) -> float:
        return self.guard.measure()

    def score(self) -> float:
        return float(self._score())

    def __repr__(self) -> str:
        return f"WithScore({self.guard!r})"


def over_limit(guard: JumpGuard, value: float | None = None) -> tuple[str, ...]:
    """Which trust regions the last :meth:`~JumpGuard.measure` of ``guard`` exceeded: the
    names of a composite guard's parts over their own limits (its ``last_parts()``), else
    ``guard.name`` when ``value`` (that measure) is above ``guard.limit``."""
    last_parts = getattr(guard, "last_parts", None)
    if callable(last_parts):
        return tuple(name for name, _, limit, v in last_parts() if not v <= limit)
    return (guard.name,) if value is not None and not value <= guard.limit else ()


class BindingLog(_Wrapping):
    """A guard as the acceptance rule sees it during one jump: every call goes to ``guard``,
    and each measure above a trust region adds that region's name to :attr:`binding` (in the
    order first met). The optimizer reports it, so a jump report says *what* shortened or
    rejected the move (``kl``, ``value_change``...). Build one with :func:`log_binding`."""

    def __init__(self, guard: JumpGuard) -> None:
        self.guard, self.name, self.limit = guard, guard.name, guard.limit
        self.binding: list[str] = []

    def reference(self) -> None:
        self.guard.reference()

    def measure(self) -> float:
        value = self.guard.measure()
        for name in over_limit(self.guard, value):
            if name not in self.binding:
                self.binding.append(name)
        return value


class _ScoredBindingLog(BindingLog):
    def score(self) -> float:
        return float(self.guard.score())  # type: ignore[attr-defined]


def log_binding(guard: JumpGuard) -> BindingLog:
    """``guard`` wrapped in a :class:`BindingLog`, keeping its ``score()`` when it has one (so
    the ``search`` rule still sees a scored guard)."""
    return (_ScoredBindingLog(guard) if callable(getattr(guard, "score", None))
            else BindingLog(guard))


def _q_columns(out: torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
    """A critic's output as ``[N, n_q]``: ``[N]`` or ``[N, 1]``, or a tuple of those (one per
    Q-network), side by side."""
    parts = list(out) if isinstance(out, tuple | list) else [out]
    return torch.cat([q.reshape(len(q), -1) for q in parts], dim=-1)


class QChangeGuard(_BatchGuard):
    """Relative change of a critic's Q-values on (observation, action) pairs:
    ``mean |Q_new - Q_old| / max(mean |Q_old|, 1e-6)``, over every Q-network of the critic.

    * ``q_values(obs, actions)`` takes observations ``[N, *obs_shape]`` and actions
      ``[N, *action_shape]`` and returns Q ``[N]`` or ``[N, 1]``, or a tuple of them (one per
      Q-network, like SB3's ``ContinuousCritic``);
    * ``batch``: ``(observations, actions)``, or a callable returning that pair at each
      reference.
    """

    name = "q_change"

    def __init__(self, q_values: Callable[[torch.Tensor, torch.Tensor], Any],
                 batch: ObservationActions, limit: float = 0.1) -> None:
        super().__init__(limit)
        self.q_values, self.batch = q_values, batch

    def _inputs(self) -> tuple[torch.Tensor, ...]:
        observations, actions = _fresh(self.batch)
        return observations, actions

    def _behaviour(self, *inputs: torch.Tensor) -> torch.Tensor:
        return _q_columns(self.q_values(*inputs))

    def _change(self, old: torch.Tensor, new: torch.Tensor) -> float:
        return _relative_change(old, new)


class LossGuard:
    """Relative increase of a loss ``closure()`` (plain supervised use): ``(new - old) / |old|``.
    Its :meth:`score` is minus the loss last measured, so the ``search`` acceptance rule keeps
    the length with the lowest loss."""

    name = "loss"

    def __init__(self, closure: Callable[[], torch.Tensor | float], limit: float = 0.05) -> None:
        self.closure, self.limit = closure, limit
        self._old = float("nan")
        self._new = float("nan")

    def reference(self) -> None:
        with torch.no_grad():
            self._old = float(self.closure())

    def measure(self) -> float:
        with torch.no_grad():
            new = float(self.closure())
        self._new = new
        if not math.isfinite(new):
            return float("inf")
        return (new - self._old) / max(abs(self._old), 1e-12)

    def score(self) -> float:
        """Minus the loss of the weights last measured."""
        return -self._new if math.isfinite(self._new) else -math.inf


__all__ = [
    "ActionDistanceGuard",
    "AllOfGuard",
    "BindingLog",
    "GreedyActionGuard",
    "JumpGuard",
    "KLGuard",
    "LossGuard",
    "ObservationActions",
    "Observations",
    "QChangeGuard",
    "ValueChangeGuard",
    "WithScore",
    "log_binding",
    "over_limit",
]
