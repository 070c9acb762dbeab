"""Finished runs of `tipl train` / `tipl bench` are kept and reused: a comparison resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tipl_opt import run_cache
from tipl_opt.train import TrainConfig, make_tasks, run_training


def _config(out: Path, steps: int = 768) -> TrainConfig:
    return TrainConfig(lib="sb3", algo="ppo", env="CartPole-v1", steps=steps, every=256,
                       predictor="linear", compare=True, eval_episodes=1, hidden_sizes=(8,),
                       hyperparams={"n_steps": 128, "batch_size": 64}, out=out)


def test_a_finished_comparison_is_reused_not_trained_again(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    first = run_training(cfg)
    assert first.reused == 0
    files = sorted(p.name for p in (tmp_path / "runs").glob("*.json"))
    assert files == ["sb3-ppo-CartPole-v1-s0-base.json", "sb3-ppo-CartPole-v1-s0-tipl-linear.json"]
    again = run_training(cfg)
    assert again.reused == 2
    for name, variant in first.variants.items():
        [old], [new] = variant.runs, again.variants[name].runs
        assert new.skipped and not old.skipped
        assert new.curve == old.curve and new.jumps == old.jumps
        assert new.wall_time_s == old.wall_time_s


def test_other_settings_or_a_corrupt_file_train_the_run_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = _config(tmp_path)
    run_training(cfg)
    longer = _config(tmp_path, steps=1024)  # same run names, another budget
    [(task, _), _] = make_tasks(longer, longer.variants())
    assert run_cache.load(tmp_path, task) is None
    [(task, _), _] = make_tasks(cfg, cfg.variants())
    file = run_cache.cache_file(tmp_path, task)
    assert run_cache.load(tmp_path, task) is not None
    file.write_text(file.read_text()[:50])  # truncated
    assert run_cache.load(tmp_path, task) is None
    assert "Ignoring unreadable run result" in caplog.text
    summary = run_training(cfg)
    assert summary.reused == 1  # only the intact one
    assert json.loads(file.read_text())["format"] == "tipl-run-result"  # rewritten whole
