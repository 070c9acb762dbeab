"""Zero-shot inference from a saved learning path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from synthetic import RecordingPredictor, curved_path
from typer.testing import CliRunner

from tipl_opt.cli import app
from tipl_opt.errors import TiplError
from tipl_opt.infer import infer, load_weights, save_weights
from tipl_opt.paths import LearningPath, ParamSpec, PathWriter, Snapshot, TaggedParam
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


def test_cli_infer_refuses_to_overwrite_its_input_learning_path(run: LearningPath) -> None:
    before = run.path.read_bytes()
    for extra in ([], ["--force"]):
        result = runner.invoke(app, ["infer", "--predictor", "linear", "--path", str(run.path),
                                     "--out", str(run.path), *extra])
        assert result.exit_code == 1, result.output
        assert "is an input of this command" in result.output
        assert "Traceback" not in result.output
    assert run.path.read_bytes() == before
    LearningPath(run.path).validate()


def test_cli_infer_replaces_an_existing_file_only_with_force(run: LearningPath,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"precious")
    args = ["infer", "--predictor", "linear", "--path", str(run.path), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "already exists; pass --force" in result.output
    assert out.read_bytes() == b"precious"
    result = runner.invoke(app, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert load_weights(out)[1]["env_id"] == "Toy-v0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy-s0.safetensors", "w.safetensors"]


def test_cli_infer_out_that_is_a_folder_gets_a_clear_message(run: LearningPath,
                                                              tmp_path: Path) -> None:
    result = runner.invoke(app, ["infer", "--predictor", "linear", "--path", str(run.path),
                                 "--out", str(tmp_path), "--force"])
    assert result.exit_code == 1
    assert "is a folder; give a file name" in result.output


def test_cli_infer_refuses_to_write_into_the_predictor_checkpoint(run: LearningPath,
                                                                   tmp_path: Path) -> None:
    folder = TIPLPredictor().save(tmp_path / "predictor")
    weights = (folder / "model.safetensors").read_bytes()
    result = runner.invoke(app, ["infer", "--predictor", str(folder), "--path", str(run.path),
                                 "--out", str(folder / "model.safetensors"), "--force"])
    assert result.exit_code == 1 and "is an input of this command" in result.output
    assert (folder / "model.safetensors").read_bytes() == weights


def test_failed_write_leaves_no_temporary_file_and_the_old_file(
        run: LearningPath, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"old")
    result = infer(LinearPredictor(4), run)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tipl_opt.infer.save_file", broken)
    with pytest.raises(TiplError, match="cannot write .*No space left"):
        save_weights(out, result)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy-s0.safetensors", "w.safetensors"]


def test_from_step_beyond_the_end_of_the_run_says_so(run: LearningPath, tmp_path: Path) -> None:
    with pytest.raises(TiplError, match=r"ends at env step 1,900; --from-step 5,000 is beyond"):
        infer(LinearPredictor(4), run, from_step=5000)
    result = runner.invoke(app, ["infer", "--predictor", "linear", "--path", str(run.path),
                                 "--from-step", "5000", "--out", str(tmp_path / "w.safetensors")])
    assert result.exit_code == 1 and "beyond its end" in result.output
    assert not (tmp_path / "w.safetensors").exists()


def nan_run(tmp_path: Path, bad: int = 7) -> LearningPath:
    writer = PathWriter(tmp_path / "nan-s0.safetensors", {"algorithm": "ppo"})
    for t in range(12):
        w = torch.full((6,), float(t))
        if t == bad:
            w[2] = float("nan")
        writer.add(Snapshot([TaggedParam("w", "actor", w)], t * 100, t, 0.0, 0.0))
    return LearningPath(writer.finish())


@pytest.mark.parametrize("predictor", ["default", "linear"])
def test_nan_in_the_window_names_the_run_and_the_snapshot(tmp_path: Path, predictor: str) -> None:
    lp = nan_run(tmp_path)
    result = runner.invoke(app, ["infer", "--predictor", predictor, "--path", str(lp.path),
                                 "--out", str(tmp_path / "w.safetensors")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "LinAlgError" not in result.output
    assert "nan-s0.safetensors: snapshot 7 (env step 700) holds non-finite" in result.output
    assert not (tmp_path / "w.safetensors").exists()
    assert infer(LinearPredictor(4), lp, from_step=600).from_index == 6  # before it is fine


def test_a_predictor_refuses_a_non_finite_window_by_name() -> None:
    window = torch.zeros(8, 6)
    window[5, 1] = float("inf")
    with pytest.raises(TiplError, match="snapshot 5 of the window .* non-finite"):
        TIPLPredictor().predict(window, None, [ParamSpec("w", (6,), "actor")], 1)


def test_a_predictor_with_a_longer_history_gets_it_where_the_run_holds_it(
        run: LearningPath) -> None:
    recording = RecordingPredictor()
    infer(recording, run)  # from the last of 20 snapshots: the whole history of 10
    infer(recording, run, from_step=int(run.env_steps[5]))  # only 6 snapshots so far
    infer(recording, run, from_step=int(run.env_steps[3]))  # exactly its context
    assert recording.lengths == [10, 6, 4]
    assert recording.times == [10, 6, 4]  # a time for every snapshot
    with pytest.raises(TiplError, match="needs 4 snapshots"):
        infer(recording, run, from_step=int(run.env_steps[2]))
