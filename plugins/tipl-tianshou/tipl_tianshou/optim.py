"""``TIPLOptimizerFactory``: a Tianshou ``OptimizerFactory`` whose optimizers are TIPLOptimizers.

    factory = TIPLOptimizerFactory(AdamOptimizerFactory(lr=3e-4), "linear",
                                   config={"mode": "manual", "snapshot_every": 1})
    algorithm = PPO(policy=policy, critic=critic, optim=factory, ...)
    tipl = factory.optimizers[0]            # call tipl.maybe_jump() at rollout boundaries

The wrapped factory builds the base optimizer exactly as it would alone (class, learning rate,
param groups); the LR scheduler of its ``lr_scheduler_factory`` is built over the TIPLOptimizer,
whose ``param_groups`` are the base's own, so the schedule reaches the base. Tianshou stores the
optimizer's ``state_dict()`` under ``"_optimizers"`` in ``Algorithm.state_dict()``: the TIPL
history, counters and step count round-trip with it.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from pydantic import ValidationError
from tianshou.algorithm.optim import OptimizerFactory, ParamsType
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from tipl_opt.errors import ConfigError
from tipl_opt.guard import JumpGuard
from tipl_opt.jumps import JumpConfig
from tipl_opt.optimizer import TIPLOptimizer, guess_role, resolve_predictor
from tipl_opt.paths.spec import ParamSpec
from tipl_opt.predictors.base import Predictor

logger = logging.getLogger(__name__)

SpecsFor = Callable[[nn.Module, Sequence[torch.Tensor]], Sequence[ParamSpec]]
"""``(module, owned) -> specs``: one :class:`ParamSpec` per tensor of ``owned`` (the tensors the
base optimizer owns, in its param-group order), in that order."""


def module_specs(module: nn.Module, owned: Sequence[torch.Tensor]) -> list[ParamSpec]:
    """Specs named as in ``module.named_parameters()``, roles guessed from the names
    (:func:`tipl_opt.optimizer.guess_role`: ``critic``/``value`` -> critic, else actor)."""
    return list(tagged_specs()(module, owned))


def tagged_specs(role: str | None = None,
                 rename: Callable[[str], str] | None = None) -> SpecsFor:
    """A :data:`SpecsFor` that names each tensor ``rename(name in module)`` and gives it
    ``role`` (``None``: guessed from the module-relative name)."""

    def specs_for(module: nn.Module, owned: Sequence[torch.Tensor]) -> list[ParamSpec]:
        names = {id(p): n for n, p in module.named_parameters()}
        specs = []
        for i, p in enumerate(owned):
            name = names.get(id(p), f"param{i}")
            specs.append(ParamSpec(rename(name) if rename else name, tuple(p.shape),
                                   role or guess_role(name)))
        return specs

    return specs_for


class TIPLOptimizerFactory(OptimizerFactory):
    """Wraps any Tianshou ``OptimizerFactory``: each optimizer it builds is a
    :class:`~tipl_opt.optimizer.TIPLOptimizer` around the one ``base_factory`` builds.

    * ``predictor``: ``"default"`` (``linear`` if the install ships no default), a registered
      name, a checkpoint folder, or a predictor object; loaded once, on first use, and shared
      by every optimizer this factory builds (:attr:`predictor`).
    * ``config``: :class:`~tipl_opt.jumps.JumpConfig` or a dict of its fields (default: auto
      mode). On-policy algorithms need ``mode="manual"`` and ``maybe_jump()`` at rollout
      boundaries: a jump inside an update would invalidate the rollout's log-probabilities.
    * ``guard``: used for every jump of every optimizer built (``TIPLOptimizer.guard`` can be
      set later, once the observations it needs exist).
    * ``specs_for``: names and roles of the parameters (:data:`SpecsFor`); default
      :func:`module_specs`.
    * ``on_build``: called with each TIPLOptimizer right after it is built.

    :attr:`optimizers` lists the TIPLOptimizers built so far, in creation order.
    """

    def __init__(self, base_factory: OptimizerFactory,
                 predictor: Predictor | str | os.PathLike[str] = "default",
                 config: JumpConfig | Mapping[str, Any] | None = None,
                 guard: JumpGuard | None = None, specs_for: SpecsFor = module_specs,
                 on_build: Callable[[TIPLOptimizer], object] | None = None) -> None:
        super().__init__()
        if not isinstance(base_factory, OptimizerFactory):
            raise ConfigError(f"base_factory must be a tianshou OptimizerFactory, got "
                              f"{type(base_factory).__name__}")
        if isinstance(base_factory, TIPLOptimizerFactory):
            raise ConfigError("base_factory is already a TIPLOptimizerFactory")
        self.base_factory = base_factory
        self.lr_scheduler_factory = base_factory.lr_scheduler_factory
        try:
            self.config = (config if isinstance(config, JumpConfig)
                           else JumpConfig.model_validate(dict(config or {})))
        except ValidationError as exc:
            raise ConfigError(f"Invalid TIPL jump config {config}: {exc}") from exc
        self._predictor_spec = predictor
        self._predictor: Predictor | None = None
        self.guard = guard
        self.specs_for = specs_for
        self.on_build = on_build
        self.optimizers: list[TIPLOptimizer] = []

    @property
    def predictor(self) -> Predictor:
        """The predictor every optimizer of this factory uses (loaded on first access)."""
        if self._predictor is None:
            self._predictor = resolve_predictor(self._predictor_spec)
        return self._predictor

    def create_instances(self, module: nn.Module
                         ) -> tuple[torch.optim.Optimizer, LRScheduler | None]:
        """Build the base optimizer over ``module`` with ``base_factory`` (without its
        scheduler), wrap it, and build this factory's LR scheduler over the wrapper."""
        plain = copy.copy(self.base_factory)
        plain.lr_scheduler_factory = None
        base, base_scheduler = plain.create_instances(module)
        owned = [p for group in base.param_groups for p in group["params"]]
        optimizer = self._wrap(base, self.specs_for(module, owned))
        scheduler = base_scheduler
        if self.lr_scheduler_factory is not None:
            scheduler = self.lr_scheduler_factory.create_scheduler(optimizer)
        return optimizer, scheduler

    def _create_optimizer_for_params(self, params: ParamsType) -> torch.optim.Optimizer:
        """For callers that pass bare parameters (no module): names are ``param0``..."""
        base = self.base_factory._create_optimizer_for_params(params)
        return self._wrap(base, None)

    def _wrap(self, base: torch.optim.Optimizer,
              specs: Sequence[ParamSpec] | None) -> TIPLOptimizer:
        owned: Iterable[torch.Tensor] = [p for g in base.param_groups for p in g["params"]]
        optimizer = TIPLOptimizer(owned, self.predictor, base=base, config=self.config,
                                  guard=self.guard, specs=specs)
        self.optimizers.append(optimizer)
        if self.on_build is not None:
            self.on_build(optimizer)
        logger.debug("built %r", optimizer)
        return optimizer

    def counters(self) -> list[dict[str, int]]:
        """The jump counters of each optimizer built, in creation order."""
        return [dict(opt.counters) for opt in self.optimizers]
