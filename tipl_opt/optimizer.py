"""``TIPLOptimizer``: a drop-in ``torch.optim.Optimizer`` that wraps a base optimizer and now and
then replaces gradient steps with one predicted, guarded jump along the weights' path."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from tipl_opt.errors import ConfigError, TiplError
from tipl_opt.guard import JumpGuard
from tipl_opt.history import WeightHistory
from tipl_opt.jumps import JumpConfig, JumpReport
from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import Predictor
from tipl_opt.predictors.linear import LinearPredictor
from tipl_opt.predictors.loading import load_predictor

logger = logging.getLogger(__name__)

COUNTERS = ("snapshots", "jumps_tried", "jumps_accepted", "jumps_shortened", "jumps_rejected")


def guess_role(name: str) -> str:
    """Role of a parameter from its name (``critic``/``value`` -> critic, ``q`` nets -> q)."""
    lowered = name.lower()
    if any(k in lowered for k in ("critic", "value", "vf", "qf")):
        return "critic"
    if "q_net" in lowered:
        return "q"
    return "actor"


def _resolve_predictor(predictor: Predictor | str | None) -> Predictor:
    if predictor is None or predictor == "default":
        try:
            return load_predictor("default")
        except TiplError:
            logger.info("no embedded default predictor; using 'linear'")
            return LinearPredictor()
    return load_predictor(predictor)


class TIPLOptimizer(torch.optim.Optimizer):
    """Wraps ``base`` (default ``Adam(lr=3e-4)``) and jumps along the predicted weight path.

    * ``policy``: an ``nn.Module`` (parameter names are recorded) or an iterable of tensors.
    * ``predictor``: a :class:`~tipl_opt.predictors.Predictor`, a registered name, a checkpoint
      path, or ``None`` for the embedded default (``linear`` if the install ships none).
    * ``base``: an already-built optimizer over the same parameters; or ``base_class`` and
      ``base_kwargs`` (for example ``lr=1e-3``) to build one.
    * ``config``: a :class:`~tipl_opt.jumps.JumpConfig` or a dict of its fields.
    * ``guard``: a :class:`~tipl_opt.guard.JumpGuard` used for every jump (``maybe_jump`` can
      pass its own). Without one, jumps are accepted whenever the prediction is finite.

    ``param_groups`` and ``state`` are the base optimizer's own objects, so LR schedulers,
    direct ``param_group["lr"]`` writes and hooks reach it.
    """

    def __init__(self, policy: nn.Module | Iterable[torch.Tensor],
                 predictor: Predictor | str | None = None, *,
                 base: torch.optim.Optimizer | None = None,
                 config: JumpConfig | dict[str, Any] | None = None,
                 guard: JumpGuard | None = None, specs: Sequence[ParamSpec] | None = None,
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
        self.predictor = _resolve_predictor(predictor)
        if (isinstance(predictor, str) and isinstance(self.predictor, LinearPredictor)
                and self.config.context and self.config.context != self.predictor.context):
            # ``"linear"`` by name fits the whole window the config asks for
            self.predictor = LinearPredictor(self.config.context)
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
        size = sum(p.numel() for p in owned)
        context = self.config.context or self.predictor.context
        if context < self.predictor.context:
            raise ConfigError(f"context {context} is shorter than the predictor's "
                              f"{self.predictor.context}")
        device = owned[0].device if self.config.history_device == "param" else "cpu"
        self.history = WeightHistory(context, size, device=device)
        self.guard = guard
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.steps = 0  # base optimizer steps taken through this optimizer
        self._last_snapshot = -1
        self.last_report: JumpReport | None = None

    # -- the Optimizer interface ------------------------------------------------------------
    @property
    def owned_params(self) -> list[torch.Tensor]:
        """The parameters this optimizer (and its base) steps, in flatten order."""
        return [p for group in self.param_groups for p in group["params"]]

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        """One base step; in ``auto`` mode, then snapshot and maybe jump."""
        loss = self.base.step(closure) if closure is not None else self.base.step()
        self.steps += 1
        if self.config.mode == "auto":
            self._safe_point(self.guard)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def maybe_jump(self, guard: JumpGuard | None = None) -> JumpReport | None:
        """Call at a safe point (``manual`` mode): records a snapshot if one is due and jumps if
        the window is full. Returns the jump's report, or ``None`` if no jump was tried."""
        if self.config.mode != "manual":
            raise TiplError("maybe_jump() is for mode='manual'; in mode='auto' jumps happen "
                            "inside step(). Build the optimizer with config={'mode': 'manual'}.")
        return self._safe_point(guard or self.guard)

    # -- snapshots and jumps ---------------------------------------------------------------
    def flat_weights(self) -> torch.Tensor:
        """The parameters as one float32 vector [P] on the history's device."""
        device = self.history.buffer.device
        return torch.cat([p.detach().reshape(-1).to(device, torch.float32)
                          for p in self.owned_params])

    def _write(self, vector: torch.Tensor) -> None:
        offset = 0
        with torch.no_grad():
            for p in self.owned_params:
                n = p.numel()
                p.copy_(vector[offset : offset + n].view_as(p))
                offset += n

    def snapshot(self) -> None:
        """Record the current weights into the history now."""
        self.history.push(self.flat_weights(), self.steps)
        self._last_snapshot = self.steps
        self.counters["snapshots"] += 1

    def current_horizon(self) -> int:
        cfg = self.config
        top = cfg.horizon or int(max(getattr(self.predictor, "horizons", (1,))))
        if cfg.schedule == "fixed" or cfg.total_steps is None:
            return top
        progress = min(self.steps / cfg.total_steps, 1.0)
        low = min(cfg.min_horizon, top)
        return max(low, round(top - (top - low) * progress))

    def _safe_point(self, guard: JumpGuard | None) -> JumpReport | None:
        due = (self._last_snapshot < 0
               or self.steps - self._last_snapshot >= self.config.snapshot_every)
        if not due:
            return None
        self.snapshot()
        if not self.history.full or self.steps < self.config.warmup_steps:
            return None
        return self.jump(guard)

    def jump(self, guard: JumpGuard | None = None) -> JumpReport:
        """Predict from the full window and try the jump now: the predicted move times
        ``config.scale``, with backtracking under ``guard`` (default: the optimizer's own). The
        window restarts at the resulting weights whatever the outcome."""
        guard = guard if guard is not None else self.guard
        if not self.history.full:
            raise TiplError(f"the window holds {len(self.history)} of {self.history.capacity} "
                            "snapshots; a jump needs a full window")
        window, steps = self.history.window()
        horizon = self.current_horizon()
        start = time.perf_counter()
        prediction = self.predictor.predict(window, steps, self.specs, horizon)
        ms = (time.perf_counter() - start) * 1000
        current = self.flat_weights()
        norm = float(current.norm()) or 1.0
        delta = (prediction.to(current) - current) * self.config.scale
        size = float(delta.norm()) / norm
        self.counters["jumps_tried"] += 1
        fraction, value, reason = 0.0, math.nan, ""
        if not torch.all(torch.isfinite(prediction)):
            reason = "non-finite prediction"
        else:
            if guard is not None:
                guard.reference()
            frac = 1.0
            for _ in range(self.config.max_backtracks + 1):
                self._write(current + frac * delta)
                value = guard.measure() if guard is not None else math.nan
                if guard is None or value <= guard.limit:
                    fraction = frac
                    break
                frac /= 2
            else:
                assert guard is not None  # without a guard the first length is accepted
                reason = f"{guard.name} {value:.4g} > limit {guard.limit:g} at every length"
                self._write(current)  # exactly the previous weights
        accepted = fraction > 0
        if accepted:
            self.counters["jumps_accepted"] += 1
            if fraction < 1:
                self.counters["jumps_shortened"] += 1
            if self.config.reset_moments:
                self.state.clear()
        else:
            self.counters["jumps_rejected"] += 1
        self.history.reset()
        self.snapshot()
        report = JumpReport(step=self.steps, horizon=horizon, fraction=fraction,
                            relative_size=size * (fraction if accepted else 1.0), guard=value,
                            accepted=accepted, shortened=accepted and fraction < 1,
                            prediction_ms=ms, reason=reason)
        self.last_report = report
        logger.info("jump at step %d: %s", self.steps, report)
        from tipl_opt.plugins import get_plugin_manager

        get_plugin_manager().hook.tipl_on_jump(report=report)
        return report

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The base state (moments, param_groups) plus history, counters and config."""
        state = super().state_dict()
        state["tipl"] = {"history": self.history.state_dict(), "steps": self.steps,
                         "last_snapshot": self._last_snapshot, "counters": dict(self.counters),
                         "config": self.config.model_dump(mode="json"),
                         "predictor": getattr(self.predictor, "name", "?")}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop("tipl", None)
        super().load_state_dict(state_dict)
        # Optimizer.load_state_dict replaced our param_groups and state: re-link the base.
        self.base.param_groups = self.param_groups
        self.base.state = self.state
        if extra is None:
            return
        self.config = JumpConfig.model_validate(extra["config"])
        self.history.load_state_dict(extra["history"])
        self.steps = int(extra["steps"])
        self._last_snapshot = int(extra["last_snapshot"])
        self.counters = {k: int(extra["counters"].get(k, 0)) for k in COUNTERS}

    def __repr__(self) -> str:
        return (f"TIPLOptimizer(base={type(self.base).__name__}, predictor="
                f"{getattr(self.predictor, 'name', self.predictor)!r}, mode={self.config.mode}, "
                f"snapshot_every={self.config.snapshot_every}, context={self.history.capacity})")
