"""``tipl jumps``: predicted weights evaluated against the real ones at t and t + h.

The synthetic runs converge along a direction d while oscillating across it, and the synthetic
adapter scores weights by how far along d they are, so every real step improves the return:
"no move" must deliver share 0 and an oracle that predicts the true future weights share 1,
through the whole pipeline.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from synthetic import RecordingPredictor
from typer.testing import CliRunner

from tipl_opt.adapters import TrainSpec
from tipl_opt.cli import app
from tipl_opt.errors import ConfigError
from tipl_opt.hookspecs import hookimpl
from tipl_opt.jump_value import (
    FORMAT,
    NO_MOVE,
    JumpValueConfig,
    cluster_bootstrap,
    measure_jumps,
    plan_jumps,
    predict_ahead,
    rollout_steps,
)
from tipl_opt.jump_value.plan import learning_end
from tipl_opt.paths import (
    LearningPath,
    ParamSpec,
    PathDataset,
    PathWriter,
    Snapshot,
    TaggedParam,
)
from tipl_opt.plugins import get_plugin_manager

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


P = 40


def _direction() -> torch.Tensor:
    d = torch.zeros(P)
    d[::2] = 1.0
    return d / d.norm()


def converging_path(path: Path, seed: int, snapshots: int = 24,
                    returns: Sequence[float] | None = None) -> LearningPath:
    """Moves 5 units along d, exponentially slower, and oscillates across d (stored returns:
    ``returns``, or none)."""
    g = torch.Generator().manual_seed(seed)
    start, across = torch.randn(P, generator=g), torch.zeros(P)
    across[1::2] = torch.randn(P // 2, generator=g)
    writer = PathWriter(path, {"library": "synthetic", "algorithm": "ppo", "env_id": "Toy-v0",
                               "seed": seed})
    for t in range(snapshots):
        w = start + 5 * (1 - math.exp(-t / 10)) * _direction() + 0.3 * math.sin(1.3 * t) * across
        writer.add(Snapshot([TaggedParam("pi.weight", "actor", w[:30].reshape(5, 6)),
                             TaggedParam("vf.weight", "critic", w[30:])],
                            t * 100, t * 10,
                            float("nan") if returns is None else returns[t], float("nan")))
    return LearningPath(writer.finish())


class ProgressAdapter:
    """Return = how far along d the weights are."""

    name = "synthetic"
    algorithms = ("ppo",)

    def library_version(self) -> str:
        return "0"

    def check(self, spec: TrainSpec) -> None:
        pass

    def collect(self, spec: TrainSpec, on_snapshot: Any, on_progress: Any,
                tipl: Any = None) -> dict[str, Any]:
        raise NotImplementedError

    def evaluate_weights(self, spec: TrainSpec, params: Mapping[str, torch.Tensor],
                         episodes: int) -> tuple[float, float]:
        flat = torch.cat([params["pi.weight"].flatten(), params["vf.weight"].flatten()])
        return float(flat.double() @ _direction().double()), 0.0


class Oracle:
    """Predicts the run's real future: finds the window's last snapshot in the runs."""

    name = "oracle"
    horizons: tuple[int, ...] = (1,)

    def __init__(self, runs: Sequence[LearningPath], context: int = 8) -> None:
        self.rows = [lp.window(0, lp.num_snapshots) for lp in runs]
        self.context = context

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: Sequence[ParamSpec], horizon: int) -> torch.Tensor:
        for rows in self.rows:
            for t in range(len(rows)):
                if torch.equal(rows[t], window[-1]):
                    return rows[t + horizon].clone()
        raise AssertionError("the window's last snapshot is in no run")


class JumpsPlugin:
    def __init__(self, runs: Sequence[LearningPath]) -> None:
        self.runs = runs

    @hookimpl
    def tipl_register_adapters(self, register: Any) -> None:
        register(ProgressAdapter())

    @hookimpl
    def tipl_register_predictors(self, register: Any) -> None:
        register("oracle", lambda context=8: Oracle(self.runs, context))


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "heldout"
    runs = [converging_path(folder / f"toy-s{s}.safetensors", seed=s) for s in (0, 1)]
    pm = get_plugin_manager()
    plugin = JumpsPlugin(runs)
    pm.register(plugin, name="test-jumps")
    try:
        yield folder
    finally:
        pm.unregister(plugin)


def _aggregate(report: dict[str, Any], predictor: str, horizon: int) -> dict[str, Any]:
    (found,) = [a for a in report["aggregates"]
                if a["predictor"] == predictor and a["horizon"] == horizon]
    return found


def test_no_move_delivers_nothing_and_the_oracle_everything(data: Path) -> None:
    config = JumpValueConfig(paths=data, predictors=("oracle", "pptb"), horizons=(1, 2, 4),
                             episodes=1, windows_per_run=3, resamples=200)
    plan = plan_jumps(config)
    assert list(plan.predictors) == [NO_MOVE, "linear", "oracle", "pptb"]
    assert [w.index for w in plan.windows] == [7, 13, 19] * 2  # context 8, horizon 4, T = 24
    events: list[Any] = []
    report = measure_jumps(plan, events.append)
    assert len(events) == plan.evaluations == report["evaluations"]
    assert report["format"] == FORMAT and report["format_version"] == 1
    assert report["settings"]["horizons"] == [1, 2, 4] and report["errors"] == []
    assert len(report["rows"]) == 2 * 3 * 3 * 4
    assert len(report["aggregates"]) == 3 * 4
    for row in report["rows"]:
        assert row["gain_real"] > 0  # the synthetic runs improve at every step
        if row["predictor"] == NO_MOVE:
            assert row["return_pred"] == row["return_t"] and row["share"] == 0
        if row["predictor"] == "oracle":
            assert row["return_pred"] == row["return_real"] and row["share"] == 1
            assert row["progress"] == pytest.approx(1.0)
    for h in (1, 2, 4):
        still, oracle = _aggregate(report, NO_MOVE, h), _aggregate(report, "oracle", h)
        assert still["share_of_means"] == 0 and still["share_of_means_ci95"] == [0, 0]
        assert still["p_better_than_t"] == 0
        assert oracle["share_of_means"] == pytest.approx(1.0)
        assert oracle["share_of_means_ci95"] == pytest.approx([1.0, 1.0])
        assert oracle["median_share_improving"] == pytest.approx(1.0)
        assert oracle["runs"] == 2 and oracle["windows"] == 6
        linear = _aggregate(report, "linear", h)
        assert math.isfinite(linear["share_of_means"]) and linear["share_of_means_ci95"]
    json.dumps(report)  # plain JSON


def test_rollout_feeds_the_oracle_its_own_predictions(data: Path) -> None:
    config = JumpValueConfig(paths=data, predictors=("oracle",), horizons=(4,), episodes=1,
                             windows_per_run=1, rollout=True, resamples=200)
    report = measure_jumps(plan_jumps(config))
    oracle = [r for r in report["rows"] if r["predictor"] == "oracle"]
    assert oracle and all(r["rollout"] == [1, 1, 1, 1] and r["share"] == 1 for r in oracle)


def test_a_predictor_with_a_longer_history_gets_it_in_the_windows(data: Path) -> None:
    run = next(iter(PathDataset(data)))
    recording = RecordingPredictor()
    predict_ahead(recording, run, 20, [1])  # 21 snapshots so far: the whole history of 10
    predict_ahead(recording, run, 5, [1])  # 6 so far: all of them
    predict_ahead(recording, run, 12, [1, 1])  # a rollout keeps the length
    assert recording.lengths == [10, 6, 10, 10]
    assert recording.times == recording.lengths


def test_the_learning_phase_ends_where_the_return_comes_within_a_tenth_of_its_best() -> None:
    nan = float("nan")
    assert learning_end(np.array([0.0, 10, 50, 95, 100, 98, 100])) == 3  # 95 >= 90
    assert learning_end(np.array([nan, -500, -400, -90, -100])) == 3  # first finite: -500
    assert learning_end(np.array([5.0, 4, 3])) == 2  # never improved: the whole run
    assert learning_end(np.array([nan, nan])) == 1


def test_learning_windows_end_before_the_plateau(data: Path, tmp_path: Path) -> None:
    # ``data`` registers the synthetic adapter that evaluates these runs
    # returns rise over the first 14 snapshots, then stay at the best
    returns = [min(t, 14) * 10.0 for t in range(30)]
    runs = tmp_path / "plateau"
    converging_path(runs / "toy-s0.safetensors", 0, snapshots=30, returns=returns)
    even = plan_jumps(JumpValueConfig(paths=runs, horizons=(1, 2), windows_per_run=3))
    learning = plan_jumps(JumpValueConfig(paths=runs, horizons=(1, 2), windows_per_run=3,
                                          windows="learning"))
    assert [w.index for w in even.windows] == [7, 17, 27]
    # 126 >= 0.9 * 140 first at t = 13: window ends from 7 to 12
    assert [w.index for w in learning.windows] == [7, 10, 12]
    flat = tmp_path / "flat"
    converging_path(flat / "toy-s1.safetensors", 1, snapshots=30,
                    returns=[min(t, 3) * 10.0 for t in range(30)])
    with pytest.raises(ConfigError, match="within 10% of its best by snapshot"):
        plan_jumps(JumpValueConfig(paths=flat, horizons=(1, 2), windows="learning"))


def test_rollout_steps() -> None:
    assert rollout_steps(8, (1, 2, 4, 8), rollout=True) == [8]
    assert rollout_steps(16, (1, 2, 4, 8), rollout=True) == [8, 8]
    assert rollout_steps(7, (2, 4), rollout=True) == [4, 2, 1]
    assert rollout_steps(3, (1,), rollout=True) == [1, 1, 1]
    assert rollout_steps(16, (1, 2, 4, 8), rollout=False) == [16]


def test_cluster_bootstrap_resamples_runs_then_windows() -> None:
    rng = np.random.default_rng(0)
    pred, real = cluster_bootstrap([[1.0, 1.0], [3.0]], [[2.0, 2.0], [6.0]], 500, rng)
    np.testing.assert_allclose(pred / real, 0.5)  # the same ratio in every window
    # runs (a, a), (a, b) or (b, b); all windows of a run are 2 or 6: 3 possible means
    assert set(np.round(real, 6)) == {2.0, round(10 / 3, 6), 6.0}
    assert pred.min() == 1.0 and pred.max() == 3.0


def test_runs_too_short_for_the_horizon_are_refused(data: Path) -> None:
    config = JumpValueConfig(paths=data, horizons=(1, 20), predictors=("linear",))
    with pytest.raises(ConfigError, match="too few for a context of 8"):
        plan_jumps(config)


def test_held_out_only_skips_the_runs_a_predictor_or_its_init_was_trained_on(
        data: Path, tmp_path: Path) -> None:
    from tipl_opt.predictors import TIPLConfig, TIPLPredictor

    runs = sorted(lp.name for lp in PathDataset(data))
    model = TIPLPredictor(TIPLConfig(context=8, horizons=(1, 2), d_model=16, heads=2, layers=1))
    # fine-tuned: trained on the second run, starting from a checkpoint trained on the first
    model.save(tmp_path / "tuned", training={"train_runs": [runs[1]], "init": {
        "source": "default", "training": {"train_runs": [f"ppo/Toy-v0/{runs[0]}"]}}})
    config = JumpValueConfig(paths=data, predictors=(str(tmp_path / "tuned"),), horizons=(1, 2),
                             windows_per_run=1)
    assert {w.run.name for w in plan_jumps(config).windows} == set(runs)  # measured, warned
    strict = JumpValueConfig(paths=data, predictors=(str(tmp_path / "tuned"),),
                             horizons=(1, 2), windows_per_run=1, held_out_only=True)
    with pytest.raises(ConfigError, match=r"all 2 runs were skipped \(the first, .*tuned was "
                                          "trained on it"):
        plan_jumps(strict)


def test_a_run_of_a_library_without_an_adapter_is_skipped_not_failed(data: Path,
                                                                     tmp_path: Path) -> None:
    import shutil

    from tipl_opt.jump_value.plot import plot_report

    folder = tmp_path / "mixed"
    shutil.copytree(data, folder)
    writer = PathWriter(folder / "sup-s0.safetensors", {
        "library": "torch", "algorithm": "adam", "env_id": "regression", "seed": 0})
    for t in range(24):
        writer.add(Snapshot([TaggedParam("w", "actor", torch.full((4,), float(t)))],
                            t * 10, t, -1.0 / (t + 1), 0.0))
    writer.finish()
    plan = plan_jumps(JumpValueConfig(paths=folder, horizons=(1,), windows_per_run=1))
    assert len(plan.runs) == 2
    (skipped,) = plan.skipped
    assert "no adapter for its library 'torch'" in skipped["reason"]
    assert plot_report({"aggregates": [], "predictors": [], "settings": {"horizons": [1]}},
                       tmp_path / "out") is None


def test_cli_writes_json_and_plot(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(app, ["jumps", "--paths", str(data), "--predictor", "oracle",
                                 "--horizons", "1,2", "--episodes", "1", "--windows-per-run",
                                 "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "jump_value.json").read_text())
    assert report["format"] == FORMAT and (out / "jump_value.png").stat().st_size > 1000
    assert "share of the real improvement" in result.output and "oracle" in result.output


def test_cli_unknown_predictor_writes_nothing(data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["jumps", "--paths", str(data), "--predictor", "nonesuch",
                                 "--out", str(tmp_path / "report")])
    assert result.exit_code == 1 and "Unknown predictor" in result.output
    assert not (tmp_path / "report").exists()


def test_cli_rejects_bad_horizons(data: Path) -> None:
    result = runner.invoke(app, ["jumps", "--paths", str(data), "--horizons", "4,2"])
    assert result.exit_code == 2 and "increasing" in result.output


@pytest.mark.slow
def test_on_a_tiny_real_sb3_path(tmp_path: Path) -> None:
    pytest.importorskip("tipl_sb3")
    collect = [sys.executable, "-m", "tipl_opt", "collect", "--lib", "sb3", "--algo", "ppo",
               "--env", "CartPole-v1", "--runs", "1", "--steps", "2048", "--every", "128",
               "--eval-episodes", "0", "--out", str(tmp_path / "data"), "--workers", "1"]
    hp = tmp_path / "ppo.toml"
    hp.write_text('[hyperparams]\nn_steps = 128\nbatch_size = 64\n')
    subprocess.run([*collect, "--config", str(hp)], check=True, capture_output=True)
    config = JumpValueConfig(paths=tmp_path / "data", predictors=("pptb",), horizons=(1, 2),
                             episodes=1, windows_per_run=2, resamples=200)
    report = measure_jumps(plan_jumps(config))
    assert report["errors"] == [] and len(report["rows"]) == 2 * 2 * 3
    for row in report["rows"]:
        assert math.isfinite(row["return_pred"])
        if row["predictor"] == NO_MOVE:
            assert row["return_pred"] == row["return_t"]
