"""Pretraining on learning paths: it learns, it is deterministic, it resumes, it holds out runs."""

from __future__ import annotations

import json
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
