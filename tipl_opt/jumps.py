"""What a weight jump is configured by, and what it reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class JumpConfig(BaseModel):
    """How :class:`~tipl_opt.optimizer.TIPLOptimizer` snapshots and jumps."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "manual"] = "auto"
    """``auto``: jump inside ``step()`` (supervised loops, off-policy RL). ``manual``: only when
    the caller says it is safe, through ``maybe_jump()`` (on-policy RL, at rollout boundaries)."""
    snapshot_every: int = Field(default=100, ge=1)
    """Optimizer steps between snapshots (manual mode: the first safe point at or after)."""
    context: int | None = Field(default=None, ge=2)
    """Snapshots per window; default: the predictor's context."""
    horizon: int | None = Field(default=None, ge=1)
    """Snapshot intervals to jump ahead; default: the predictor's longest horizon (1 for
    predictors without one)."""
    schedule: Literal["fixed", "shrinking"] = "fixed"
    """``shrinking``: the horizon falls linearly from ``horizon`` to ``min_horizon`` over
    ``total_steps`` optimizer steps (late in training, jump less far)."""
    min_horizon: int = Field(default=1, ge=1)
    total_steps: int | None = Field(default=None, ge=1)
    scale: float = Field(default=1.0, gt=0)
    """Multiply the predicted move by this before trying it: above 1 goes further along the
    predicted direction (the guard's backtracking still shortens it, by halves, when the
    behaviour would change too much)."""
    warmup_steps: int = Field(default=0, ge=0)
    """No jump before this many optimizer steps."""
    reset_moments: bool = False
    """After an accepted jump, clear the base optimizer's state (Adam moments) instead of
    keeping it."""
    max_backtracks: int = Field(default=3, ge=0)
    """Shorten a rejected jump up to this many times (1, 1/2, 1/4, ...) before skipping it."""
    history_device: Literal["cpu", "param"] = "cpu"
    """Where the K x P history lives: CPU memory, or the parameters' device."""

    @model_validator(mode="after")
    def _check(self) -> JumpConfig:
        if self.schedule == "shrinking" and self.total_steps is None:
            raise ValueError("schedule='shrinking' needs total_steps (the training length in "
                             "optimizer steps)")
        if self.horizon is not None and self.min_horizon > self.horizon:
            raise ValueError(f"min_horizon ({self.min_horizon}) > horizon ({self.horizon})")
        return self


@dataclass(frozen=True)
class JumpReport:
    """One attempted jump. ``fraction`` is the share of the (scaled) predicted move applied
    (1, 0.5, 0.25 ... or 0 when rejected); ``relative_size`` is |dtheta| / |theta| as applied
    (for the full prediction when rejected); ``guard`` the guard's final measure (NaN: no
    guard); ``reason`` says why a jump was rejected."""

    step: int
    horizon: int
    fraction: float
    relative_size: float
    guard: float
    accepted: bool
    shortened: bool
    prediction_ms: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
