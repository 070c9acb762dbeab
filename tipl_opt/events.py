"""Jump hooks: who hears about a jump.

Every :class:`~tipl_opt.optimizer.TIPLOptimizer` calls, after each attempted jump, its own hooks
(``optimizer.register_jump_hook(fn)``) and then the process-wide ones registered here
(:func:`register_global_jump_hook`), each as ``fn(optimizer, report)``. The optimizer itself
knows nothing of plugins: this module wires :func:`forward_to_plugins` in as the first global
hook, so the plugins' ``tipl_on_jump`` hook hears every jump.

A hook that raises is logged (once per hook) and never stops training. This module imports
neither torch nor pluggy.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

JumpHook = Callable[[Any, Any], None]
"""``fn(optimizer, report)``: ``report`` is a :class:`tipl_opt.jumps.JumpReport`."""

_ids = itertools.count()


class HookHandle:
    """Returned by the ``register_*_hook`` functions; :meth:`remove` unregisters the hook (also
    usable as a context manager)."""

    def __init__(self, hooks: dict[int, JumpHook], key: int) -> None:
        self._hooks, self.id = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def add_hook(hooks: dict[int, JumpHook], fn: JumpHook) -> HookHandle:
    """Add ``fn`` to the ordered ``hooks`` and return its handle."""
    if not callable(fn):
        raise TypeError(f"a jump hook must be callable, got {type(fn).__name__}")
    key = next(_ids)
    hooks[key] = fn
    return HookHandle(hooks, key)


_GLOBAL_JUMP_HOOKS: dict[int, JumpHook] = {}
_failed: set[int] = set()


def register_global_jump_hook(fn: JumpHook) -> HookHandle:
    """Call ``fn(optimizer, report)`` after every jump of every TIPLOptimizer."""
    return add_hook(_GLOBAL_JUMP_HOOKS, fn)


def call_jump_hooks(own: dict[int, JumpHook], optimizer: Any, report: Any) -> None:
    """Call ``own`` hooks, then the global ones; log a failing hook once, never raise."""
    for key, fn in [*own.items(), *_GLOBAL_JUMP_HOOKS.items()]:
        try:
            fn(optimizer, report)
        except Exception as exc:  # an observer must never stop training
            if key not in _failed:
                _failed.add(key)
                logger.warning("jump hook %r failed (training goes on): %s: %s",
                               getattr(fn, "__qualname__", fn), type(exc).__name__, exc)


def forward_to_plugins(optimizer: Any, report: Any) -> None:
    """The bridge from jump hooks to the plugins' ``tipl_on_jump(report)`` hook."""
    from tipl_opt.plugins import get_plugin_manager

    get_plugin_manager().hook.tipl_on_jump(report=report)


def jump_scalars(report: Any, part: str | None = None) -> dict[str, float]:
    """A jump report as the scalars an RL library's logger records, keyed ``tipl/<name>``
    (``tipl/<part>/<name>`` for one of several optimizers): ``accepted`` (1 or 0),
    ``fraction``, ``relative_size``, ``guard`` (NaN without a guard), ``prediction_ms`` and
    ``horizon``."""
    prefix = f"tipl/{part}/" if part else "tipl/"
    return {f"{prefix}accepted": float(report.accepted),
            f"{prefix}fraction": float(report.fraction),
            f"{prefix}relative_size": float(report.relative_size),
            f"{prefix}guard": float(report.guard),
            f"{prefix}prediction_ms": float(report.prediction_ms),
            f"{prefix}horizon": float(report.horizon)}


_PLUGIN_BRIDGE = register_global_jump_hook(forward_to_plugins)
"""The handle of the plugin bridge (``_PLUGIN_BRIDGE.remove()`` silences the plugins)."""
