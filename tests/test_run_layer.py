"""The run layer shared by collect, train and bench: one request check, resume that refuses
changed settings, and bench reports that never claim or lose more than they measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tipl_opt.adapters import TrainSpec
from tipl_opt.bench.report import check_goals, report_stem
from tipl_opt.bench.runner import run_suite
from tipl_opt.cli import app
from tipl_opt.collect import CollectConfig, InlineExecutor, collect
from tipl_opt.collect.runner import check_request
from tipl_opt.errors import ConfigError
from tipl_opt.train import TrainConfig, TrainSummary, VariantSummary

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})

TINY = {"lib": "sb3", "algo": "ppo", "env": "CartPole-v1", "steps": 256, "every": 128,
        "eval_episodes": 1, "hidden_sizes": (8,), "hyperparams": {"n_steps": 128,
                                                                   "batch_size": 32}}


def test_check_request_names_what_is_wrong_before_any_training(tmp_path: Path) -> None:
    spec = TrainSpec(algo="ppo", env_id="CartPole-v1", seed=0, total_steps=10, every=5)
    check_request("sb3", spec, tmp_path / "ok")
    assert (tmp_path / "ok").is_dir()
    with pytest.raises(ConfigError, match="cannot train 'trpo'"):
        check_request("sb3", spec.model_copy(update={"algo": "trpo"}), tmp_path)
    with pytest.raises(ConfigError, match="NoSuchEnv"):
        check_request("sb3", spec.model_copy(update={"env_id": "NoSuchEnv-v0"}), tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not writable"):
        check_request("sb3", spec, blocker / "sub")


def test_collect_resume_refuses_runs_collected_with_other_settings(tmp_path: Path) -> None:
    first = collect(CollectConfig(**TINY, runs=1, out=tmp_path),  # type: ignore[arg-type]
                    executor=InlineExecutor())
    assert first.ok and len(first.results) == 1
    file = first.results[0].path
    before = file.read_bytes()
    same = collect(CollectConfig(**TINY, runs=1, out=tmp_path),  # type: ignore[arg-type]
                   executor=InlineExecutor())
    assert same.results[0].skipped
    for change, names in [({"hidden_sizes": (16,)}, "hidden_sizes"),
                          ({"steps": 384}, "total_steps"),
                          ({"hyperparams": {"n_steps": 64, "batch_size": 32}}, "hyperparams")]:
        with pytest.raises(ConfigError, match=f"other settings.*{names}"):
            collect(CollectConfig(**{**TINY, **change}, runs=1, out=tmp_path),  # type: ignore[arg-type]
                    executor=InlineExecutor())
    assert file.read_bytes() == before  # nothing was lost or mixed


def test_cli_collect_with_another_hidden_size_is_refused_by_name(tmp_path: Path) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text('lib = "sb3"\nalgo = "ppo"\nenv = "CartPole-v1"\nsteps = 256\n'
                      "every = 128\neval_episodes = 1\n"
                      "[hyperparams]\nn_steps = 128\nbatch_size = 32\n")
    args = ["collect", "--config", str(config), "--runs", "1", "--out", str(tmp_path / "d")]
    assert runner.invoke(app, [*args, "--hidden", "8"]).exit_code == 0
    result = runner.invoke(app, [*args, "--hidden", "16"])
    assert result.exit_code == 1
    assert "other settings" in result.output and "hidden_sizes" in result.output


def test_bench_with_an_env_the_suite_lacks_names_the_suite_envs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no env 'CartPole-V1'.*CartPole-v1"):
        run_suite("classic", seeds=1, workers=1, out=tmp_path, envs=["CartPole-V1"])
    result = runner.invoke(app, ["bench", "--suite", "classic", "--env", "CartPole-V1",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 1 and "CartPole-v1" in result.output
    assert not list(tmp_path.glob("bench-*"))


def _summary(env: str, runs: int) -> TrainSummary:
    from tipl_opt.collect import RunResult

    config = TrainConfig(env=env, out=Path("x"))
    variant = VariantSummary("base", threshold=1.0)
    variant.runs = [RunResult(f"r{i}", Path("x"), 2, 1, 0.0, 1.0, 1.0, curve=[(0, 0.0, 0.0)],
                              seed=i) for i in range(runs)]
    return TrainSummary(config, {"base": variant})


def test_a_report_without_runs_meets_no_goal() -> None:
    goals = check_goals([])
    assert goals and not any(g["met"] for g in goals.values())
    assert not any(g["met"] for g in check_goals([_summary("CartPole-v1", 0)]).values())


def test_a_fuller_report_is_never_replaced_by_an_emptier_one(tmp_path: Path) -> None:
    full = {"envs": [{"variants": {"base": {"seeds": [0, 1, 2]}, "tipl": {"seeds": [0, 1, 2]}}},
                     {"variants": {"base": {"seeds": [0, 1, 2]}}}]}
    (tmp_path / "bench-classic.json").write_text(json.dumps(full))
    assert report_stem("classic", [_summary("Acrobot-v1", 2)], tmp_path) == \
        "bench-classic-Acrobot-v1"
    assert report_stem("classic", [_summary("Acrobot-v1", 9)], tmp_path) == "bench-classic"
    assert report_stem("smoke", [_summary("Acrobot-v1", 1)], tmp_path) == "bench-smoke"


def test_an_observer_that_raises_neither_fails_nor_loses_a_collection_run(
        tmp_path: Path) -> None:
    from tipl_opt.hookspecs import hookimpl
    from tipl_opt.paths import LearningPath
    from tipl_opt.plugins import get_plugin_manager

    class Broken:
        calls = 0

        @hookimpl
        def tipl_on_snapshot(self, run: str, snapshot: object) -> None:
            Broken.calls += 1
            raise RuntimeError("observer bug")

        @hookimpl
        def tipl_on_run_end(self, run: str, path: str, info: dict[str, object]) -> None:
            raise RuntimeError("observer bug")

    pm = get_plugin_manager()
    pm.register(Broken(), name="broken-observer")
    try:
        summary = collect(CollectConfig(**TINY, runs=1, out=tmp_path),  # type: ignore[arg-type]
                          executor=InlineExecutor())
    finally:
        pm.unregister(name="broken-observer")
    assert summary.ok and not summary.failures and Broken.calls == 3  # 0, 128, 256
    path = LearningPath(summary.results[0].path)
    assert path.num_snapshots == 3  # the run is whole, and finished
    again = collect(CollectConfig(**TINY, runs=1, out=tmp_path),  # type: ignore[arg-type]
                    executor=InlineExecutor())
    assert again.results[0].skipped
