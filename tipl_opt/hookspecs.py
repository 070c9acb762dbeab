"""The hooks a tipl-opt plugin can implement.

A hookspec is an empty function whose docstring is the contract. Registration hooks receive a
``register`` callback; event hooks receive one record and return nothing. Built-in pieces are
plugins too and register through these same hooks.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("tipl_opt")
hookimpl = pluggy.HookimplMarker("tipl_opt")


@hookspec
def tipl_register_adapters(register: Any) -> None:
    """Register RL-library adapters.

    Call ``register(adapter)`` once per adapter, where ``adapter`` satisfies
    :class:`tipl_opt.adapters.Adapter` (a ``name`` such as ``"sb3"``, the ``algorithms`` it can
    train, and ``collect(...)``).
    """


@hookspec
def tipl_register_predictors(register: Any) -> None:
    """Register weight-path predictors.

    Call ``register(name, factory)`` where ``factory(**options)`` returns a predictor.
    """


@hookspec
def tipl_register_acceptance_rules(register: Any) -> None:
    """Register jump acceptance rules.

    Call ``register(name, factory)`` where ``factory(config)`` takes a
    :class:`tipl_opt.jumps.AcceptanceConfig` and returns a
    :class:`tipl_opt.acceptance.AcceptanceRule`; ``JumpConfig(rule=name)`` selects it.
    """


@hookspec
def tipl_on_snapshot(run: str, snapshot: Any) -> None:
    """Observe one snapshot as it is added to a learning path.

    ``run`` is the run's file stem (``sb3-ppo-CartPole-v1-s0``); ``snapshot`` is the
    :class:`tipl_opt.paths.Snapshot` just recorded (weights, env steps, gradient steps, return).
    Called in the process that trains, once per snapshot. Must not modify the snapshot.
    """


@hookspec
def tipl_on_run_end(run: str, path: str, info: dict[str, Any]) -> None:
    """Observe a finished collection run: ``path`` is the learning-path file just written;
    ``info`` holds the number of snapshots, parameters and the wall time in seconds."""


@hookspec
def tipl_on_jump(report: Any) -> None:
    """Observe one attempted weight jump: ``report`` is a :class:`tipl_opt.jumps.JumpReport`
    (step, horizon, fraction applied, relative size, guard value, accepted, prediction time).
    Called by :class:`tipl_opt.optimizer.TIPLOptimizer` right after the attempt."""
