"""`tipl train --compare` and `tipl bench --suite smoke` on real (tiny) trainings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tipl_opt.cli import app

runner = CliRunner(env={"COLUMNS": "220", "NO_COLOR": "1"})


def test_train_compare_runs_base_and_tipl_on_the_same_seed(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--lib", "sb3", "--algo", "ppo", "--env",
                                 "CartPole-v1", "--steps", "1536", "--every", "256",
                                 "--predictor", "linear", "--compare", "--eval-episodes", "1",
                                 "--hidden", "16", "--activation", "relu",
                                 "--out", str(tmp_path), "--save-paths",
                                 "--hp", "n_steps=128", "--hp", "batch_size=64",
                                 "--jump", "snapshot_every=1",  # a snapshot every rollout
                                 "--threshold", "30"])  # not CartPole's solved level, 475
    assert result.exit_code == 0, result.output
    assert "base" in result.output and "tipl:linear" in result.output
    assert "env steps to 30" in result.output
    doc = json.loads((tmp_path / "results.json").read_text())
    assert (doc["threshold"], doc["threshold_source"]) == (30.0, "given (--threshold)")
    assert set(doc["variants"]) == {"base", "tipl:linear"}
    base, tipl = doc["variants"]["base"], doc["variants"]["tipl:linear"]
    assert base["seeds"] == tipl["seeds"] == [0]
    assert tipl["jumps"]["jumps_tried"] >= 1 and base["jumps"] == {}
    # each run file records the env steps of its accepted jumps
    kept = {p.stem.rsplit("-", 1)[-1]: json.loads(p.read_text())
            for p in (tmp_path / "runs").glob("*.json")}
    steps = kept["linear"]["jump_steps"]
    assert len(steps) == tipl["jumps"]["jumps_accepted"] and kept["base"]["jump_steps"] == []
    assert kept["base"]["spec"]["activation"] == "relu"  # --activation reaches the network
    assert kept["linear"]["hyperparameters"]["activation"] == "relu"
    # a window of 8 snapshots (one at the start, then one per 128-step rollout) is full at 896
    assert steps == sorted(steps) and steps[0] >= 7 * 128 and steps[-1] <= 1536
    curve = next(iter(tipl["curves"].values()))
    assert curve[0][0] == 0 and curve[-1][0] >= 1536
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "paths").glob("*.safetensors"))) == 2


def test_train_rejects_an_unknown_predictor(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--predictor", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "Unknown predictor 'nope'" in result.output


def test_bench_smoke_suite_json_carries_every_field(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--suite", "smoke", "--seeds", "2", "--workers", "2",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "bench-smoke.json").read_text())
    assert doc["suite"] == "smoke" and set(doc["goals"]) == {"iqm", "speedup", "no_harm",
                                                             "beats_linear"}
    agg = doc["aggregate"]
    assert agg["envs"] == ["CartPole-v1"] and agg["runs_per_env"] == 2
    assert set(agg["iqm"]) == {"base", "tipl:default", "tipl:linear"}
    for stats in agg["iqm"].values():
        assert set(stats) == {"steps", "auc", "final"}
        assert stats["steps"]["low"] <= stats["steps"]["iqm"] <= stats["steps"]["high"]
    assert "tipl:default vs tipl:linear" in agg["probability_of_improvement"]
    assert (tmp_path / "smoke-profile.png").read_bytes()[:4] == b"\x89PNG"
    [env] = doc["envs"]
    assert env["env"] == "CartPole-v1" and env["threshold"] == 475.0
    assert set(env["variants"]) == {"base", "tipl:default", "tipl:linear"}
    for variant in env["variants"].values():
        assert variant["seeds"] == [0, 1]
        for metric in ("steps_to_threshold", "final_return", "auc", "wall_time"):
            assert set(variant[metric]) == {"median", "low", "high"}
        assert len(variant["curves"]) == 2
    assert env["variants"]["tipl:linear"]["jumps"]["jumps_tried"] >= 2
    assert set(env["ratios_vs_base"]) == {"tipl:default", "tipl:linear"}
    assert "tipl_overhead_wall" in env
    pair = env["paired"]["tipl:default vs base"]
    assert pair["seeds"] == 2 and pair["earlier"] + pair["later"] <= 2
    assert 0 <= pair["higher_auc"] <= 2
    report = (tmp_path / "bench-smoke.md").read_text()
    assert "## CartPole-v1" in report and "## Goals" in report
    assert "## Over the suite (rliable)" in report
    assert "Seed by seed, tipl:default vs base" in report
    assert "`tipl:default` jumps with the predictor `default` (the embedded one)" in report
    assert doc["guard"] is True and doc["guard_limit"] is None and doc["value_limit"] is None
    assert "guard limit the adapter default;" in report
    assert (tmp_path / "smoke-CartPole-v1.png").exists()


def test_bench_linear_jumps_from_the_predictors_window_to_its_horizon() -> None:
    from tipl_opt.adapters.base import TIPLSetup
    from tipl_opt.bench.runner import variants

    setup = TIPLSetup(jump={"scale": 2.0}, guard_limit=0.05, value_limit=0.3,
                      entropy_limit=0.02)
    (_, base), (_, tipl), (_, linear) = variants(setup)
    assert tipl is not None and linear is not None
    assert tipl.entropy_limit == linear.entropy_limit == 0.02
    assert base is None and tipl is not None and linear is not None
    assert tipl.jump == {"scale": 2.0} and tipl.guard_limit == 0.05
    assert linear.predictor == "linear" and linear.guard_limit == 0.05
    assert tipl.value_limit == linear.value_limit == 0.3 and linear.guard
    assert linear.jump == {"context": 8, "horizon": 8, "scale": 2.0}
    (_, _), (_, tipl), (_, linear) = variants(TIPLSetup(guard=False))
    assert tipl is not None and linear is not None and not tipl.guard and not linear.guard
    # an explicit horizon is kept for both
    (_, _), (_, tipl), (_, linear) = variants(TIPLSetup(jump={"horizon": 2}))
    assert tipl is not None and linear is not None
    assert tipl.jump["horizon"] == linear.jump["horizon"] == 2


def test_train_and_bench_reject_bad_jump_settings(tmp_path: Path) -> None:
    for command in (["train"], ["bench"]):
        result = runner.invoke(app, [*command, "--jump", "horizn=4", "--out", str(tmp_path)])
        assert result.exit_code == 1, result.output
        assert "Invalid jump settings" in result.output and "horizn" in result.output
        result = runner.invoke(app, [*command, "--jump", "scale", "--out", str(tmp_path)])
        assert result.exit_code == 2 and "expected KEY=VALUE" in result.output
    assert not any(tmp_path.iterdir())


def test_train_names_a_bad_checkpoint_before_any_run_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tipl_opt import train
    from tipl_opt.predictors import TIPLConfig, TIPLPredictor

    folder = TIPLPredictor(TIPLConfig(d_model=16, heads=2)).save(tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config["model"]["heads"] = "four"
    (folder / "config.json").write_text(json.dumps(config))

    def no_runs(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run started")

    monkeypatch.setattr(train, "make_executor", no_runs)
    result = runner.invoke(app, ["train", "--predictor", str(folder), "--steps", "256",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "pydantic" not in result.output
    assert "config.json is invalid: 'model.heads'" in " ".join(result.output.split())
    assert not (tmp_path / "out" / "runs").exists()
