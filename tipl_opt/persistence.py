"""How far the weights' path keeps its direction, measured online from the optimizer's window.

A jump extrapolates the window of recent weights; it can only pay while the path keeps the
direction the window shows. :class:`PersistenceMeter` measures that as a run goes, with no
model and no evaluation: at every snapshot it records the straight-line move the window shows
(``linear``'s least-squares fit, :data:`PERSISTENCE_HORIZON` snapshots ahead) and, that many
snapshots later, the cosine between the recorded move and the move the path actually made.
:attr:`PersistenceMeter.value` is the median of the newest ``windows`` such cosines: the online
counterpart of the ``linear`` cosine that ``tipl paths screen`` measures on saved paths.

It reads the optimizer's own window, which a kept window moves along with every jump, so what it
measures is the path of the gradient steps alone, jumps or not::

    meter = PersistenceMeter(context=8, windows=32)
    for snapshot in path:               # [P] each, in order
        history.push(snapshot, step)
        meter.observe(*history.window())
    meter.value                         # median cosine, or None before 32 are in

Measured on SB3 PPO base runs (a snapshot every 256 env steps; docs/benchmarks.md, "The
path's persistence over a run"): InvertedDoublePendulum-v5 keeps 0.3-0.8 over its whole
60,000 env steps, Pusher-v5 falls from 0.8 to 0.1 after 25,000, where TIPL's jumps start to cost
return.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque
from collections.abc import Sequence
from typing import Any

import torch

from tipl_opt.jumps import ScheduleConfig
from tipl_opt.paths.spec import ParamSpec, role_mask
from tipl_opt.predictors.linear import LinearPredictor

logger = logging.getLogger(__name__)

PERSISTENCE_HORIZON = 8
"""Snapshots ahead that the straight-line move is compared over: the embedded predictor's
longest horizon, at which the screen's bands were measured."""


class PersistenceMeter:
    """The median cosine between the window's straight-line move and the real one.

    * ``context``: snapshots the straight line is fitted over (the jump's window, >= 2);
    * ``windows``: cosines the median takes, the newest; :attr:`value` is ``None`` until
      that many are in;
    * ``horizon``: snapshots between a recorded move and the one it is compared with;
    * ``once``: stop measuring when the first ``windows`` cosines are in, so that
      :attr:`value` stays their median for the rest of the run.

    Memory: ``horizon`` pending moves and their start points, 2 x horizon x P floats.
    """

    def __init__(self, context: int, windows: int = 32,
                 horizon: int = PERSISTENCE_HORIZON, once: bool = False) -> None:
        if windows < 1 or horizon < 1:
            raise ValueError(f"windows and horizon must be >= 1, got {windows}, {horizon}")
        self.line = LinearPredictor(context)
        self.context, self.windows, self.horizon = context, windows, horizon
        self.once = once
        self.cosines: deque[float] = deque(maxlen=windows)
        self._pending: deque[tuple[int, torch.Tensor, torch.Tensor]] = deque()
        self._count = 0  # snapshots observed since the last reset

    @property
    def value(self) -> float | None:
        """Median of the newest ``windows`` cosines, ``None`` before that many are in."""
        if len(self.cosines) < self.windows:
            return None
        return float(statistics.median(self.cosines))

    def observe(self, window: torch.Tensor, steps: torch.Tensor | None = None) -> float | None:
        """Take the snapshot just pushed (the last row of ``window``, [n, P], oldest first;
        ``steps``: their step counts [n]): score the move recorded ``horizon`` snapshots ago
        against the real one, and record this window's straight-line move when it holds
        ``context`` snapshots. Returns the new cosine, or ``None`` when none was due (always,
        once a ``once`` meter is full)."""
        if self.settled:
            return None
        self._count += 1
        last = window[-1].to(torch.float32)
        cosine = None
        if self._pending and self._count - self._pending[0][0] >= self.horizon:
            _, start, move = self._pending.popleft()
            real = last - start.to(last)
            if bool(torch.isfinite(real).all()) and float(real.norm()) > 0:
                cosine = float(torch.nn.functional.cosine_similarity(move.to(last), real,
                                                                     dim=0))
                self.cosines.append(cosine)
                if self.settled:
                    self._pending.clear()
                    return cosine
        if len(window) >= self.context and bool(torch.isfinite(window[-self.context:]).all()):
            ahead = self.line.predict(window[-self.context:], None if steps is None
                                      else steps[-self.context:], (), self.horizon)
            move = ahead.to(torch.float32) - last
            if float(move.norm()) > 0:
                self._pending.append((self._count, last.clone(), move))
        return cosine

    @property
    def settled(self) -> bool:
        """Whether a ``once`` meter has its ``windows`` cosines and measures no more."""
        return self.once and len(self.cosines) >= self.windows

    def translate(self, move: torch.Tensor) -> None:
        """Move the recorded start points by ``move`` [P], as the window was moved (a kept
        window after a jump), so that the path compared stays the gradient steps' alone."""
        for _, start, _ in self._pending:
            start += move.reshape(-1).to(start)

    def reset(self) -> None:
        """Forget the pending moves (the window starts afresh); the cosines measured so far
        stay."""
        self._pending.clear()
        self._count = 0

    def state_dict(self) -> dict[str, Any]:
        return {"cosines": list(self.cosines), "count": self._count,
                "pending": [(i, s.clone(), m.clone()) for i, s, m in self._pending]}

    def load_state_dict(self, state: dict[str, Any], size: int | None = None) -> None:
        """Load what :meth:`state_dict` returned; ``size``: the number of weights P its
        pending moves must have (``ValueError`` otherwise, and nothing changes)."""
        pending = [(int(i), torch.as_tensor(s, dtype=torch.float32),
                    torch.as_tensor(m, dtype=torch.float32)) for i, s, m in state["pending"]]
        if size is not None and any(s.numel() != size or m.numel() != size
                                    for _, s, m in pending):
            raise ValueError(f"the persistence check's pending moves are not of {size} "
                             "weights")
        self.cosines = deque((float(c) for c in state["cosines"]), maxlen=self.windows)
        self._count = int(state["count"])
        self._pending = deque(pending)

    def __repr__(self) -> str:
        return (f"PersistenceMeter(context={self.context}, windows={self.windows}, "
                f"horizon={self.horizon}, once={self.once}, value={self.value})")


class RolePersistence:
    """One :class:`PersistenceMeter` per parameter role, each on its own role's weights: the
    actor's path can wander while the critic's keeps its direction (on SB3 PPO Pusher-v5 the
    actor's cosine is about 0 from the start, the critic's 0.9 for its first 25,000 env steps).

    * ``masks``: role -> flat bool [P], True at that role's weights;
    * ``context``, ``windows``, ``horizon``, ``once``: as :class:`PersistenceMeter`'s.

    The same calls as a meter (``observe``, ``translate``, ``reset``, ``state_dict``,
    ``load_state_dict``); :attr:`values` gives each role's median cosine.
    """

    def __init__(self, masks: dict[str, torch.Tensor], context: int, windows: int = 32,
                 horizon: int = PERSISTENCE_HORIZON, once: bool = False) -> None:
        self.masks = {role: mask.reshape(-1).to(torch.bool) for role, mask in masks.items()}
        self.meters = {role: PersistenceMeter(context, windows, horizon, once)
                       for role in masks}

    @property
    def values(self) -> dict[str, float | None]:
        """Each role's median cosine, ``None`` before its meter has ``windows`` of them."""
        return {role: meter.value for role, meter in self.meters.items()}

    def observe(self, window: torch.Tensor,
                steps: torch.Tensor | None = None) -> dict[str, float | None]:
        """Give each role's meter its columns of ``window`` [n, P]; returns each role's new
        cosine (``None`` where none was due)."""
        return {role: meter.observe(window[:, self.masks[role].to(window.device)], steps)
                for role, meter in self.meters.items()}

    def translate(self, move: torch.Tensor) -> None:
        """Move each role's recorded start points by its part of ``move`` [P]."""
        flat = move.reshape(-1)
        for role, meter in self.meters.items():
            meter.translate(flat[self.masks[role].to(flat.device)])

    def reset(self) -> None:
        for meter in self.meters.values():
            meter.reset()

    def state_dict(self) -> dict[str, Any]:
        return {"roles": {role: meter.state_dict() for role, meter in self.meters.items()}}

    def load_state_dict(self, state: dict[str, Any], size: int | None = None) -> None:
        """Load what :meth:`state_dict` returned (``ValueError`` for other roles or, with
        ``size`` given, pending moves of the wrong length; nothing changes then)."""
        saved = state.get("roles")
        if not isinstance(saved, dict) or set(saved) != set(self.meters):
            raise ValueError(f"the persistence check was saved for roles "
                             f"{sorted(saved) if isinstance(saved, dict) else saved}, not "
                             f"{sorted(self.meters)}")
        fresh = {role: PersistenceMeter(m.context, m.windows, m.horizon, m.once)
                 for role, m in self.meters.items()}
        for role, meter in fresh.items():
            meter.load_state_dict(saved[role], None if size is None
                                  else int(self.masks[role].sum()))
        self.meters = fresh

    def __repr__(self) -> str:
        return f"RolePersistence(values={self.values})"


def settled(check: PersistenceMeter | RolePersistence | None) -> dict[str, float]:
    """The decisions a ``once`` check has made: role (``"whole"`` for a whole-path meter) ->
    the median it settled on; empty for a rolling check or before any meter is full."""
    if isinstance(check, RolePersistence):
        meters = check.meters
    elif check is not None:
        meters = {"whole": check}
    else:
        return {}
    return {role: float(meter.value) for role, meter in meters.items()
            if meter.settled and meter.value is not None}


def log_decisions(check: PersistenceMeter | RolePersistence | None,
                  before: dict[str, float], schedule: ScheduleConfig) -> None:
    """Log each decision ``check`` has made since :func:`settled` returned ``before``: the
    level its path showed and what that means for the jumps."""
    level = schedule.min_persistence
    if level is None:
        return
    for role, value in settled(check).items():
        if role in before:
            continue
        outcome = ("it keeps jumping" if value >= level else "every later jump is held"
                   if role == "whole" or schedule.persistence_hold == "jump"
                   else "left out of every later jump")
        logger.info("TIPL: the %s path kept its direction %.2f over its first %d windows "
                    "(level %.2f): %s", role, value, schedule.persistence_windows, level,
                    outcome)


def observe(check: PersistenceMeter | RolePersistence,
            window: tuple[torch.Tensor, torch.Tensor], schedule: ScheduleConfig) -> None:
    """Give ``check`` the snapshot just pushed (``window``: what ``WeightHistory.window()``
    returns) and, for a once-deciding check (``persistence_mode="once"``), log each decision
    it makes there (:func:`log_decisions`); a rolling check only observes."""
    if schedule.persistence_mode != "once":
        check.observe(*window)
        return
    before = settled(check)
    check.observe(*window)
    log_decisions(check, before, schedule)


def persistence_check(schedule: ScheduleConfig, specs: Sequence[ParamSpec],
                      context: int) -> PersistenceMeter | RolePersistence | None:
    """The check ``schedule`` asks for over a window of ``context`` snapshots: ``None`` without
    ``min_persistence``; one meter per role of ``specs`` for ``persistence_scope="role"``; else
    one meter on the whole path; either deciding once (``persistence_mode="once"``)."""
    if schedule.min_persistence is None:
        return None
    once = schedule.persistence_mode == "once"
    if schedule.persistence_scope == "role":
        roles = dict.fromkeys(spec.role for spec in specs)
        masks = {role: role_mask(specs, (role,)) for role in roles}
        return RolePersistence({r: m for r, m in masks.items() if m is not None}, context,
                               schedule.persistence_windows, once=once)
    return PersistenceMeter(context, schedule.persistence_windows, once=once)
