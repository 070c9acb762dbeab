"""tipl-opt adapter plugin for Tianshou 2: collects learning paths of PPO, DQN and SAC runs."""

from tipl_tianshou.adapter import TianshouAdapter

__all__ = ["TianshouAdapter"]
__version__ = "0.1.0"
