"""Zero-shot inference from a saved learning path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from synthetic import curved_path
from typer.testing import CliRunner

from tipl_opt.cli import app
from tipl_opt.errors import TiplError
from tipl_opt.infer import infer, load_weights, save_weights
from tipl_opt.paths import LearningPath, PathWriter, Snapshot, TaggedParam
from tipl_opt.predictors import LinearPredictor, TIPLPredictor

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture
def run(tmp_path: Path) -> LearningPath:
    return LearningPath(curved_path(tmp_path / "toy-s0.safetensors", seed=0, snapshots=20))


def test_infer_writes_named_weights_of_the_run_shapes(run: LearningPath, tmp_path: Path) -> None:
    result = infer(LinearPredictor(4), run, from_step=1000, horizon=2)
    assert result.from_index == 10 and result.from_env_steps == 1000
    out = save_weights(tmp_path / "w.safetensors", result)
    tensors, meta = load_weights(out)
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {
        s.name: s.shape for s in run.specs}
    assert [p["name"] for p in meta["params"]] == [s.name for s in run.specs]
    assert meta["env_id"] == "Toy-v0" and meta["horizon"] == 2


def test_rollout_feeds_predictions_back(tmp_path: Path) -> None:
    writer = PathWriter(tmp_path / "line.safetensors", {"algorithm": "ppo"})
    velocity = torch.linspace(-1, 1, 12)
    for t in range(10):
        writer.add(Snapshot([TaggedParam("w", "actor", t * velocity)], t * 50, t, 0.0, 0.0))
    line = LearningPath(writer.finish())
    three_steps = infer(LinearPredictor(4), line, horizon=1, rollout=3).weights
    one_jump = infer(LinearPredictor(4), line, horizon=3, rollout=1).weights
    torch.testing.assert_close(three_steps, 12 * velocity, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(one_jump, three_steps, rtol=1e-5, atol=1e-5)


def test_from_step_too_early_for_the_context(run: LearningPath) -> None:
    with pytest.raises(TiplError, match="needs 8 snapshots"):
        infer(TIPLPredictor(), run, from_step=300)


def test_non_finite_prediction_writes_nothing(run: LearningPath, tmp_path: Path) -> None:
    class Broken(LinearPredictor):
        def predict(self, window, steps, specs, horizon):  # type: ignore[no-untyped-def]
            return torch.full_like(window[-1], float("nan"))

    with pytest.raises(TiplError, match="non-finite"):
        infer(Broken(4), run)


def test_cli_infer(run: LearningPath, tmp_path: Path) -> None:
    out = tmp_path / "pred.safetensors"
    result = runner.invoke(app, ["infer", "--predictor", "linear", "--path", str(run.path),
                                 "--from-step", "1500", "--horizon", "2", "--rollout", "2",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ahead of env step 1,500" in result.output
    assert load_weights(out)[1]["rollout"] == 2


def test_cli_infer_bad_predictor(run: LearningPath, tmp_path: Path) -> None:
    result = runner.invoke(app, ["infer", "--predictor", str(tmp_path / "none"), "--path",
                                 str(run.path), "--out", str(tmp_path / "x.safetensors")])
    assert result.exit_code == 1 and "Unknown predictor" in result.output
    assert not (tmp_path / "x.safetensors").exists()
