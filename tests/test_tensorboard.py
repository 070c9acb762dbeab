"""``--tensorboard DIR``: each run writes TensorBoard events with the library's own scalars and
the ``tipl/`` jump reports, read back here with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tipl_opt.cli import app

EventAccumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator").EventAccumulator

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})

JUMP_SCALARS = {"tipl/accepted", "tipl/fraction", "tipl/relative_size", "tipl/guard",
                "tipl/prediction_ms", "tipl/horizon", "tipl/jumps_accepted",
                "tipl/jumps_tried"}


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def train(tmp_path: Path, *args: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    board = tmp_path / "tb"
    result = runner.invoke(app, ["train", *args, "--predictor", "linear", "--jump", "context=3",
                                 "--eval-episodes", "1", "--hidden", "8",
                                 "--tensorboard", str(board), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    return {run.name: scalars(run) for run in sorted(board.iterdir())}


def test_sb3_writes_its_own_scalars_and_the_jump_reports_to_tensorboard(tmp_path: Path
                                                                        ) -> None:
    runs = train(tmp_path, "--lib", "sb3", "--algo", "ppo", "--env", "CartPole-v1",
                 "--steps", "1024", "--every", "512", "--hp", "n_steps=64",
                 "--hp", "batch_size=32")
    [(name, tags)] = runs.items()
    assert name == "sb3-ppo-CartPole-v1-s0-tipl-linear"
    assert set(tags) >= JUMP_SCALARS and "train/loss" in tags
    tried = tags["tipl/jumps_tried"]
    assert tried and tried[-1][1] >= 1 and 0 < tried[-1][0] <= 1024
    assert all(v in (0.0, 1.0) for _, v in tags["tipl/accepted"])
