"""The Stable-Baselines3 adapter: what tipl-opt sees of SB3 (:class:`tipl_opt.adapters.Adapter`)."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping
from typing import Any

import torch

from tipl_opt.adapters.base import ProgressSink, SnapshotSink, TIPLSetup, TrainSpec
from tipl_opt.adapters.evaluation import check_env_id, require_action_space
from tipl_sb3.algorithms import ALGORITHMS, algorithm_info, check_hyperparams


class SB3Adapter:
    """Trains PPO, A2C, DQN, SAC and TD3 with Stable-Baselines3's own algorithms and defaults.

    One training env, ``MlpPolicy`` with ``spec.hidden_sizes``/``spec.activation``, ``spec``'s
    hyperparams passed to the algorithm's constructor. Snapshot timing:
    :mod:`tipl_sb3.collect`; parameter names and roles (``"actor"``, ``"critic"``, ``"shared"``,
    ``"q"``): :func:`tipl_sb3.params.tagged_parameters`. Stable-Baselines3 is imported only by
    :meth:`check` and :meth:`collect`.
    """

    name = "sb3"
    algorithms: tuple[str, ...] = ALGORITHMS

    def library_version(self) -> str:
        """Installed Stable-Baselines3 version (from package metadata, without importing it)."""
        return importlib.metadata.version("stable-baselines3")

    def check(self, spec: TrainSpec) -> None:
        """Raise ``ConfigError`` for an unknown algorithm, env id or hyperparameter key
        (checked against the SB3 constructor's signature, with close matches suggested) and
        ``IncompatibleEnvError`` for an action space the algorithm cannot handle (DQN:
        Discrete; SAC/TD3: Box; PPO/A2C: either). Builds no agent."""
        info = algorithm_info(spec.algo)
        check_hyperparams(spec.algo, spec.hyperparams)
        check_env_id(spec.env_id)
        require_action_space(spec.algo, spec.env_id, info.action_spaces)

    def collect(self, spec: TrainSpec, on_snapshot: SnapshotSink, on_progress: ProgressSink,
                tipl: TIPLSetup | None = None,
                tensorboard: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """Check ``spec``, then train it and emit snapshots (see
        :func:`tipl_sb3.collect.run_collection`); returns the hyperparameters used.

        With ``tipl``, the agent's optimizers are wrapped by :func:`tipl_sb3.attach` (the
        setup's ``jump`` fields override its defaults) and the hyperparameters gain a
        ``"tipl"`` entry with the predictor and each optimizer's final jump counters. With
        ``tensorboard``, SB3's logger writes TensorBoard events there (its own scalars and
        the ``tipl/`` jump reports)."""
        self.check(spec)
        from tipl_sb3.collect import run_collection

        return run_collection(spec, on_snapshot, on_progress, tipl, tensorboard)

    def evaluate_weights(self, spec: TrainSpec, params: Mapping[str, torch.Tensor],
                         episodes: int) -> tuple[float, float]:
        """Load ``params`` (named as in the snapshots) into a fresh agent and return the (mean,
        std) return of ``episodes`` deterministic episodes (see
        :func:`tipl_sb3.weights.evaluate_weights`)."""
        self.check(spec)
        from tipl_sb3.weights import evaluate_weights

        return evaluate_weights(spec, params, episodes)

    def __repr__(self) -> str:
        return f"SB3Adapter(algorithms={self.algorithms})"
