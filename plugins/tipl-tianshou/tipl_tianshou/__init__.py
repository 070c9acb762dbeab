"""tipl-opt adapter plugin for Tianshou 2: collects learning paths of PPO, DQN and SAC runs and
trains them with TIPLOptimizer.

``TIPLOptimizerFactory`` (a Tianshou ``OptimizerFactory``) and ``RolloutCollector`` are imported
on first access, so importing this package (as the plugin entry point does) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tipl_tianshou.adapter import TianshouAdapter

if TYPE_CHECKING:
    from tipl_tianshou.guards import RolloutCollector
    from tipl_tianshou.optim import TIPLOptimizerFactory

__all__ = ["RolloutCollector", "TIPLOptimizerFactory", "TianshouAdapter"]
__version__ = "0.1.0"

_LAZY = {"TIPLOptimizerFactory": "tipl_tianshou.optim", "RolloutCollector": "tipl_tianshou.guards"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tipl_tianshou' has no attribute {name!r}")
