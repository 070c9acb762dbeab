"""Return thresholds that count as "solved", with where each one comes from. One place only."""

from __future__ import annotations

import gymnasium as gym

THRESHOLDS: dict[str, tuple[float, str]] = {
    "CartPole-v1": (475.0, "gymnasium registration reward_threshold"),
    "Acrobot-v1": (-100.0, "gymnasium registration reward_threshold"),
    "InvertedPendulum-v5": (950.0, "gymnasium registration reward_threshold"),
    "Pendulum-v1": (-200.0, "no registered threshold; -200 is the usual solved level of "
                    "SB3-Zoo / CleanRL reports for SAC and TD3"),
    "LunarLander-v3": (200.0, "gymnasium registration reward_threshold"),
    "Hopper-v5": (3800.0, "gymnasium registration reward_threshold"),
    "HalfCheetah-v5": (4800.0, "gymnasium registration reward_threshold"),
}


def threshold_for(env_id: str) -> tuple[float, str] | None:
    """(threshold, source) for ``env_id``: the table above, else the env's registered
    ``reward_threshold``, else ``None``."""
    if env_id in THRESHOLDS:
        return THRESHOLDS[env_id]
    try:
        value = gym.spec(env_id).reward_threshold
    except gym.error.Error:
        return None
    return (float(value), "gymnasium registration reward_threshold") if value is not None \
        else None
