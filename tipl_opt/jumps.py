"""What a weight jump is configured by, what it reports, and the one tally of jumps.

:class:`JumpConfig` has one section per part of :class:`~tipl_opt.optimizer.TIPLOptimizer`:
``schedule`` (*when* to snapshot and jump: :mod:`tipl_opt.schedule`), ``prediction`` (*what* to
predict from: the window), ``acceptance`` (*whether and how far* to move:
:mod:`tipl_opt.acceptance`) and ``watch`` (*whether to keep* a jump once the next episodes are
in: :mod:`tipl_opt.adapters.watchdog`, used by the RL adapters). Every field name is unique
across sections, so the flat form that the command line and the adapters use
(``{"snapshot_every": 1, "scale": 2}``, ``--jump horizon=4``) is accepted and sorted into its
section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ScheduleConfig(BaseModel):
    """When to snapshot and when to jump (:class:`~tipl_opt.schedule.CadenceSchedule`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """``False``: snapshots only, never a jump (the window still fills and can be saved; an
    adapter turns jumps off by default where they were measured to harm)."""
    mode: Literal["auto", "manual"] = "auto"
    """``auto``: jump inside ``step()`` (supervised loops, off-policy RL). ``manual``: only when
    the caller says it is safe, through ``maybe_jump()`` (on-policy RL, at rollout boundaries)."""
    snapshot_every: int = Field(default=100, ge=1)
    """Optimizer steps between snapshots (manual mode: the first safe point at or after)."""
    warmup_steps: int = Field(default=0, ge=0)
    """No jump before this many optimizer steps."""
    jump_every: int | None = Field(default=None, ge=1)
    """New snapshots between jumps; default: a whole fresh window (the context). Fewer than the
    context needs ``keep_window`` (otherwise the window is not full again any sooner)."""
    whole_jump_every: int | None = Field(default=None, ge=1)
    """New snapshots between jumps while the jumps go through whole: when at most
    ``max_shortened`` of the newest 8 tried jumps were shortened or rejected by the
    acceptance rule, the next jump comes this many snapshots after the last instead of
    ``jump_every`` (:meth:`~tipl_opt.schedule.CadenceSchedule.interval`). ``None``: always
    ``jump_every``."""
    max_shortened: float = Field(default=0.25, ge=0, le=1)
    """Share of the newest 8 tried jumps that may have been shortened or rejected for
    ``whole_jump_every`` to apply."""
    horizon: int | None = Field(default=None, ge=1)
    """Snapshot intervals to jump ahead; default: the predictor's longest horizon (1 for
    predictors without one)."""
    horizon_schedule: Literal["fixed", "shrinking"] = "fixed"
    """``shrinking``: the horizon falls linearly from ``horizon`` to ``min_horizon`` over
    ``total_steps`` optimizer steps (late in training, jump less far). Flat name:
    ``schedule``."""
    min_horizon: int = Field(default=1, ge=1)
    total_steps: int | None = Field(default=None, ge=1)
    min_persistence: float | None = Field(default=None, ge=-1, le=1)
    """Hold due jumps while the run's own path keeps its direction less than this: the median
    cosine, over the newest ``persistence_windows`` windows, between the straight-line move a
    window showed and the move the path then made 8 snapshots on
    (:class:`~tipl_opt.persistence.PersistenceMeter`; the snapshots are still taken and the
    jumps resume when it recovers). ``None``: never hold for this (PPO attached through an
    adapter runs a per-role check decided once by default:
    :data:`tipl_opt.adapters.attachment.ROLE_CHECK`)."""
    persistence_windows: int = Field(default=32, ge=1)
    """Windows whose cosines the persistence check takes the median of; it holds nothing
    before that many are measured."""
    persistence_mode: Literal["rolling", "once"] = "rolling"
    """``rolling``: the check follows the newest ``persistence_windows`` cosines all run.
    ``once``: it decides on the first ``persistence_windows`` cosines and keeps that decision
    for the rest of the run (it stops measuring then), so that the path it reads is one the
    later jumps have not shaped."""
    persistence_scope: Literal["all", "role"] = "all"
    """What the persistence check measures: ``all``, the whole path (it holds the whole
    jump); ``role``, each parameter role's own path apart (actor, critic, ...;
    :class:`~tipl_opt.persistence.RolePersistence`): a jump moves only the roles whose path
    keeps its direction at least ``min_persistence`` (or is not measured yet), and is held
    when none does."""
    persistence_hold: Literal["role", "jump"] = "role"
    """What a role measured below ``min_persistence`` holds (``persistence_scope="role"``):
    ``role``, its own weights (the other roles keep jumping); ``jump``, every later jump, as
    if the whole path had lost its direction (the networks jump together or not at all)."""

    @model_validator(mode="after")
    def _check(self) -> ScheduleConfig:
        if self.horizon_schedule == "shrinking" and self.total_steps is None:
            raise ValueError("schedule='shrinking' needs total_steps (the training length in "
                             "optimizer steps)")
        if self.horizon is not None and self.min_horizon > self.horizon:
            raise ValueError(f"min_horizon ({self.min_horizon}) > horizon ({self.horizon})")
        return self


class PredictionConfig(BaseModel):
    """What the predictor sees: the window of snapshots."""

    model_config = ConfigDict(extra="forbid")

    context: int | None = Field(default=None, ge=2)
    """Snapshots per window; default: the predictor's context."""
    history_device: Literal["cpu", "param"] = "cpu"
    """Where the K x P history lives: CPU memory, or the parameters' device."""
    keep_window: bool = False
    """After a jump, keep the window, moved by the jump (as if the path had led to the new
    weights), instead of starting a fresh one; with ``jump_every`` the next jump then needs
    only that many new snapshots."""


class AcceptanceConfig(BaseModel):
    """Whether and how far to move along the predicted jump
    (:class:`~tipl_opt.acceptance.AcceptanceRule`)."""

    model_config = ConfigDict(extra="forbid")

    rule: str = "backtrack"
    """A registered acceptance rule (:func:`tipl_opt.acceptance.make_rule`); ``backtrack``
    tries 1, 1/2, 1/4 ... of the move until the guard accepts one."""
    scale: float = Field(default=1.0, gt=0)
    """Multiply the predicted move by this before trying it: above 1 goes further along the
    predicted direction (the rule still shortens it when the guard says the behaviour would
    change too much)."""
    fractions: tuple[float, ...] = (0.5, 1.0, 2.0)
    """Lengths (times the scaled move) that the ``search`` rule compares."""
    max_backtracks: int = Field(default=3, ge=0)
    """Shorten a rejected jump up to this many times (1, 1/2, 1/4, ...) before skipping it."""
    reset_moments: bool = False
    """After an accepted jump, clear the base optimizer's state (Adam moments) instead of
    keeping it."""
    roles: tuple[str, ...] | None = None
    """Move only the parameters of these roles (:attr:`~tipl_opt.paths.spec.ParamSpec.role`:
    ``actor``, ``critic``, ``q``, ...); the others keep their weights through the jump, as in a
    rejected one. ``None``: every parameter moves. The RL adapters set it from ``targets`` for
    an optimizer that trains actor and critic together (PPO, A2C)."""
    fixed_params: tuple[str, ...] = ()
    """Parameters no jump moves, by name (a parameter's name or its last dotted parts:
    ``log_std`` names SB3 PPO's state-independent log standard deviation); they keep their
    weights through every jump and follow the gradient steps alone. A comma-separated string
    is accepted (``--jump fixed_params=log_std``)."""
    value_head: Literal["jump", "fixed"] = "jump"
    """Whether the critic's value output jumps (the ``critic`` parameters with a single output
    row, :func:`~tipl_opt.paths.spec.value_head`: SB3 PPO's ``value_net``, Tianshou's
    ``critic.last``): ``jump``, with the rest of its role; ``fixed``, never, so that the jumps
    never extrapolate the value scale (:class:`~tipl_opt.jump_mask.JumpMask`)."""

    @field_validator("fixed_params", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value


class WatchConfig(BaseModel):
    """Whether to keep a jump once the episodes after it are in (the RL adapters' return
    watchdog, :class:`~tipl_opt.adapters.watchdog.ReturnWatchdog`; a supervised loop feeds it
    nothing and it never acts)."""

    model_config = ConfigDict(extra="forbid")

    watchdog: bool = True
    """Undo a jump when the episode returns after it clearly fall below those before it, and
    hold jumps while the returns are clearly falling anyway."""
    watch_episodes: int = Field(default=5, ge=2)
    """Episodes compared on each side of a jump (and of the hold check)."""
    max_drop: float = Field(default=0.1, ge=0)
    """A fall counts only when it exceeds this share of the earlier mean's size and two
    standard errors of the difference of the means."""
    max_regress: float = Field(default=0.5, ge=0)
    """Hold jumps while the mean of the newest ``watch_episodes`` returns is below the best
    such mean so far by more than this share of the best's size (a collapsed policy: jumps
    would extrapolate the collapse, gradient steps may undo it)."""
    solved_return: float | Literal["auto"] | None = "auto"
    """Hold jumps while the mean of the newest ``watch_episodes`` returns is at or above this
    level (the task is solved: a jump from a converged policy can only lose return). ``auto``:
    the env's solved threshold (:func:`tipl_opt.thresholds.threshold_for`) when the adapter
    knows the env; ``None``: never hold for this reason."""
    solved_hold: Literal["while", "after"] = "while"
    """How long the solved level holds jumps: ``while`` the newest returns sit at it (a jump is
    due again once they dip below), or every jump ``after`` they first reach it, for the rest of
    the run (returns reached on the weights of a jump the watchdog then undoes do not count).
    Measured on Tianshou SAC Pendulum-v1, whose exploring episodes dip below the level after
    convergence: ``after`` changed 6 runs of 20, none by more than 0.4 in return
    (docs/benchmarks.md), so ``while`` stays the default."""


SECTIONS: dict[str, type[BaseModel]] = {"schedule": ScheduleConfig,
                                        "prediction": PredictionConfig,
                                        "acceptance": AcceptanceConfig,
                                        "watch": WatchConfig}
FLAT_ALIASES = {"schedule": "horizon_schedule"}
"""Flat names that differ from the field's name in its section (``schedule="shrinking"``)."""


def _section_of(field: str) -> str | None:
    for section, model in SECTIONS.items():
        if field in model.model_fields:
            return section
    return None


def _sort_into_sections(data: dict[str, Any]) -> dict[str, Any]:
    """Flat fields and sections of a jump config, each flat field moved into its section;
    unknown keys and malformed sections are passed on for validation to report."""
    nested: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS and not (key in FLAT_ALIASES and isinstance(value, str)):
            nested.setdefault(key, {})
            section = value.model_dump(exclude_unset=True) if isinstance(
                value, BaseModel) else value
            if isinstance(section, dict):
                nested[key] = {**section, **nested[key]}
            else:
                nested[key] = section  # let pydantic say what is wrong
            continue
        name = FLAT_ALIASES.get(str(key), str(key))
        target = _section_of(name)
        if target is None:
            unknown[key] = value
        elif isinstance(nested.setdefault(target, {}), dict):
            nested[target][name] = value
    return {**nested, **unknown}


class JumpConfig(BaseModel):
    """How :class:`~tipl_opt.optimizer.TIPLOptimizer` snapshots, predicts and accepts jumps.

    Built from sections (``JumpConfig(schedule={"snapshot_every": 1})``) or flat
    (``JumpConfig(snapshot_every=1, scale=2)``); :meth:`flat` gives the flat form back.
    """

    model_config = ConfigDict(extra="forbid")

    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    prediction: PredictionConfig = Field(default_factory=PredictionConfig)
    acceptance: AcceptanceConfig = Field(default_factory=AcceptanceConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)

    @model_validator(mode="after")
    def _check(self) -> JumpConfig:
        context = self.prediction.context
        for name in ("jump_every", "whole_jump_every"):
            every = getattr(self.schedule, name)
            if every is not None and context is not None and (
                    every < context and not self.prediction.keep_window):
                raise ValueError(f"{name}={every} is shorter than the window ({context}): "
                                 "set keep_window=true")
        return self

    @model_validator(mode="before")
    @classmethod
    def _sort_flat_fields(cls, data: Any) -> Any:
        return _sort_into_sections(data) if isinstance(data, dict) else data

    def flat(self) -> dict[str, Any]:
        """Every field by its own name, sections merged (JSON types)."""
        out: dict[str, Any] = {}
        for section in SECTIONS:
            out.update(getattr(self, section).model_dump(mode="json"))
        return out

    def explicit(self) -> dict[str, Any]:
        """The fields that were set explicitly, flat (for layering over an adapter's
        defaults: ``JumpConfig.model_validate({**defaults, **config.explicit()})``)."""
        out: dict[str, Any] = {}
        for section in SECTIONS:
            out.update(getattr(self, section).model_dump(mode="json", exclude_unset=True))
        return out


def explicit_fields(config: JumpConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields ``config`` sets, flat and by their own names (sections merged, the flat alias
    ``schedule="shrinking"`` as ``horizon_schedule``), not validated: what an adapter layers
    over its defaults, ``JumpConfig.model_validate({**defaults, **explicit_fields(config)})``,
    whichever form the user wrote."""
    if config is None:
        return {}
    if isinstance(config, JumpConfig):
        return config.explicit()
    out: dict[str, Any] = {}
    # the validator's own sorting into sections (one place knows the aliases), then flattened
    for key, value in _sort_into_sections(dict(config)).items():
        if key in SECTIONS and isinstance(value, dict):
            out.update(value)
        else:
            out[key] = value  # unknown, or a malformed section: validation reports it
    return out


@dataclass(frozen=True)
class JumpReport:
    """One attempted jump. ``fraction`` is the share of the (scaled) predicted move applied
    (1, 0.5, 0.25 ... or 0 when rejected; a rule that also tries longer steps can report more
    than 1); ``relative_size`` is |dtheta| / |theta| as applied (for the full prediction when
    rejected); ``guard`` the guard's final measure (NaN: no guard); ``reason`` says why a jump
    was rejected (``shortened``: some role moved less than the whole move); ``limited_by``
    names the trust regions that a tried length exceeded (``kl``,
    ``value_change``...: what shortened or rejected the move; empty when every length tried
    fitted)."""

    step: int
    horizon: int
    fraction: float
    relative_size: float
    guard: float
    accepted: bool
    shortened: bool
    prediction_ms: float
    reason: str = ""
    limited_by: tuple[str, ...] = ()
    fractions: dict[str, float] = field(default_factory=dict)
    """Per parameter role, when the rule moved roles by different fractions (the ``split``
    rule: ``{"actor": 1.0, "critic": 0.25}``; ``fraction`` is then the first guard's role's);
    empty when every parameter moved by ``fraction``."""
    held_roles: tuple[str, ...] = ()
    """Parameter roles the jump left as they were because their own path had lost its
    direction (``persistence_scope="role"``)."""
    sooner: bool = False
    """Whether the jump came at the ``whole_jump_every`` cadence, sooner than ``jump_every``
    (the jumps before it went through whole)."""
    value_head_held: bool = False
    """Whether the jump left the critic's value output as it was (``value_head``)."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON types (``limited_by`` and ``held_roles`` as lists)."""
        return {**asdict(self), "limited_by": list(self.limited_by),
                "held_roles": list(self.held_roles)}


COUNTERS = ("snapshots", "jumps_tried", "jumps_accepted", "jumps_shortened", "jumps_rejected",
            "jumps_undone", "jumps_held")
"""The counters of a :class:`JumpTally`, in display order."""

LIMITED_BY = "limited_by_"
"""Prefix of a :class:`JumpTally`'s per-guard counters: ``limited_by_kl`` counts the jumps a
length of which the KL trust region refused (:attr:`JumpReport.limited_by`)."""

ROLE_HELD = "role_held_"
"""Prefix of a :class:`JumpTally`'s per-role counters: ``role_held_actor`` counts the jumps
that left the actor's weights as they were because its own path had lost its direction
(``persistence_scope="role"``, :attr:`JumpReport.held_roles`)."""

SOONER = "jumps_sooner"
"""A :class:`JumpTally`'s count of jumps that came at the ``whole_jump_every`` cadence
(:attr:`JumpReport.sooner`; present once counted)."""

VALUE_HEAD_HELD = "value_head_held"
"""A :class:`JumpTally`'s count of jumps that left the critic's value output as it was
(:attr:`JumpReport.value_head_held`; present once counted)."""


class JumpTally(dict[str, int]):
    """Snapshot and jump counters (:data:`COUNTERS`), a plain ``dict`` of ints.
    ``jumps_undone`` counts accepted jumps taken back later
    (:meth:`~tipl_opt.optimizer.TIPLOptimizer.undo_jump`), ``jumps_held`` due jumps that the
    optimizer's own persistence check held (``min_persistence``); ``limited_by_<guard>``
    (present once counted) the jumps that guard's trust region shortened or rejected.

    :meth:`add` counts one :class:`JumpReport`; the optimizer, the run layer and the adapters'
    summaries all count with it, so a jump is counted one way everywhere.
    """

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        super().__init__(dict.fromkeys(COUNTERS, 0))
        for key, value in (counts or {}).items():
            if (key in (*COUNTERS, SOONER, VALUE_HEAD_HELD)
                    or str(key).startswith((LIMITED_BY, ROLE_HELD))):
                self[key] = int(value)

    def add(self, report: JumpReport) -> None:
        """Count one attempted jump."""
        self["jumps_tried"] += 1
        self["jumps_accepted" if report.accepted else "jumps_rejected"] += 1
        self["jumps_shortened"] += int(report.shortened)
        for name in report.limited_by:
            self[LIMITED_BY + name] = self.get(LIMITED_BY + name, 0) + 1
        for role in report.held_roles:
            self[ROLE_HELD + role] = self.get(ROLE_HELD + role, 0) + 1
        if report.sooner:
            self[SOONER] = self.get(SOONER, 0) + 1
        if report.value_head_held:
            self[VALUE_HEAD_HELD] = self.get(VALUE_HEAD_HELD, 0) + 1

    def merge(self, other: dict[str, int]) -> JumpTally:
        """This tally plus ``other``'s counts (a new tally)."""
        keys = [*self, *(k for k in other if k not in self)]
        return JumpTally({k: self.get(k, 0) + int(other.get(k, 0)) for k in keys})
