"""tipl-opt adapter plugin for Stable-Baselines3: collects learning paths of PPO, A2C, DQN, SAC
and TD3 runs, and attaches TIPLOptimizer to SB3 agents.

    callback = tipl_sb3.attach(model, "linear")
    model.learn(20_000, callback=callback)

Stable-Baselines3 itself is imported only when a run is checked or trained, or when
:func:`attach`, :func:`load` or :class:`TIPLCallback` is first used.
"""

from typing import TYPE_CHECKING, Any

from tipl_sb3.adapter import SB3Adapter

if TYPE_CHECKING:
    from tipl_sb3.attachment import attach, load
    from tipl_sb3.callback import TIPLCallback

__all__ = ["SB3Adapter", "TIPLCallback", "attach", "load"]
__version__ = "0.1.0"

_LAZY = {"attach": "tipl_sb3.attachment", "load": "tipl_sb3.attachment",
         "TIPLCallback": "tipl_sb3.callback"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tipl_sb3' has no attribute {name!r}")
