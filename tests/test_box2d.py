"""Box2D envs (the ``box2d`` extra): a short SB3 PPO run on LunarLander-v3 collects a valid
learning path. Skipped where the extra is not installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tipl_opt.collect import CollectConfig, InlineExecutor, collect
from tipl_opt.paths import LearningPath

pytest.importorskip("Box2D")


def test_sb3_ppo_collects_a_learning_path_on_lunar_lander(tmp_path: Path) -> None:
    config = CollectConfig(lib="sb3", algo="ppo", env="LunarLander-v3", runs=1, steps=1024,
                           every=512, eval_episodes=1, hidden_sizes=(16,),
                           hyperparams={"n_steps": 256, "batch_size": 64, "n_epochs": 2},
                           out=tmp_path)
    summary = collect(config, executor=InlineExecutor())
    assert summary.ok, summary.failures
    path = LearningPath(summary.results[0].path)
    path.validate()
    assert path.env_id == "LunarLander-v3" and path.env_steps.tolist() == [0, 512, 1024]
    assert np.isfinite(path.return_mean).all()
