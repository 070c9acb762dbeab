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
from collections.abc import Callable
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

    def write(self, fraction: float) -> None:
        """Make the parameters hold ``theta + fraction * dtheta`` (``fraction = 0``: exactly
        the start weights, bit for bit, whatever the parameters' dtype)."""
        ...


@dataclass(frozen=True)
class Decision:
    """What a rule decided: the ``fraction`` of the move to keep (0: reject), the guard's
    measure there (NaN without a guard) and, when rejected, why."""

    fraction: float
    guard: float = math.nan
    reason: str = ""


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
