"""The `tipl` command line through Typer's test runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_synthetic_path
from typer.testing import CliRunner

from tipl_opt.cli import app

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("collect", "paths", "plugins"):
        assert command in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "tipl-opt 0.1.0" in result.output


def test_paths_show_prints_one_row_per_run(tmp_path: Path) -> None:
    write_synthetic_path(tmp_path / "run-a.safetensors", seed=1)
    write_synthetic_path(tmp_path / "run-b.safetensors", seed=2, snapshots=3)
    result = runner.invoke(app, ["paths", "show", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "run-a" in result.output and "run-b" in result.output
    assert "2 runs." in result.output
    row_b = next(line for line in result.output.splitlines() if "run-b" in line)
    assert "Toy-v0" in row_b and " 3 " in row_b and "2.0" in row_b  # T=3, last return 2.0
    one = runner.invoke(app, ["paths", "show", str(tmp_path / "run-b.safetensors")])
    assert one.exit_code == 0, one.output
    assert "run-b" in one.output and "run-a" not in one.output and "1 runs." in one.output


def test_paths_check_passes_on_good_files(tmp_path: Path) -> None:
    write_synthetic_path(tmp_path / "good.safetensors")
    result = runner.invoke(app, ["paths", "check", str(tmp_path)])
    assert result.exit_code == 0
    assert "1 of 1 files are valid" in result.output


def test_paths_check_names_every_bad_file_and_exits_1(tmp_path: Path) -> None:
    write_synthetic_path(tmp_path / "good.safetensors")
    cut = write_synthetic_path(tmp_path / "cut.safetensors")
    cut.write_bytes(cut.read_bytes()[:-16])
    (tmp_path / "junk.safetensors").write_bytes(b"not a file at all")
    result = runner.invoke(app, ["paths", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "cut.safetensors: truncated" in result.output
    assert "junk.safetensors" in result.output
    assert "1 of 3 files are valid" in result.output


def test_paths_check_on_an_empty_folder_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["paths", "check", str(tmp_path)])
    assert result.exit_code == 1 and "no learning-path files" in result.output


def test_plugins_lists_builtin_and_adapter_plugins() -> None:
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0
    assert "tipl.log" in result.output and "tipl-sb3" in result.output
    assert "tipl-tianshou" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lib", "rllib"], "Unknown library 'rllib'"),
        (["--algo", "trpo"], "cannot train 'trpo'"),
        (["--env", "NoSuchEnv-v9"], "Unknown env id 'NoSuchEnv-v9'"),
        (["--algo", "dqn", "--env", "Pendulum-v1"], "DQN needs a Discrete action space"),
        (["--runs", "0"], "'runs'"),
        (["--hp", "n_stepz=256"], "'n_stepz' is not an argument of SB3 PPO. Did you mean"),
    ],
)
def test_collect_bad_input_gets_one_clear_message(tmp_path: Path, args: list[str],
                                                  message: str) -> None:
    result = runner.invoke(app, ["collect", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_collect_config_typo_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("evry = 100\n")
    result = runner.invoke(app, ["collect", "--config", str(config)])
    assert result.exit_code == 1
    assert "unknown key 'evry' (did you mean 'every'?)" in result.output


def test_collect_into_a_non_writable_folder_fails_and_keeps_files(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("precious")
    result = runner.invoke(app, ["collect", "--out", str(blocker / "sub")])
    assert result.exit_code == 1
    assert "not writable" in result.output
    assert blocker.read_text() == "precious"
