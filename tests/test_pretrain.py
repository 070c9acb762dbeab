"""Pretraining on learning paths: it learns, it is deterministic, it resumes, it holds out runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from synthetic import make_dataset
from typer.testing import CliRunner

from tipl_opt.cli import app
from tipl_opt.errors import ConfigError
from tipl_opt.paths import PathDataset
from tipl_opt.predictors import TIPLConfig, load_predictor
from tipl_opt.pretrain import PretrainConfig, Progress, WindowSource, pretrain, split_runs
from tipl_opt.pretrain.trainer import masked_loss, run_name
from tipl_opt.pretrain.windows import Batch

SMALL = TIPLConfig(context=6, horizons=(1, 2, 4), d_model=32, layers=2, heads=4)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("paths"))


def config(dataset: Path, out: Path, **kw: object) -> PretrainConfig:
    base: dict[str, object] = {"paths": dataset, "out": out, "steps": 60, "batch_size": 16,
                               "eval_every": 20, "device": "cpu", "lr": 3e-3, "model": SMALL}
    base.update(kw)
    return PretrainConfig.model_validate(base)


def test_the_model_overfits_a_tiny_dataset(dataset: Path, tmp_path: Path) -> None:
    losses: list[float] = []
    result = pretrain(config(dataset, tmp_path, steps=300, val_fraction=0.0, eval_every=300),
                      lambda p: losses.append(p.train_loss))
    assert losses[-1] < losses[0] / 10
    assert result.report["tipl_vs_linear"][-1] < 0.7  # curved paths: beats a straight line


def test_l1_loss_trains_a_residual_model_and_is_recorded(dataset: Path, tmp_path: Path
                                                         ) -> None:
    model = SMALL.model_copy(update={"residual": True})
    result = pretrain(config(dataset, tmp_path, steps=300, val_fraction=0.0, eval_every=300,
                             loss="l1", model=model))
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["training"]["loss"] == "l1" and saved["model"]["residual"] is True
    # on curved paths the correction learns to beat the straight line it starts from
    assert result.report["tipl_vs_linear"][-1] < 0.7


def test_the_loss_is_squared_or_absolute_over_real_groups_and_horizons() -> None:
    targets = torch.zeros(1, 2, 2, 3)
    pred = torch.full((1, 2, 2, 3), 2.0)
    pred[0, 1] = 100.0  # a padding group: never counted
    pred[0, 0, 1] = 50.0  # a horizon past the run's end: never counted
    batch = Batch(torch.zeros(1, 2, 4, 3), torch.zeros(1, 4), torch.zeros(1, 2, 9),
                  torch.tensor([[True, False]]), targets, torch.tensor([[True, False]]))
    assert float(masked_loss(pred, batch, "mse")) == 4.0
    assert float(masked_loss(pred, batch, "l1")) == 2.0
    targets[0, 0, 0] = torch.tensor([1.0, 0.0, 0.0])
    pred[0, 0, 0] = torch.tensor([0.0, 3.0, 0.0])  # at right angles, three times as long
    direction = float(masked_loss(pred, batch, "direction"))
    assert direction == pytest.approx(1.0 + math.log(3.0), abs=3e-3)
    pred[0, 0, 0] = torch.tensor([0.5, 0.0, 0.0])  # the right way, half as long
    assert float(masked_loss(pred, batch, "direction")) == pytest.approx(math.log(2.0),
                                                                         abs=3e-3)


def test_an_unknown_loss_is_refused(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loss"):
        config(dataset, tmp_path, loss="huber")


def test_the_direction_loss_trains_from_a_model_that_predicts_no_move(dataset: Path,
                                                                      tmp_path: Path) -> None:
    losses: list[float] = []
    result = pretrain(config(dataset, tmp_path, steps=200, val_fraction=0.0, eval_every=200,
                             loss="direction"), lambda p: losses.append(p.train_loss))
    assert math.isfinite(losses[0]) and losses[-1] < losses[0] / 2
    assert result.report["vs_stay"]["tipl"][0] < 1  # closer than not moving


def test_validation_holds_out_whole_runs(dataset: Path) -> None:
    paths = list(PathDataset(dataset))
    train, val = split_runs(paths, 0.34, seed=0)
    assert len(val) == 2 and len(train) == 4
    assert not {p.name for p in train} & {p.name for p in val}
    assert split_runs(paths, 0.34, seed=0)[1][0].name == val[0].name


def test_same_seed_gives_the_same_checkpoint(dataset: Path, tmp_path: Path) -> None:
    a = pretrain(config(dataset, tmp_path / "a"))
    b = pretrain(config(dataset, tmp_path / "b"))
    for (name, pa), pb in zip(a.predictor.net.state_dict().items(),
                              b.predictor.net.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_resume_continues_exactly(dataset: Path, tmp_path: Path) -> None:
    full = pretrain(config(dataset, tmp_path / "full"))

    def interrupt_after_40(p: Progress) -> None:
        if p.step == 45:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(config(dataset, tmp_path / "split"), interrupt_after_40)
    seen: list[Progress] = []
    resumed = pretrain(config(dataset, tmp_path / "split"), seen.append)
    assert seen[0].step == 41  # picked up after step 40
    assert resumed.best_val_loss == pytest.approx(full.best_val_loss, rel=1e-6)


def test_checkpoint_records_data_and_validation(dataset: Path, tmp_path: Path) -> None:
    pretrain(config(dataset, tmp_path))
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["format"] == "tipl-predictor" and doc["model"]["context"] == 6
    assert doc["training"]["data"]["runs"] == 6
    assert doc["training"]["data"]["by_source"] == {"synthetic/ppo/Toy-v0": 6}
    assert len(doc["validation"]["vs_stay"]["tipl"]) == 3
    assert set(doc["training"]["val_runs"]).isdisjoint(doc["training"]["train_runs"])
    assert load_predictor(tmp_path).context == 6


def test_runs_sharing_a_name_are_recorded_by_their_path(tmp_path: Path) -> None:
    # two recipes (say, two network sizes) with the same library, algorithm, env and seeds
    data = tmp_path / "data"
    make_dataset(data / "small", runs=3)
    make_dataset(data / "wide", runs=3)
    make_dataset(data / "other", runs=1)  # toy-s0 a third time
    pretrain(config(data, tmp_path / "out", steps=2, eval_every=2, val_fraction=0.5))
    training = json.loads((tmp_path / "out" / "config.json").read_text())["training"]
    train, val = training["train_runs"], training["val_runs"]
    assert len(train) + len(val) == 7 and set(train).isdisjoint(val)
    assert sorted(train + val) == sorted(
        [f"{folder}/toy-s{s}" for folder in ("small", "wide") for s in range(3)]
        + ["other/toy-s0"])
    # a jump-value report counts each shared name as possibly seen
    from tipl_opt.jump_value.plan import training_runs
    seen = training_runs(load_predictor(tmp_path / "out"))
    assert seen == {run_name(i) for i in train}


def test_windows_are_streamed_with_masked_far_horizons(dataset: Path) -> None:
    source = WindowSource(list(PathDataset(dataset))[:1], 6, (1, 2, 4), 5, False)
    assert len(source) == 30 - 6
    last = source.get(0, len(source) - 1)  # ends at snapshot 28: only horizon 1 exists
    assert last.mask.tolist() == [True, False, False]
    assert last.window.shape == (6, 120)


def test_missing_or_empty_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no folder"):
        pretrain(config(tmp_path / "nope", tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no learning paths"):
        pretrain(config(tmp_path / "empty", tmp_path / "out"))


def test_cli_pretrain_prints_errors_per_horizon(dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
    result = runner.invoke(app, ["pretrain", "--paths", str(dataset), "--out", str(tmp_path),
                                 "--steps", "20", "--context", "5", "--horizons", "1,2",
                                 "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    assert "tipl / linear" in result.output
    assert (tmp_path / "model.safetensors").exists()
    assert json.loads((tmp_path / "config.json").read_text())["model"]["horizons"] == [1, 2]


def _copy_with_a_nan_run(dataset: Path, folder: Path) -> Path:
    """``dataset`` plus a run of the same policy whose snapshot 20 holds a NaN."""
    import shutil

    from tipl_opt.paths import PathWriter, Snapshot, TaggedParam

    shutil.copytree(dataset, folder)
    writer = PathWriter(folder / "diverged-s9.safetensors", {
        "library": "synthetic", "algorithm": "ppo", "env_id": "Toy-v0", "seed": 9})
    for t in range(30):
        w = torch.full((120,), float(t))
        if t == 20:
            w[3] = float("nan")
        writer.add(Snapshot([TaggedParam("net.0.weight", "actor", w[:80].reshape(8, 10)),
                             TaggedParam("net.0.bias", "actor", w[80:88]),
                             TaggedParam("value.weight", "critic", w[88:])],
                            t * 100, t * 10, float(t), 0.0))
    writer.finish()
    return folder


def test_a_run_with_nan_weights_is_skipped_by_name(dataset: Path, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    data = _copy_with_a_nan_run(dataset, tmp_path / "data")
    with caplog.at_level("WARNING", logger="tipl_opt.pretrain"):
        result = pretrain(config(data, tmp_path / "out", steps=20, eval_every=20))
    warning = next(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "diverged-s9.safetensors" in warning and "non-finite" in warning
    doc = json.loads((tmp_path / "out" / "config.json").read_text())
    assert doc["training"]["skipped_runs"] == ["diverged-s9"]
    assert doc["training"]["data"]["runs"] == 6
    assert "diverged-s9" not in doc["training"]["train_runs"] + doc["training"]["val_runs"]
    assert result.best_val_loss < float("inf")


def test_only_invalid_runs_is_a_clear_error(dataset: Path, tmp_path: Path) -> None:
    data = _copy_with_a_nan_run(dataset, tmp_path / "data")
    for f in data.glob("toy-*.safetensors"):
        f.unlink()
    with pytest.raises(ConfigError, match="holds invalid values"):
        pretrain(config(data, tmp_path / "out"))


def test_an_unwritable_out_is_found_before_any_training(dataset: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("precious")
    steps: list[int] = []
    with pytest.raises(ConfigError, match="not writable"):
        pretrain(config(dataset, blocker / "predictor"), lambda p: steps.append(p.step))
    assert steps == [] and blocker.read_text() == "precious"
    result = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(
        app, ["pretrain", "--paths", str(dataset), "--out", str(blocker / "p"), "--steps", "5"])
    assert result.exit_code == 1 and "not writable" in result.output


def _interrupted(dataset: Path, out: Path, **kw: object) -> None:
    def stop(p: Progress) -> None:
        if p.step == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(config(dataset, out, **kw), stop)


def test_resume_with_another_context_names_the_setting(dataset: Path, tmp_path: Path) -> None:
    _interrupted(dataset, tmp_path)
    other = SMALL.model_copy(update={"context": 5, "rank": 4})
    with pytest.raises(ConfigError, match=r"model\.context: 6 -> 5.*--restart"):
        pretrain(config(dataset, tmp_path, model=other))
    seen: list[int] = []
    pretrain(config(dataset, tmp_path, model=other, resume=False, steps=5), lambda p:
             seen.append(p.step))
    assert seen[0] == 1  # --restart starts afresh


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign"])
def test_a_corrupt_resume_state_is_a_clear_error(dataset: Path, tmp_path: Path,
                                                 damage: str) -> None:
    from safetensors.torch import save_file

    _interrupted(dataset, tmp_path)
    state = tmp_path / ".resume" / "state.safetensors"
    assert state.exists()
    if damage == "garbage":
        state.write_bytes(b"\x00" * 50)
    elif damage == "truncated":
        state.write_bytes(state.read_bytes()[:-100])
    else:
        save_file({"x": torch.zeros(2)}, str(state))
    with pytest.raises(ConfigError, match=r"resume state .*state\.safetensors.*--restart"):
        pretrain(config(dataset, tmp_path))
    result = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(
        app, ["pretrain", "--paths", str(dataset), "--out", str(tmp_path), "--steps", "5"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "resume state" in result.output


def test_resume_state_that_does_not_fit_the_model_is_a_clear_error(dataset: Path,
                                                                   tmp_path: Path) -> None:
    import safetensors.torch

    _interrupted(dataset, tmp_path)
    state = tmp_path / ".resume" / "state.safetensors"
    with safetensors.safe_open(str(state), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    tensors = {k: v for k, v in tensors.items() if not k.startswith("net.")}
    safetensors.torch.save_file(tensors, str(state), metadata=metadata)
    with pytest.raises(ConfigError, match="does not fit this model"):
        pretrain(config(dataset, tmp_path))


def test_an_interrupted_state_save_keeps_the_previous_state(
        dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _interrupted(dataset, tmp_path)  # states saved at steps 20 (and none at 25)
    state = tmp_path / ".resume" / "state.safetensors"
    before = state.read_bytes()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("tipl_opt.pretrain.state.save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain(config(dataset, tmp_path))
    assert state.read_bytes() == before
    assert [p.name for p in state.parent.iterdir()] == ["state.safetensors"]


def test_fine_tuning_starts_from_the_checkpoint_and_never_validates_on_its_runs(
        dataset: Path, tmp_path: Path) -> None:
    first = pretrain(config(dataset, tmp_path / "first", val_fraction=0.5))
    learned = set(json.loads((tmp_path / "first" / "config.json").read_text())
                  ["training"]["train_runs"])
    seen: list[Progress] = []
    tuned = pretrain(config(dataset, tmp_path / "tuned", init=str(tmp_path / "first"),
                            model=TIPLConfig(), val_fraction=0.5, steps=40, lr=1e-3),
                     seen.append)
    doc = json.loads((tmp_path / "tuned" / "config.json").read_text())
    # the shape is the checkpoint's (SMALL: context 6), not the TIPLConfig() default of 8
    assert doc["model"]["context"] == 6 and tuned.predictor.horizons == (1, 2, 4)
    assert set(doc["training"]["val_runs"]).isdisjoint(learned)
    init = doc["training"]["init"]
    assert init["source"] == str(tmp_path / "first")
    assert set(init["training"]["train_runs"]) == learned
    # the checkpoint to beat is the init, measured before the first step
    assert seen[0].best_val_loss == pytest.approx(init["validation_loss"])
    assert tuned.best_val_loss <= init["validation_loss"]
    assert math.isfinite(first.best_val_loss)


def test_fine_tuning_with_a_step_that_changes_nothing_keeps_the_init_weights(
        dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pretrain(config(dataset, tmp_path / "first"))
    start = load_predictor(tmp_path / "first")
    with caplog.at_level("WARNING", logger="tipl_opt.pretrain"):
        # lr so small and so few steps that no step can beat the init on held-out runs
        tuned = pretrain(config(dataset, tmp_path / "tuned", init=str(tmp_path / "first"),
                                model=TIPLConfig(), steps=2, eval_every=1, lr=1e-12))
    init_loss = json.loads((tmp_path / "tuned" / "config.json").read_text())["training"][
        "init"]["validation_loss"]
    assert tuned.best_val_loss == init_loss and "unchanged" in caplog.text
    tuned_state = tuned.predictor.net.state_dict()  # type: ignore[attr-defined]
    for name, value in start.net.state_dict().items():  # type: ignore[attr-defined]
        assert torch.equal(tuned_state[name], value), name


def test_fine_tuning_refuses_model_settings_that_differ_from_the_checkpoint(
        dataset: Path, tmp_path: Path) -> None:
    pretrain(config(dataset, tmp_path / "first"))
    with pytest.raises(ConfigError, match=r"context: 5 \(the checkpoint has 6\)"):
        pretrain(config(dataset, tmp_path / "tuned", init=str(tmp_path / "first"),
                        model=TIPLConfig(context=5, horizons=(1, 2, 4))))
    with pytest.raises(ConfigError, match="starts from a TIPL checkpoint"):
        pretrain(config(dataset, tmp_path / "tuned", init="linear", model=TIPLConfig()))
    with pytest.raises(ConfigError, match="--init nowhere"):
        pretrain(config(dataset, tmp_path / "tuned", init="nowhere", model=TIPLConfig()))
    assert not (tmp_path / "tuned" / "model.safetensors").exists()


def test_cli_fine_tunes_the_embedded_default(dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
    result = runner.invoke(app, ["pretrain", "--paths", str(dataset), "--out", str(tmp_path),
                                 "--steps", "4", "--batch-size", "8", "--init", "default",
                                 "--lr", "1e-4"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["training"]["init"]["source"] == "default"
    assert doc["training"]["init"]["training"]["data"]["runs"] == 78
    assert doc["model"] == load_predictor("default").config.model_dump(  # type: ignore[attr-defined]
        mode="json")
    bad = runner.invoke(app, ["pretrain", "--paths", str(dataset), "--out", str(tmp_path / "b"),
                              "--steps", "4", "--init", "default", "--context", "5"])
    assert bad.exit_code == 1 and "context: 5" in bad.output


def test_fine_tuning_on_only_the_inits_runs_says_validation_is_not_held_out(
        dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pretrain(config(dataset, tmp_path / "first", val_fraction=0.0))
    with caplog.at_level("WARNING", logger="tipl_opt.pretrain"):
        pretrain(config(dataset, tmp_path / "tuned", init=str(tmp_path / "first"),
                        model=TIPLConfig(), steps=2, eval_every=1))
    assert "--init was trained on every one" in caplog.text
    training = json.loads((tmp_path / "tuned" / "config.json").read_text())["training"]
    assert training["val_runs"] == training["train_runs"] and len(training["train_runs"]) == 6
