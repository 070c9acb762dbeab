"""Library-independent pieces adapters share: evaluation episodes and snapshot timing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from tipl_opt.errors import ConfigError, IncompatibleEnvError

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation episodes reset with ``seed + EVAL_SEED_OFFSET + i``: the same start states at every
snapshot of a run, and different ones from training."""


def evaluate(act: Callable[[Any], Any], env: gym.Env[Any, Any], episodes: int,
             seed: int) -> tuple[float, float, int]:
    """Run ``episodes`` episodes with ``act(obs) -> action`` (deterministic), return
    ``(mean return, std return, env steps used)``. ``(nan, nan, 0)`` when ``episodes == 0``."""
    if episodes <= 0:
        return float("nan"), float("nan"), 0
    returns = []
    steps = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + EVAL_SEED_OFFSET + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns)), steps


class NamedTensor(Protocol):
    """A live parameter with its snapshot name (e.g. :class:`~tipl_opt.paths.TaggedParam`)."""

    @property
    def name(self) -> str: ...

    @property
    def tensor(self) -> torch.Tensor: ...


def load_params(tagged: Sequence[NamedTensor], params: Mapping[str, torch.Tensor],
                agent: str) -> None:
    """Copy ``params`` (by name) into the live tensors of ``tagged``; every name must be given,
    with its shape. Raises :class:`ConfigError` naming the first mismatch and what to check."""
    names = [p.name for p in tagged]
    missing = [n for n in names if n not in params]
    unknown = sorted(set(params) - set(names))
    if missing or unknown:
        problem = (f"missing {missing[:3]} ({len(missing)} missing)" if missing
                   else f"unknown {unknown[:3]} ({len(unknown)} unknown)")
        raise ConfigError(f"The weights do not fit the {agent} agent: {problem}. Check the "
                          "algorithm, env and network of the run.")
    with torch.no_grad():
        for p in tagged:
            value = params[p.name]
            if tuple(value.shape) != tuple(p.tensor.shape):
                raise ConfigError(f"Parameter '{p.name}' has shape {tuple(value.shape)} but the "
                                  f"{agent} agent expects {tuple(p.tensor.shape)} (check the "
                                  "hidden sizes).")
            p.tensor.copy_(value.to(p.tensor.device, p.tensor.dtype))


class GradStepCounter:
    """Counts ``step()`` calls of one torch optimizer through a step post-hook (the gradient
    steps of a learning path). Call :meth:`remove` when training ends."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.count = 0
        self._handle = optimizer.register_step_post_hook(self._on_step)

    def _on_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.count += 1

    def remove(self) -> None:
        self._handle.remove()


class SnapshotClock:
    """Decides when a snapshot is due: at the first check at or after each multiple of ``every``
    env steps. ``due`` is called at the points where the weights are safe to read."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.next_at = every

    def due(self, env_steps: int) -> bool:
        if env_steps < self.next_at:
            return False
        self.next_at = (env_steps // self.every + 1) * self.every
        return True


def make_env(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """``gym.make`` with a clear error for an unknown or uninstallable env id."""
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise ConfigError(f"Cannot make env '{env_id}': {exc}") from exc
    except ImportError as exc:
        raise ConfigError(f"Env '{env_id}' needs an extra package: {exc} "
                          "(MuJoCo envs: `pip install 'gymnasium[mujoco]'`)") from exc


def check_env_id(env_id: str) -> None:
    """Raise :class:`ConfigError` if ``env_id`` is not a registered gymnasium id."""
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"Unknown env id '{env_id}': {exc}") from exc


def require_action_space(algo: str, env_id: str, kinds: tuple[type[gym.Space[Any]], ...]) -> None:
    """Raise :class:`IncompatibleEnvError` unless ``env_id``'s action space is one of ``kinds``."""
    env = make_env(env_id)
    try:
        space = env.action_space
    finally:
        env.close()
    if not isinstance(space, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise IncompatibleEnvError(
            f"{algo.upper()} needs a {wanted} action space but {env_id} has {space}. "
            "Pick an algorithm that supports it (e.g. PPO handles both).")
