"""The Tianshou 2 adapter: what tipl-opt sees of Tianshou (:class:`tipl_opt.adapters.Adapter`)."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch

from tipl_opt.adapters.base import ProgressSink, SnapshotSink, TIPLSetup, TrainSpec
from tipl_opt.adapters.evaluation import check_env_id, require_action_space
from tipl_tianshou.algorithms import ALGORITHMS, check_algorithm, resolve

ACTION_SPACES: dict[str, tuple[type[gym.Space[Any]], ...]] = {
    "ppo": (gym.spaces.Discrete, gym.spaces.Box),
    "dqn": (gym.spaces.Discrete,),
    "sac": (gym.spaces.Box,),
}
"""Action spaces each algorithm trains on."""


class TianshouAdapter:
    """Trains PPO, DQN and SAC with Tianshou 2's own algorithms and trainers.

    One training env, no Tianshou test collector or logger: tipl-opt evaluates the snapshots
    itself. Hyperparameter keys and defaults: :mod:`tipl_tianshou.algorithms`. Snapshot roles:
    ``"actor"``/``"critic"`` (PPO, SAC; both SAC critics are ``"critic"``), ``"q"`` (DQN).
    Tianshou is imported only when :meth:`collect` runs.
    """

    name = "tianshou"
    algorithms: tuple[str, ...] = ALGORITHMS

    def library_version(self) -> str:
        """Installed Tianshou version (read from package metadata, without importing it)."""
        return importlib.metadata.version("tianshou")

    def check(self, spec: TrainSpec) -> None:
        """Raise ``ConfigError`` for an unknown algorithm, env id or hyperparameter (key, type
        or range), ``IncompatibleEnvError`` for an action space the algorithm cannot handle.
        Builds no agent and does not import Tianshou."""
        check_algorithm(spec.algo)
        resolve(spec.algo, spec.hyperparams)
        check_env_id(spec.env_id)
        require_action_space(spec.algo, spec.env_id, ACTION_SPACES[spec.algo])

    def collect(self, spec: TrainSpec, on_snapshot: SnapshotSink,
                on_progress: ProgressSink, tipl: TIPLSetup | None = None,
                tensorboard: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """Train ``spec`` and emit snapshots (see :func:`tipl_tianshou.collect.run_collection`).

        With ``tipl``, the optimizers are TIPLOptimizers (PPO: manual jumps at rollout
        boundaries; DQN, SAC: auto; the setup's ``jump`` fields override these defaults, see
        :mod:`tipl_tianshou.attachment`), and the hyperparameters gain a ``"tipl"`` entry with the
        predictor and each optimizer's final jump counters. With ``tensorboard``, a Tianshou
        ``TensorboardLogger`` writes the trainer's scalars and the ``tipl/`` jump reports
        there."""
        self.check(spec)
        from tipl_tianshou.collect import run_collection

        return run_collection(spec, on_snapshot, on_progress, tipl=tipl,
                              tensorboard=tensorboard)

    def evaluate_weights(self, spec: TrainSpec, params: Mapping[str, torch.Tensor],
                         episodes: int) -> tuple[float, float]:
        """Load ``params`` (named as in the snapshots) into a fresh agent and return the (mean,
        std) return of ``episodes`` deterministic episodes (see
        :func:`tipl_tianshou.weights.evaluate_weights`)."""
        self.check(spec)
        from tipl_tianshou.weights import evaluate_weights

        return evaluate_weights(spec, params, episodes)

    def __repr__(self) -> str:
        return f"TianshouAdapter(algorithms={self.algorithms})"
