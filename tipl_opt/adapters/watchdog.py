"""The return watchdog: the episodes after a jump decide whether it stays.

A guard checks a jump before it is taken, on behaviour (KL, action distance), not on return; a
jump the guard accepts can still leave the agent worse, and between near-deterministic
policies the KL of a harmful jump is about zero (A2C's transient collapse, extrapolated, stays
collapsed). The watchdog checks afterwards, on what the agent earns:

* **undo**: after an accepted jump, the next ``watch_episodes`` episode returns are compared
  with the ``watch_episodes`` before it; when they are clearly lower (:func:`clearly_below`),
  every part that jumped at that moment puts back its weights from right before the jump
  (:meth:`~tipl_opt.optimizer.TIPLOptimizer.undo_jump`) and starts a fresh window; after a
  second undo in a row the next jump waits one more window, after a third three more, then
  seven...;
* **hold**: while the newest ``watch_episodes`` returns are clearly below the ones before them,
  or their mean has lost more than ``max_regress`` (half) of the best such mean so far, a due
  jump is held (the window keeps filling; it jumps at the first safe point where the fall has
  stopped and the level has come back), since extrapolating a fall, or a collapse, continues
  it: measured on A2C CartPole, a collapsed policy kept jumping between windows of equally
  bad returns and never recovered, while the gradient steps alone bring it back;
* **solved**: while the newest ``watch_episodes`` returns average at least the task's solved
  level (``solved``, from :attr:`~tipl_opt.jumps.WatchConfig.solved_return`), a due jump is
  held too: measured offline and online, jumps from a converged policy lose return and have
  nothing left to speed up. With ``solved_hold="after"`` every jump after the first time they
  reach it is held, for the rest of the run.

The adapter feeds finished episodes' returns (:meth:`ReturnWatchdog.episode`) and calls
:meth:`ReturnWatchdog.tick` then :meth:`ReturnWatchdog.check` at its safe points; the
:class:`~tipl_opt.adapters.attachment.Attachment` does the wiring. Without episodes (a
supervised loop, an env without episode statistics) it never acts.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean, variance
from typing import Any

from tipl_opt.jumps import JumpReport, WatchConfig
from tipl_opt.optimizer import TIPLOptimizer

logger = logging.getLogger(__name__)


def clearly_below(after: Sequence[float], before: Sequence[float], max_drop: float) -> bool:
    """Whether the mean of ``after`` is below the mean of ``before`` by more than both
    ``max_drop`` times ``|mean(before)|`` and two standard errors of the difference (each side
    needs two values or more; otherwise ``False``)."""
    if len(after) < 2 or len(before) < 2:
        return False
    mean_b = fmean(before)
    se = math.sqrt(variance(after) / len(after) + variance(before) / len(before))
    return fmean(after) < mean_b - max(max_drop * abs(mean_b), 2.0 * se)


@dataclass
class _Pending:
    """An accepted jump waiting for its verdict: the returns before and after it."""

    tick: int
    before: list[float]
    parts: list[str]
    after: list[float] = field(default_factory=list)


class ReturnWatchdog:
    """Undoes jumps the returns after them reject and holds jumps while returns fall (see the
    module docstring). ``optimizers``: the attachment's TIPL optimizers by part (read live);
    ``solved``: the return level at which the task counts as solved (``None``: none)."""

    def __init__(self, config: WatchConfig, optimizers: Mapping[str, TIPLOptimizer],
                 solved: float | None = None) -> None:
        self.config = config
        self.optimizers = optimizers
        self.solved = solved
        self.recent: deque[float] = deque(maxlen=2 * config.watch_episodes)
        self.pending: _Pending | None = None
        self.ticks = 0
        self.streak = 0  # undos in a row
        self.best = -math.inf  # best mean of watch_episodes returns in a row
        self.solved_reached = False  # the newest returns have reached the solved level once
        self._reached_with: _Pending | None = None  # the jump pending when they reached it
        self.counts = {"kept": 0, "undone": 0, "unjudged": 0, "held": 0, "solved": 0}

    # -- what the adapter feeds ---------------------------------------------------------------
    def episode(self, ret: float) -> None:
        """A finished training episode's return."""
        value = float(ret)
        if not math.isfinite(value):
            return
        self.recent.append(value)
        n = self.config.watch_episodes
        if len(self.recent) >= n:
            now = fmean(list(self.recent)[-n:])
            self.best = max(self.best, now)
            if self.solved is not None and now >= self.solved and not self.solved_reached:
                self.solved_reached = True
                self._reached_with = self.pending
                logger.info("TIPL watchdog: returns %.4g reached the solved level %.4g", now,
                            self.solved)
        if self.pending is not None:
            self.pending.after.append(value)

    def tick(self) -> None:
        """A new safe point: jumps from now on belong to a new moment (those of one moment,
        SAC's actor and critic in one update, are judged together)."""
        self.ticks += 1

    def jumped(self, part: str, report: JumpReport) -> None:
        """Jump hook of ``part``'s optimizer: an accepted jump starts a verdict."""
        if not report.accepted:
            return
        if self.pending is not None and self.pending.tick == self.ticks:
            self.pending.parts.append(part)
            return
        if self.pending is not None:  # not reached by check() or allow(): settle it now
            self._resolve(defer=True)
        n = self.config.watch_episodes
        before = list(self.recent)[-n:]
        if len(before) < 2:
            self.counts["unjudged"] += 1  # nothing to compare with: the jump stands
            return
        self.pending = _Pending(self.ticks, before, [part])

    # -- decisions ----------------------------------------------------------------------------
    def check(self) -> None:
        """At a safe point: give the verdict on a pending jump once its episodes are in."""
        if self.pending is not None and len(self.pending.after) >= self.config.watch_episodes:
            self._resolve()

    def allow(self) -> bool:
        """The optimizers' gate, asked right before a due jump: settles a pending verdict with
        the episodes there are, then holds the jump (``False``) while returns clearly fall, sit
        far below their best, or reach the solved level."""
        pending = self.pending
        if pending is not None and pending.tick != self.ticks and self._resolve(defer=True):
            return False  # the last jump was just undone: no new one on top of it
        n = self.config.watch_episodes
        values = list(self.recent)
        if len(values) >= 2 * n and clearly_below(values[-n:], values[:n], self.config.max_drop):
            self.counts["held"] += 1
            logger.info("TIPL watchdog: jump held, returns falling (%.4g -> %.4g)",
                        fmean(values[:n]), fmean(values[-n:]))
            return False
        at_level = (self.solved is not None and len(values) >= n
                    and fmean(values[-n:]) >= self.solved)
        if at_level or (self.solved_reached and self.config.solved_hold == "after"):
            self.counts["solved"] += 1
            logger.debug("TIPL watchdog: jump held at the solved level %.4g", self.solved)
            return False
        if len(values) >= n and math.isfinite(self.best):
            now = fmean(values[-n:])
            if now < self.best - self.config.max_regress * abs(self.best):
                self.counts["held"] += 1
                logger.info("TIPL watchdog: jump held, returns %.4g far below their best %.4g",
                            now, self.best)
                return False
        return True

    def _resolve(self, defer: bool = False) -> bool:
        """Give the verdict on the pending jump; ``True`` if it was undone. With ``defer`` (the
        gate, asked inside an optimizer's step), auto-mode optimizers undo at the end of their
        own next step (:meth:`~tipl_opt.optimizer.TIPLOptimizer.undo_jump_later`): SAC's gate
        is asked inside the critic's step, between the actor's forward and backward passes."""
        pending, self.pending = self.pending, None
        if pending is None:
            return False
        if len(pending.after) < 2:
            self.counts["unjudged"] += 1
            return False
        if not clearly_below(pending.after, pending.before, self.config.max_drop):
            self.counts["kept"] += 1
            self.streak = 0
            return False
        undone = []
        for part in pending.parts:
            opt = self.optimizers[part]
            wait = (2 ** self.streak - 1) * opt.jump_window
            later = defer and opt.config.schedule.mode == "auto"
            if opt.undo_jump_later(wait) if later else opt.undo_jump(wait):
                undone.append(part)
        if not undone:
            self.counts["unjudged"] += 1
            return False
        self.counts["undone"] += 1
        self.streak += 1
        if self._reached_with is pending:  # reached on the returns of weights now gone
            self.solved_reached, self._reached_with = False, None
        # The returns after the jump belonged to weights that are gone.
        self.recent.clear()
        self.recent.extend(pending.before)
        logger.info("TIPL watchdog: jump of %s undone, returns fell from %.4g to %.4g",
                    ", ".join(undone), fmean(pending.before), fmean(pending.after))
        return True

    def summary(self) -> dict[str, Any]:
        """Verdicts so far (JSON-serialisable): kept, undone, unjudged (too few episodes on a
        side), held (returns falling or collapsed) and solved (held at the solved level), and
        ``solved_reached``: whether the training returns have reached the solved level."""
        return {**self.counts, "solved_reached": self.solved_reached}
