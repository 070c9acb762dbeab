"""*When* :class:`~tipl_opt.optimizer.TIPLOptimizer` snapshots and jumps, and how far ahead.

A :class:`Schedule` answers three questions from the optimizer's step count alone, so it can be
tested without an optimizer::

    schedule = CadenceSchedule(ScheduleConfig(snapshot_every=2, warmup_steps=4))
    schedule.snapshot_due(step=3, last_snapshot=1)   # True: 2 steps since the last one
    schedule.jump_due(step=3, fresh=8, context=8)    # False: still in warm-up
    schedule.horizon(step=3, longest=8)              # 8: the predictor's longest horizon
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tipl_opt.jumps import ScheduleConfig


@runtime_checkable
class Schedule(Protocol):
    """When to snapshot and jump. ``step`` counts base-optimizer steps (int >= 0)."""

    def snapshot_due(self, step: int, last_snapshot: int | None) -> bool:
        """Whether to record a snapshot at ``step`` (``last_snapshot``: the step of the
        previous one, ``None`` before the first)."""
        ...

    def jump_due(self, step: int, fresh: int, context: int) -> bool:
        """Whether to jump at ``step``, right after a snapshot, given ``fresh`` snapshots
        recorded since the last jump (or the start) and a window of ``context`` snapshots
        (the optimizer jumps only when its window is also full)."""
        ...

    def horizon(self, step: int, longest: int) -> int:
        """Snapshot intervals to predict ahead at ``step`` (>= 1); ``longest`` is the
        predictor's longest horizon."""
        ...


class CadenceSchedule:
    """The default :class:`Schedule`, configured by a :class:`~tipl_opt.jumps.ScheduleConfig`:
    a snapshot every ``snapshot_every`` steps; after ``warmup_steps`` (and unless ``enabled`` is
    off), a jump whenever ``jump_every`` snapshots (default: a whole window) were recorded since
    the last one; the horizon fixed, or shrinking linearly to ``min_horizon`` over
    ``total_steps``."""

    def __init__(self, config: ScheduleConfig) -> None:
        self.config = config

    def snapshot_due(self, step: int, last_snapshot: int | None) -> bool:
        return last_snapshot is None or step - last_snapshot >= self.config.snapshot_every

    def jump_due(self, step: int, fresh: int, context: int) -> bool:
        return (self.config.enabled and fresh >= (self.config.jump_every or context)
                and step >= self.config.warmup_steps)

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
