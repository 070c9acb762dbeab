"""*When* :class:`~tipl_opt.optimizer.TIPLOptimizer` snapshots and jumps, and how far ahead.

A :class:`Schedule` answers three questions from the optimizer's step count alone, so it can be
tested without an optimizer::

    schedule = CadenceSchedule(ScheduleConfig(snapshot_every=2, warmup_steps=4))
    schedule.snapshot_due(step=3, last_snapshot=1)   # True: 2 steps since the last one
    schedule.jump_due(step=3, fresh=8, context=8)    # False: still in warm-up
    schedule.interval(context=8, recent=[True] * 8)  # 8: no whole_jump_every set
    schedule.horizon(step=3, longest=8)              # 8: the predictor's longest horizon
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from tipl_opt.jumps import ScheduleConfig

CADENCE_JUMPS = 8
"""Newest tried jumps whose outcomes ``whole_jump_every`` looks at."""


def regular_interval(config: ScheduleConfig, context: int) -> int:
    """New snapshots between jumps at the regular cadence: ``jump_every``, default a whole
    window of ``context``; a jump after fewer came at the ``whole_jump_every`` cadence."""
    return config.jump_every or context


@runtime_checkable
class Schedule(Protocol):
    """When to snapshot and jump. ``step`` counts base-optimizer steps (int >= 0)."""

    def snapshot_due(self, step: int, last_snapshot: int | None) -> bool:
        """Whether to record a snapshot at ``step`` (``last_snapshot``: the step of the
        previous one, ``None`` before the first)."""
        ...

    def jump_due(self, step: int, fresh: int, context: int,
                 recent: Sequence[bool] = ()) -> bool:
        """Whether to jump at ``step``, right after a snapshot, given ``fresh`` snapshots
        recorded since the last jump (or the start), a window of ``context`` snapshots (the
        optimizer jumps only when its window is also full) and ``recent``: for each of the
        newest tried jumps, oldest first, whether it went through whole (neither shortened
        nor rejected)."""
        ...

    def horizon(self, step: int, longest: int) -> int:
        """Snapshot intervals to predict ahead at ``step`` (>= 1); ``longest`` is the
        predictor's longest horizon."""
        ...


class CadenceSchedule:
    """The default :class:`Schedule`, configured by a :class:`~tipl_opt.jumps.ScheduleConfig`:
    a snapshot every ``snapshot_every`` steps; after ``warmup_steps`` (and unless ``enabled`` is
    off), a jump whenever ``jump_every`` snapshots (default: a whole window) were recorded since
    the last one, or ``whole_jump_every`` while the newest jumps go through whole; the horizon
    fixed, or shrinking linearly to ``min_horizon`` over ``total_steps``."""

    def __init__(self, config: ScheduleConfig) -> None:
        self.config = config

    def snapshot_due(self, step: int, last_snapshot: int | None) -> bool:
        return last_snapshot is None or step - last_snapshot >= self.config.snapshot_every

    def jump_due(self, step: int, fresh: int, context: int,
                 recent: Sequence[bool] = ()) -> bool:
        return (self.config.enabled and fresh >= self.interval(context, recent)
                and step >= self.config.warmup_steps)

    def interval(self, context: int, recent: Sequence[bool] = ()) -> int:
        """New snapshots the next jump waits for: ``whole_jump_every`` when it is set and at
        most ``max_shortened`` of the newest :data:`CADENCE_JUMPS` tried jumps (``recent``,
        True where one went through whole; all of them needed) were shortened or rejected,
        else ``jump_every`` (default: ``context``, a whole window)."""
        cfg = self.config
        every = regular_interval(cfg, context)
        newest = list(recent)[-CADENCE_JUMPS:]
        if (cfg.whole_jump_every is not None and len(newest) == CADENCE_JUMPS
                and newest.count(False) <= cfg.max_shortened * CADENCE_JUMPS):
            return min(every, cfg.whole_jump_every)
        return every

    def horizon(self, step: int, longest: int) -> int:
        cfg = self.config
        top = cfg.horizon or longest
        if cfg.horizon_schedule == "fixed" or cfg.total_steps is None:
            return top
        progress = min(step / cfg.total_steps, 1.0)
        low = min(cfg.min_horizon, top)
        return max(low, round(top - (top - low) * progress))

    def __repr__(self) -> str:
        return f"CadenceSchedule(every={self.config.snapshot_every}, mode={self.config.mode})"
