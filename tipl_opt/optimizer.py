"""``TIPLOptimizer``: a drop-in ``torch.optim.Optimizer`` that wraps a base optimizer and now and
then replaces gradient steps with one predicted, checked jump along the weights' path.

It composes three parts, each replaceable and testable on its own:

* *when*: a :class:`~tipl_opt.schedule.Schedule` (snapshot cadence, warm-up, horizon);
* *what*: a :class:`~tipl_opt.predictors.Predictor` (future weights from a window of snapshots);
* *whether and how far*: an :class:`~tipl_opt.acceptance.AcceptanceRule` (with the jump's
  :class:`~tipl_opt.guard.JumpGuard`).

Each jump's :class:`~tipl_opt.jumps.JumpReport` goes to the optimizer's own jump hooks and the
global ones (:mod:`tipl_opt.events`), never straight to plugins.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tipl_opt import events
from tipl_opt.acceptance import AcceptanceRule, Decision, make_rule
from tipl_opt.errors import ConfigError, TiplError
from tipl_opt.guard import JumpGuard, log_binding
from tipl_opt.history import WeightHistory
from tipl_opt.jump_mask import JumpMask
from tipl_opt.jumps import COUNTERS, JumpConfig, JumpReport, JumpTally
from tipl_opt.paths.spec import ParamSpec, role_mask
from tipl_opt.persistence import (
    PersistenceMeter,
    RolePersistence,
    observe,
    persistence_check,
)
from tipl_opt.predictors.base import Predictor
from tipl_opt.predictors.linear import LinearPredictor
from tipl_opt.predictors.loading import load_predictor
from tipl_opt.schedule import CADENCE_JUMPS, CadenceSchedule, Schedule, regular_interval

logger = logging.getLogger(__name__)

__all__ = ["COUNTERS", "TIPLOptimizer", "guess_role", "resolve_predictor", "role_mask"]


def guess_role(name: str) -> str:
    """Role of a parameter from its name (``critic``/``value`` -> critic, ``q`` nets -> q)."""
    lowered = name.lower()
    if any(k in lowered for k in ("critic", "value", "vf", "qf")):
        return "critic"
    if "q_net" in lowered:
        return "q"
    return "actor"


def resolve_predictor(predictor: Predictor | str | os.PathLike[str] | None,
                      context: int | None = None) -> Predictor:
    """``None``/``"default"``: the embedded default predictor, or ``linear`` when the install
    ships none; anything else as :func:`~tipl_opt.predictors.load_predictor` takes it.
    ``"linear"`` by name fits a window of ``context`` snapshots when one is given."""
    if predictor is None or predictor == "default":
        try:
            return load_predictor("default")
        except TiplError:
            logger.info("no embedded default predictor; using 'linear'")
            return LinearPredictor()
    resolved = load_predictor(predictor)
    if (isinstance(predictor, str) and isinstance(resolved, LinearPredictor) and context
            and context != resolved.context):
        return LinearPredictor(context)
    return resolved


class _Move:
    """The :class:`~tipl_opt.acceptance.Candidate` of one jump: ``start`` (the parameters as
    they were, in their own dtypes) plus ``fraction`` times ``delta`` (flat float32 [P]);
    ``roles`` (one per parameter) lets a rule give each role its own fraction."""

    def __init__(self, params: list[torch.Tensor], delta: torch.Tensor,
                 relative_size: float, roles: Sequence[str] = ()) -> None:
        self.params = params
        self.start = [p.detach().clone() for p in params]
        self.delta = delta
        self.relative_size = relative_size
        self.param_roles = list(roles) or ["params"] * len(params)
        self.roles = frozenset(self.param_roles)
        self.fraction = 0.0
        self.fractions: dict[str, float] = {}

    def _fraction_of(self, role: str) -> float:
        return self.fractions.get(role, self.fraction)

    def write(self, fraction: float, parts: Mapping[str, float] | None = None) -> None:
        self.fraction, self.fractions = fraction, dict(parts or {})
        offset = 0
        with torch.no_grad():
            for p, p0, role in zip(self.params, self.start, self.param_roles, strict=True):
                n = p.numel()
                f = self._fraction_of(role)
                if f == 0:
                    p.copy_(p0)
                else:
                    step = self.delta[offset : offset + n].view_as(p).to(p.device, p.dtype)
                    p.copy_(p0 + f * step)
                offset += n

    @property
    def split(self) -> bool:
        """Whether the last write gave some role a fraction other than ``fraction``."""
        return any(f != self.fraction for f in self.fractions.values())

    def applied(self) -> torch.Tensor:
        """The move as last written, flat [P] (``delta`` times each parameter's fraction)."""
        scale = torch.cat([torch.full((p.numel(),), self._fraction_of(role),
                                      dtype=self.delta.dtype, device=self.delta.device)
                           for p, role in zip(self.params, self.param_roles, strict=True)])
        return self.delta * scale


class TIPLOptimizer(torch.optim.Optimizer):
    """Wraps ``base`` (default ``Adam(lr=3e-4)``) and jumps along the predicted weight path.

    * ``policy``: an ``nn.Module`` (parameter names are recorded) or an iterable of tensors.
    * ``predictor``: a :class:`~tipl_opt.predictors.Predictor`, a registered name, a checkpoint
      path, or ``None`` for the embedded default (``linear`` if the install ships none).
    * ``base``: an already-built optimizer over the same parameters; or ``base_class`` and
      ``base_kwargs`` (for example ``lr=1e-3``) to build one.
    * ``config``: a :class:`~tipl_opt.jumps.JumpConfig` or a dict of its fields (flat or by
      section).
    * ``guard``: a :class:`~tipl_opt.guard.JumpGuard` used for every jump (``maybe_jump`` can
      pass its own). Without one, the acceptance rule decides alone (``backtrack``: accept
      whenever the prediction is finite).
    * ``schedule``/``rule``: replace the :class:`~tipl_opt.schedule.Schedule` and
      :class:`~tipl_opt.acceptance.AcceptanceRule` the config describes.

    ``param_groups`` and ``state`` are the base optimizer's own objects, so LR schedulers,
    direct ``param_group["lr"]`` writes and hooks reach it.
    """

    def __init__(self, policy: nn.Module | Iterable[torch.Tensor],
                 predictor: Predictor | str | None = None, *,
                 base: torch.optim.Optimizer | None = None,
                 config: JumpConfig | dict[str, Any] | None = None,
                 guard: JumpGuard | None = None, specs: Sequence[ParamSpec] | None = None,
                 schedule: Schedule | None = None, rule: AcceptanceRule | None = None,
                 base_class: type[torch.optim.Optimizer] = torch.optim.Adam,
                 **base_kwargs: Any) -> None:
        params: list[torch.Tensor]
        if isinstance(policy, nn.Module):
            names = {id(p): n for n, p in policy.named_parameters()}
            params = list(policy.parameters())
        else:
            params = list(policy)
            names = {}
        if base is None:
            if not params:
                raise ConfigError("TIPLOptimizer got no parameters")
            base_kwargs.setdefault("lr", 3e-4)
            base = base_class(params, **base_kwargs)
        elif base_kwargs:
            raise ConfigError(f"pass either base= or base options {sorted(base_kwargs)}, not both")
        if isinstance(base, TIPLOptimizer):
            raise ConfigError("base is already a TIPLOptimizer")
        self.config = config if isinstance(config, JumpConfig) else JumpConfig.model_validate(
            config or {})
        self._own_parts = (schedule is None, rule is None)  # built from the config
        self.schedule: Schedule = schedule or CadenceSchedule(self.config.schedule)
        self.rule: AcceptanceRule = rule or make_rule(self.config.acceptance)
        window = self.config.prediction.context
        self.predictor = resolve_predictor(predictor, window)
        self.base = base
        super().__init__(base.param_groups, base.defaults)
        self.param_groups = base.param_groups  # the very same list and dicts as the base
        self.state = base.state  # shared, so the base's moments are ours
        owned = [p for group in self.param_groups for p in group["params"]]
        if specs is None:
            specs = [ParamSpec(names.get(id(p), f"param{i}"), tuple(p.shape),
                               guess_role(names.get(id(p), ""))) for i, p in enumerate(owned)]
        elif [s.shape for s in specs] != [tuple(p.shape) for p in owned]:
            raise ConfigError("specs do not match the optimizer's parameters (shapes differ)")
        self.specs = list(specs)
        self._mask = JumpMask(self.specs, self.config.acceptance)
        size = sum(p.numel() for p in owned)
        longest = int(getattr(self.predictor, "max_context", 0) or 0)
        context = window or max(self.predictor.context, longest)
        if context < self.predictor.context:
            raise ConfigError(f"context {context} is shorter than the predictor's "
                              f"{self.predictor.context}")
        device = owned[0].device if self.config.prediction.history_device == "param" else "cpu"
        self.history = WeightHistory(context, size, device=device)
        self.jump_window = self.predictor.context if longest else context
        """Snapshots a jump needs: the whole history, or for a predictor that declares a
        ``max_context`` (it uses a longer history when there is one), its ``context``. A
        history longer than that is kept across jumps (moved along with each), whatever
        ``keep_window`` says."""
        self.persistence = self._meter(self.config)
        """How far the path (or each role's, ``persistence_scope="role"``) keeps its direction
        (``min_persistence`` set), else ``None``."""
        self.guard = guard
        self.counters = JumpTally()
        self.steps = 0  # base optimizer steps taken through this optimizer
        self._last_snapshot: int | None = None
        self._fresh = 0  # snapshots recorded since the last jump
        self._recent: deque[bool] = deque(maxlen=CADENCE_JUMPS)  # newest jumps: went whole?
        self.last_report: JumpReport | None = None
        self._jump_hooks: dict[int, events.JumpHook] = {}
        self.gate: Callable[[], bool] | None = None
        """Asked right before a due jump: ``False`` holds it (the snapshot is still taken; the
        full window jumps at the next safe point the gate allows). The RL adapters' return
        watchdog holds jumps while the returns fall."""
        self._undo: list[torch.Tensor] | None = None  # the weights before the last jump
        self._undo_wait: int | None = None  # undo_jump_later() asked: undo at the next step

    # -- the Optimizer interface ------------------------------------------------------------
    @property
    def owned_params(self) -> list[torch.Tensor]:
        """The parameters this optimizer (and its base) steps, in flatten order."""
        return [p for group in self.param_groups for p in group["params"]]

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        """One base step; in ``auto`` mode, then snapshot and maybe jump."""
        loss = self.base.step(closure) if closure is not None else self.base.step()
        self.steps += 1
        if self._undo_wait is not None:  # an undo decided elsewhere, done now
            wait, self._undo_wait = self._undo_wait, None
            self.undo_jump(wait)
            return loss
        if self.config.schedule.mode == "auto":
            self._safe_point(self.guard)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def maybe_jump(self, guard: JumpGuard | None = None) -> JumpReport | None:
        """Call at a safe point (``manual`` mode): records a snapshot if one is due and jumps if
        the window is full. Returns the jump's report, or ``None`` if no jump was tried."""
        if self.config.schedule.mode != "manual":
            raise TiplError("maybe_jump() is for mode='manual'; in mode='auto' jumps happen "
                            "inside step(). Build the optimizer with config={'mode': 'manual'}.")
        return self._safe_point(guard or self.guard)

    def register_jump_hook(self, hook: events.JumpHook) -> events.HookHandle:
        """Call ``hook(optimizer, report)`` after every attempted jump of this optimizer;
        ``handle.remove()`` on the returned handle unregisters it. A hook that raises is logged
        and never stops training."""
        return events.add_hook(self._jump_hooks, hook)

    # -- snapshots and jumps ---------------------------------------------------------------
    def flat_weights(self) -> torch.Tensor:
        """The parameters as one float32 vector [P] on the history's device."""
        device = self.history.buffer.device
        return torch.cat([p.detach().reshape(-1).to(device, torch.float32)
                          for p in self.owned_params])

    def snapshot(self, measure: bool = True) -> None:
        """Record the current weights into the history now (``measure``: and into the
        persistence check, if any; not for the restart of a window right after a jump, a
        point the check has already seen before the jump moved it)."""
        self.history.push(self.flat_weights(), self.steps)
        self._last_snapshot = self.steps
        self._fresh += 1
        self.counters["snapshots"] += 1
        if measure and self.persistence is not None:
            observe(self.persistence, self.history.window(), self.config.schedule)

    def current_horizon(self) -> int:
        """Snapshot intervals the next jump predicts ahead (the schedule's answer)."""
        longest = int(max(getattr(self.predictor, "horizons", (1,))))
        return self.schedule.horizon(self.steps, longest)

    def _safe_point(self, guard: JumpGuard | None) -> JumpReport | None:
        if not self.schedule.snapshot_due(self.steps, self._last_snapshot):
            return None
        self.snapshot()

        def due() -> bool:
            return self.ready and self.schedule.jump_due(self.steps, self._fresh,
                                                         self.jump_window, self._recent)

        if not due():
            return None
        if self._low_persistence():
            self.counters["jumps_held"] += 1
            return None
        if self.gate is not None and not self.gate():
            logger.debug("jump at step %d held by the gate", self.steps)
            return None
        if not due():  # the gate undid the previous jump: a fresh window
            return None
        return self.jump(guard)

    def _meter(self, config: JumpConfig) -> PersistenceMeter | RolePersistence | None:
        """The persistence check ``config`` asks for (``min_persistence`` set), else ``None``:
        of the whole path, or of each role's (``persistence_scope="role"``)."""
        return persistence_check(config.schedule, self.specs, self.jump_window)

    def _low_persistence(self) -> bool:
        """Whether the persistence check holds a due jump: the path's measured persistence is
        below ``min_persistence`` (never before it is measured); by role, every role's (with
        ``persistence_hold="jump"``: any role's)."""
        level = self.config.schedule.min_persistence
        if level is None or self.persistence is None:
            return False
        if isinstance(self.persistence, RolePersistence):
            values = self.persistence.values
            moving = self.config.acceptance.roles or list(values)
            low = [(value := values.get(role)) is not None and value < level
                   for role in moving]
            return any(low) if self.config.schedule.persistence_hold == "jump" else all(low)
        value = self.persistence.value
        if value is None or value >= level:
            return False
        logger.debug("jump at step %d held: path persistence %.2f < %.2f", self.steps, value,
                     level)
        return True

    def _held_roles(self) -> tuple[str, ...]:
        """The roles whose own path has lost its direction (``persistence_scope="role"``):
        measured below ``min_persistence``; a jump leaves their weights as they are."""
        level = self.config.schedule.min_persistence
        if level is None or not isinstance(self.persistence, RolePersistence):
            return ()
        moving = self.config.acceptance.roles
        return tuple(role for role, value in self.persistence.values.items()
                     if value is not None and value < level
                     and (moving is None or role in moving))

    @property
    def ready(self) -> bool:
        """Whether the history holds the :attr:`jump_window` snapshots a jump needs."""
        return len(self.history) >= self.jump_window

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo_jump` has a jump to take back."""
        return self._undo is not None

    def undo_jump_later(self, wait: int = 0) -> bool:
        """Ask for :meth:`undo_jump` at the end of this optimizer's next :meth:`step` (that
        step's update is dropped with the jump). For an undo decided while another optimizer
        steps (SAC's critic, between the actor's forward pass and its backward pass): writing
        these weights then would break the graph already built on them. Returns ``False``
        when there is no jump to undo."""
        if self._undo is None:
            return False
        self._undo_wait = max(int(wait), 0)
        return True

    def undo_jump(self, wait: int = 0) -> bool:
        """Put back the weights held right before the last accepted jump (the base steps
        taken since are dropped with it; the base optimizer's moments are kept) and start a
        fresh window there; the next jump then also waits ``wait`` more snapshots. Counted as
        ``jumps_undone``. Returns ``False`` (and changes nothing) when there is no jump to
        undo: none accepted yet, or already undone. Only the last jump can be undone, and only
        in this session (the saved state holds no undo copy)."""
        if self._undo is None:
            return False
        with torch.no_grad():
            for p, p0 in zip(self.owned_params, self._undo, strict=True):
                p.copy_(p0)
        self._undo = self._undo_wait = None
        self.history.reset()
        if self.persistence is not None:
            self.persistence.reset()
        self.snapshot()
        self._fresh = -max(int(wait), 0)
        self.counters["jumps_undone"] += 1
        logger.info("jump undone at step %d (next jump waits %d more snapshots)", self.steps,
                    wait)
        return True

    def jump(self, guard: JumpGuard | None = None) -> JumpReport:
        """Predict from the full window and let the acceptance rule decide how much of the
        predicted move (times ``scale``) to keep, checked by ``guard`` (default: the
        optimizer's own). The window restarts at the resulting weights whatever the outcome
        (or, with ``keep_window``, is moved along with them)."""
        guard = guard if guard is not None else self.guard
        if not self.ready:
            raise TiplError(f"the window holds {len(self.history)} of the {self.jump_window} "
                            "snapshots a jump needs")
        window, steps = self.history.window()
        self._undo = self._undo_wait = None  # a new attempt settles the previous jump
        horizon = self.current_horizon()
        current = self.flat_weights()
        start = time.perf_counter()
        if not bool(torch.isfinite(window).all()):  # diverged: nothing to predict from
            prediction = current
        else:
            prediction = self.predictor.predict(window, steps, self.specs, horizon)
        ms = (time.perf_counter() - start) * 1000
        norm = float(current.norm()) or 1.0
        delta = (prediction.to(current) - current) * self.config.acceptance.scale
        if self._mask.mask is not None:  # other roles and fixed parameters keep their weights
            delta = delta * self._mask.mask.to(delta)
        held = self._held_roles()
        if held:  # so do the roles whose own path has lost its direction
            kept = role_mask(self.specs, held)
            assert kept is not None
            delta = delta * (~kept).to(delta)
        size = float(delta.norm()) / norm
        limited_by: tuple[str, ...] = ()
        applied = torch.zeros_like(delta)
        if prediction is current:
            decision = Decision(0.0, reason="non-finite window")
        elif not torch.all(torch.isfinite(prediction)):
            decision = Decision(0.0, reason="non-finite prediction")
        else:
            move = _Move(self.owned_params, delta, size, [spec.role for spec in self.specs])
            logged = log_binding(guard) if guard is not None else None
            if logged is not None:
                logged.reference()
            decision = self.rule.decide(move, logged)
            limited_by = tuple(logged.binding) if logged is not None else ()
            parts = dict(decision.parts or {})
            if (move.fraction, move.fractions) != (decision.fraction, parts) or (
                    decision.fraction == 0 and not any(parts.values())):
                move.write(decision.fraction, parts)  # exactly the previous weights if rejected
            applied = move.applied()
            if decision.fraction > 0 or any(parts.values()):
                self._undo = move.start  # what undo_jump() puts back
        accepted = decision.fraction > 0 or any((decision.parts or {}).values())
        if accepted and self.config.acceptance.reset_moments:
            self.state.clear()
        cadence = self.config.schedule
        sooner = cadence.whole_jump_every is not None and (
            0 <= self._fresh < regular_interval(cadence, self.jump_window))
        self._fresh = 0
        if accepted and self.persistence is not None:  # it measures the gradient steps' path
            self.persistence.translate(applied)
        if self.config.prediction.keep_window or self.history.capacity > self.jump_window:
            if accepted:  # the window continues from the new weights
                self.history.translate(applied)
        else:
            self.history.reset()
            self.snapshot(measure=False)
        fractions = dict(decision.parts or {})
        if accepted:
            size = float(applied.norm()) / norm
        report = JumpReport(step=self.steps, horizon=horizon, fraction=decision.fraction,
                            relative_size=size, fractions=fractions,
                            guard=decision.guard, accepted=accepted,
                            shortened=accepted and min([decision.fraction,
                                                        *fractions.values()]) < 1,
                            prediction_ms=ms, reason=decision.reason, limited_by=limited_by,
                            held_roles=held, sooner=sooner,
                            value_head_held=self._mask.holds_head)
        self.counters.add(report)
        self._recent.append(accepted and not report.shortened)
        self.last_report = report
        logger.info("jump at step %d: %s", self.steps, report)
        events.call_jump_hooks(self._jump_hooks, self, report)
        return report

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The base state (moments, param_groups) plus history, counters and config."""
        state = super().state_dict()
        state["tipl"] = {"history": self.history.state_dict(), "steps": self.steps,
                         "last_snapshot": (-1 if self._last_snapshot is None
                                           else self._last_snapshot),
                         "counters": dict(self.counters), "fresh": self._fresh,
                         "recent": list(self._recent),
                         "config": self.config.model_dump(mode="json"),
                         "predictor": getattr(self.predictor, "name", "?")}
        if self.persistence is not None:
            state["tipl"]["persistence"] = self.persistence.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load what :meth:`state_dict` returned. Everything is checked first (config, history
        shape, base state): a state that does not fit raises ``ValueError`` and leaves this
        optimizer as it was."""
        state_dict = dict(state_dict)
        extra = state_dict.pop("tipl", None)
        if extra is not None:
            try:
                config = JumpConfig.model_validate(extra["config"])
                history = WeightHistory(self.history.capacity, self.history.size,
                                        device=self.history.buffer.device)
                history.load_state_dict(extra["history"])
                steps, last = int(extra["steps"]), int(extra["last_snapshot"])
                counters = JumpTally(extra["counters"])
                fresh = int(extra.get("fresh", len(history)))
                recent = deque((bool(x) for x in extra.get("recent", [])),
                               maxlen=CADENCE_JUMPS)
                rule = make_rule(config.acceptance) if self._own_parts[1] else self.rule
                mask = JumpMask(self.specs, config.acceptance)
                meter = self._meter(config)
                if meter is not None and "persistence" in extra:
                    meter.load_state_dict(extra["persistence"], self.history.size)
            except (KeyError, TypeError, ValueError, TiplError) as exc:
                raise ValueError(f"the TIPL state does not fit this optimizer: {exc}") from exc
        super().load_state_dict(state_dict)
        # Optimizer.load_state_dict replaced our param_groups and state: re-link the base.
        self.base.param_groups = self.param_groups
        self.base.state = self.state
        if extra is None:
            return
        self.config, self.history, self.steps, self.counters = config, history, steps, counters
        self._fresh, self._recent = fresh, recent
        self._mask = mask
        self.persistence = meter
        self._undo = self._undo_wait = None
        self._last_snapshot = None if last < 0 else last
        if self._own_parts[0]:
            self.schedule = CadenceSchedule(config.schedule)
        self.rule = rule

    def __repr__(self) -> str:
        return (f"TIPLOptimizer(base={type(self.base).__name__}, predictor="
                f"{getattr(self.predictor, 'name', self.predictor)!r}, "
                f"mode={self.config.schedule.mode}, "
                f"snapshot_every={self.config.schedule.snapshot_every}, "
                f"context={self.history.capacity}, rule={self.rule.name})")
