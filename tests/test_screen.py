"""``tipl paths screen``: how far a learning path keeps its direction, per task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from synthetic import curved_path
from typer.testing import CliRunner

from tipl_opt.cli import app
from tipl_opt.jump_value.screen import LIKELY_COSINE, UNLIKELY_COSINE, screen, verdict
from tipl_opt.paths import LearningPath, PathWriter, Snapshot, TaggedParam
from tipl_opt.predictors import load_predictor
from tipl_opt.predictors.tipl import TIPLPredictor

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


def random_walk(path: Path, seed: int, snapshots: int = 30, p: int = 120,
                env_id: str = "Walk-v0") -> Path:
    """Weights that take independent Gaussian steps: no direction to find."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(p, generator=g)
    writer = PathWriter(path, {"library": "synthetic", "algorithm": "ppo", "env_id": env_id,
                               "seed": seed})
    for t in range(snapshots):
        w = w + 0.1 * torch.randn(p, generator=g)
        writer.add(Snapshot([TaggedParam("net.0.weight", "actor", w[:80].reshape(8, 10)),
                             TaggedParam("net.0.bias", "actor", w[80:88]),
                             TaggedParam("value.weight", "critic", w[88:])],
                            t * 256, t * 10, float(t), 0.0))
    return writer.finish()


@pytest.fixture(scope="module")
def predictor() -> TIPLPredictor:
    model = load_predictor("default")
    assert isinstance(model, TIPLPredictor)
    return model


def test_verdict_bands() -> None:
    assert verdict(LIKELY_COSINE, "ppo") == "likely" and verdict(0.9, "ppo") == "likely"
    assert verdict(UNLIKELY_COSINE, "ppo") == "unlikely" and verdict(-0.2, "ppo") == "unlikely"
    assert verdict((LIKELY_COSINE + UNLIKELY_COSINE) / 2, "ppo") == "uncertain"
    # the bands were measured on PPO: SAC paths at 0.84-0.92 came with 0.875 and with no gain
    assert verdict(0.9, "sac") == "uncertain" and verdict(0.1, "dqn") == "uncertain"
    assert verdict(0.9, "PPO") == "likely"


def test_a_predictable_off_policy_path_gets_no_forecast(tmp_path: Path,
                                                        predictor: TIPLPredictor) -> None:
    paths = [LearningPath(curved_path(tmp_path / f"toy-s{s}.safetensors", s, algorithm=algo))
             for s, algo in ((0, "ppo"), (1, "sac"))]
    rows = {r.algorithm: r for r in screen(paths, predictor)}
    assert rows["ppo"].linear_cosine > LIKELY_COSINE and rows["ppo"].verdict == "likely"
    assert rows["sac"].linear_cosine > LIKELY_COSINE and rows["sac"].verdict == "uncertain"


def test_a_converging_path_screens_likely_and_a_random_walk_unlikely(
        tmp_path: Path, predictor: TIPLPredictor) -> None:
    paths = [LearningPath(curved_path(tmp_path / f"toy-s{s}.safetensors", s)) for s in range(2)]
    paths += [LearningPath(random_walk(tmp_path / f"walk-s{s}.safetensors", s)) for s in range(2)]
    rows = {r.env_id: r for r in screen(paths, predictor)}
    assert set(rows) == {"Toy-v0", "Walk-v0"}
    toy, walk = rows["Toy-v0"], rows["Walk-v0"]
    assert toy.runs == walk.runs == 2 and toy.horizon == max(predictor.config.horizons)
    assert toy.linear_cosine > LIKELY_COSINE + 0.1 and toy.verdict == "likely"
    assert abs(walk.linear_cosine) < 0.2 and walk.verdict == "unlikely"
    assert toy.error < 1 and toy.progress > 0
    # 30 snapshots, a window of the context and its future: every start that has a future
    assert toy.windows == 2 * (30 - predictor.config.context)
    assert toy.spacing == 100 and walk.spacing == 256


def test_too_short_paths_are_named(tmp_path: Path, predictor: TIPLPredictor) -> None:
    short = LearningPath(curved_path(tmp_path / "toy-s0.safetensors", 0, snapshots=12))
    with pytest.raises(ValueError, match="has 12 snapshots.*need 16"):
        screen([short], predictor)


def test_cli_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    folder = tmp_path / "paths"
    folder.mkdir()
    curved_path(folder / "toy-s0.safetensors", 0)
    random_walk(folder / "walk-s0.safetensors", 0)
    out = tmp_path / "screen.json"
    result = runner.invoke(app, ["paths", "screen", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "synthetic ppo" in result.output and "Toy-v0" in result.output
    assert "likely" in result.output
    assert "unlikely" in result.output
    doc = json.loads(out.read_text())
    assert doc["format"] == "tipl-path-screen" and doc["version"] == 1
    assert [r["env_id"] for r in doc["rows"]] == ["Toy-v0", "Walk-v0"]
    one = runner.invoke(app, ["paths", "screen", str(folder / "toy-s0.safetensors")])
    assert one.exit_code == 0, one.output
    assert "Toy-v0" in one.output and "Walk-v0" not in one.output


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["paths", "screen", str(empty)])
    assert result.exit_code == 1 and "no readable learning paths" in result.output
    curved_path(empty / "toy-s0.safetensors", 0)
    result = runner.invoke(app, ["paths", "screen", str(empty), "--predictor", "linear"])
    assert result.exit_code == 1 and "not a TIPL checkpoint" in result.output
