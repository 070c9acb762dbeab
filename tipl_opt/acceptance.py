"""*Whether and how far* :class:`~tipl_opt.optimizer.TIPLOptimizer` moves along a predicted
jump: the acceptance rule.

The optimizer hands a rule a :class:`Candidate`, the predicted move from the current weights,
which the rule can try at any length (``candidate.write(0.5)`` puts the weights half way), and
the jump's guard (:class:`~tipl_opt.guard.JumpGuard`, already referenced on the current weights;
``None``: no guard). The rule returns a :class:`Decision`; the optimizer then makes the weights
hold exactly that fraction of the move (0: the exact previous weights).

Rules are registered by name through the ``tipl_register_acceptance_rules`` hook, so a plugin
can add one; :class:`Backtracking` (``"backtrack"``) is the default. A custom rule::

    class Greedy:
        name = "greedy"
        def __init__(self, config): self.config = config
        def decide(self, candidate, guard):
            best = (math.inf, 0.0)
            for f in (0.5, 1.0, 2.0):
                candidate.write(f)
                best = min(best, (guard.measure() if guard else 0.0, -f))
            return Decision(fraction=-best[1], guard=best[0])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tipl_opt.errors import ConfigError
from tipl_opt.guard import JumpGuard
from tipl_opt.hookspecs import hookimpl
from tipl_opt.jumps import AcceptanceConfig


@runtime_checkable
class Candidate(Protocol):
    """A predicted move ``dtheta`` [P] from the start weights ``theta`` [P] (both flat, in the
    optimizer's parameter order), written into the live parameters on request."""

    @property
    def relative_size(self) -> float:
        """``|dtheta| / |theta|`` of the whole (scaled) move."""
        ...

    @property
    def roles(self) -> frozenset[str]:
        """The roles of the moved parameters (``actor``, ``critic``...: their specs')."""
        ...

    def write(self, fraction: float, parts: Mapping[str, float] | None = None) -> None:
        """Make the parameters hold ``theta + fraction * dtheta`` (``fraction = 0``: exactly
        the start weights, bit for bit, whatever the parameters' dtype); ``parts`` gives the
        parameters of some roles a fraction of their own."""
        ...


@dataclass(frozen=True)
class Decision:
    """What a rule decided: the ``fraction`` of the move to keep (0: reject), the guard's
    measure there (NaN without a guard) and, when rejected, why."""

    fraction: float
    guard: float = math.nan
    reason: str = ""
    parts: Mapping[str, float] | None = None
    """Per parameter role, a fraction of its own (roles not named move by ``fraction``)."""


@runtime_checkable
class AcceptanceRule(Protocol):
    """Decides how much of a predicted jump to keep. May try any fractions through
    ``candidate.write``; the optimizer writes the decided fraction afterwards."""

    @property
    def name(self) -> str:
        """Registered name (``"backtrack"``)."""
        ...

    def decide(self, candidate: Candidate, guard: JumpGuard | None) -> Decision: ...


@runtime_checkable
class ScoredGuard(JumpGuard, Protocol):
    """A guard that also says how *good* the weights are, not only how far they moved: the
    ``search`` rule keeps the best-scoring length among those the guard accepts."""

    def score(self) -> float:
        """Quality of the weights last measured (higher is better: minus a loss, a PPO
        surrogate...). Called right after :meth:`measure`, on the same weights; it may reuse
        what :meth:`measure` computed."""
        ...


class Backtracking:
    """Try the whole move, then 1/2, 1/4 ... (``max_backtracks`` halvings) and keep the first
    length the guard accepts (``guard.measure() <= guard.limit``); without a guard, keep the
    whole move."""

    name = "backtrack"

    def __init__(self, config: AcceptanceConfig | None = None) -> None:
        self.max_backtracks = (config or AcceptanceConfig()).max_backtracks

    def decide(self, candidate: Candidate, guard: JumpGuard | None) -> Decision:
        if guard is None:
            return Decision(1.0)
        fraction, value = 1.0, math.nan
        for _ in range(self.max_backtracks + 1):
            candidate.write(fraction)
            value = guard.measure()
            if value <= guard.limit:
                return Decision(fraction, value)
            fraction /= 2
        return Decision(0.0, value, f"{guard.name} {value:.4g} > limit {guard.limit:g} at "
                                    "every length")

    def __repr__(self) -> str:
        return f"Backtracking(max_backtracks={self.max_backtracks})"


class StepSearch:
    """Try each of ``fractions`` (longer as well as shorter than the predicted move) and keep,
    among the lengths the guard accepts, the one a :class:`ScoredGuard` scores best (without a
    score: the longest accepted). If none is accepted, halve below the shortest, up to
    ``max_backtracks`` times, like :class:`Backtracking`. Without a guard, the whole move."""

    name = "search"

    def __init__(self, config: AcceptanceConfig | None = None) -> None:
        config = config or AcceptanceConfig()
        self.fractions = tuple(sorted(set(config.fractions)))
        self.max_backtracks = config.max_backtracks
        if not self.fractions or min(self.fractions) <= 0:
            raise ConfigError(f"the search rule needs positive fractions, got {config.fractions}")

    def decide(self, candidate: Candidate, guard: JumpGuard | None) -> Decision:
        if guard is None:
            return Decision(1.0)
        scored = isinstance(guard, ScoredGuard)
        best: tuple[float, float, float] | None = None  # (score, fraction, guard value)
        value = math.nan
        for fraction in self.fractions:
            candidate.write(fraction)
            value = guard.measure()
            if value <= guard.limit:
                score = guard.score() if scored else fraction  # type: ignore[attr-defined]
                if best is None or (score, fraction) > best[:2]:
                    best = (score, fraction, value)
        if best is not None:
            return Decision(best[1], best[2])
        fraction = self.fractions[0]
        for _ in range(self.max_backtracks):
            fraction /= 2
            candidate.write(fraction)
            value = guard.measure()
            if value <= guard.limit:
                return Decision(fraction, value)
        return Decision(0.0, value, f"{guard.name} {value:.4g} > limit {guard.limit:g} at "
                                    "every length")

    def __repr__(self) -> str:
        return f"StepSearch(fractions={list(self.fractions)})"


class SplitBacktracking:
    """:class:`Backtracking` per network: when the guard is made of parts that each watch the
    parameters of one role (PPO/A2C: the KL watches the ``actor``, the value-change check the
    ``critic``; a guard with ``last_parts()``, :class:`~tipl_opt.guard.AllOfGuard` built with
    ``scopes``), each role is halved only while *its own* trust region refuses it, so a value
    head that must move less does not shorten the policy's move, and the other way round.
    The combined move is then checked once more as a whole; if it does not fit (the networks
    share parameters after all), the rule falls back to :class:`Backtracking`. Without such a
    guard it *is* :class:`Backtracking`."""

    name = "split"

    def __init__(self, config: AcceptanceConfig | None = None) -> None:
        self.max_backtracks = (config or AcceptanceConfig()).max_backtracks
        self.whole = Backtracking(config)

    def decide(self, candidate: Candidate, guard: JumpGuard | None) -> Decision:
        last_parts = getattr(guard, "last_parts", None)
        roles: frozenset[str] = getattr(candidate, "roles", frozenset())
        if guard is None or last_parts is None:
            return self.whole.decide(candidate, guard)
        candidate.write(1.0)
        value = guard.measure()
        scopes = [scope for _, scope, _, _ in last_parts()]
        if value <= guard.limit:
            return Decision(1.0, value)
        if None in scopes or not set(scopes) <= roles or len(set(scopes)) < len(scopes):
            return self.whole.decide(candidate, guard)  # the parts do not split the networks
        fractions = dict.fromkeys(scopes, 1.0)
        fits: set[str] = set()
        for attempt in range(self.max_backtracks + 1):
            if attempt > 0:  # parameters no part watches move as far as the shortest role
                candidate.write(min(fractions.values()), fractions)
                value = guard.measure()
            for _, scope, limit, measured in last_parts():
                if scope in fits:
                    continue
                if measured <= limit:
                    fits.add(scope)
                elif attempt < self.max_backtracks:
                    fractions[scope] /= 2
            if len(fits) == len(fractions):
                break
        fractions = {s: (f if s in fits else 0.0) for s, f in fractions.items()}
        if not any(fractions.values()):
            return Decision(0.0, value, f"{guard.name} {value:.4g} > limit {guard.limit:g} at "
                                        "every length")
        others = min(fractions.values())
        candidate.write(others, fractions)
        value = guard.measure()
        if value > guard.limit:
            return self.whole.decide(candidate, guard)
        return Decision(fractions[scopes[0]], value, parts=fractions)

    def __repr__(self) -> str:
        return f"SplitBacktracking(max_backtracks={self.max_backtracks})"


RuleFactory = Callable[[AcceptanceConfig], AcceptanceRule]
"""``factory(config) -> rule``: builds a rule from the ``acceptance`` section of the config."""


def acceptance_rules() -> dict[str, RuleFactory]:
    """All registered acceptance rules by name (built-in and plugins')."""
    from tipl_opt.plugins import acceptance_rules as registered

    return registered()


def make_rule(config: AcceptanceConfig, rules: dict[str, Any] | None = None) -> AcceptanceRule:
    """The rule ``config.rule`` names, built from ``config``; ConfigError naming the registered
    rules for an unknown name."""
    found = acceptance_rules() if rules is None else rules
    if config.rule not in found:
        raise ConfigError(f"Unknown acceptance rule {config.rule!r}; registered: "
                          f"{', '.join(sorted(found))}.")
    rule: AcceptanceRule = found[config.rule](config)
    return rule


@hookimpl
def tipl_register_acceptance_rules(register: Any) -> None:
    """The built-in rules (this module is registered as the ``tipl.acceptance`` plugin)."""
    register(Backtracking.name, Backtracking)
    register(StepSearch.name, StepSearch)
    register(SplitBacktracking.name, SplitBacktracking)
