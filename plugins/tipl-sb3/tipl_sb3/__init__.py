"""tipl-opt adapter plugin for Stable-Baselines3: collects learning paths of PPO, A2C, DQN, SAC
and TD3 runs. Stable-Baselines3 itself is imported only when a run is checked or trained."""

from tipl_sb3.adapter import SB3Adapter

__all__ = ["SB3Adapter"]
__version__ = "0.1.0"
