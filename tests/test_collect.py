"""`tipl collect` end to end with a real adapter: files, resume, interruption, parallel workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tipl_opt.cli import app
from tipl_opt.collect import CollectConfig, InlineExecutor, ProcessExecutor, collect, run_one
from tipl_opt.paths import LearningPath, PathDataset

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})

TINY = {"lib": "sb3", "algo": "ppo", "env": "CartPole-v1", "steps": 256, "every": 128,
        "eval_episodes": 1, "hidden_sizes": (8,), "hyperparams": {"n_steps": 128,
                                                                   "batch_size": 32}}


def test_cli_collect_writes_one_valid_file_per_run_and_resumes(tmp_path: Path) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text('lib = "sb3"\nalgo = "ppo"\nenv = "CartPole-v1"\nsteps = 256\n'
                      "every = 128\neval_episodes = 1\nhidden_sizes = [8]\n"
                      "[hyperparams]\nn_steps = 128\nbatch_size = 32\n")
    out = tmp_path / "data"
    result = runner.invoke(app, ["collect", "--config", str(config), "--runs", "2",
                                 "--seed", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["sb3-ppo-CartPole-v1-s5.safetensors", "sb3-ppo-CartPole-v1-s6.safetensors"]
    lp = LearningPath(out / names[0])
    assert lp.seed == 5 and lp.env_steps.tolist() == [0, 128, 256]
    assert lp.meta["hyperparameters"]["n_steps"] == 128
    assert "Collection summary" in result.output and "collected" in result.output
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}

    again = runner.invoke(app, ["collect", "--config", str(config), "--runs", "3",
                                "--seed", "5", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "skipped (exists)" in again.output
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # untouched
    assert len(PathDataset(out)) == 3


def test_a_corrupt_leftover_is_collected_again(tmp_path: Path) -> None:
    cfg = CollectConfig(**TINY, runs=1, out=tmp_path)  # type: ignore[arg-type]
    bad = tmp_path / "sb3-ppo-CartPole-v1-s0.safetensors"
    bad.write_bytes(b"garbage")
    summary = collect(cfg)
    assert summary.ok and LearningPath(bad).num_snapshots == 3


class InterruptAfterFirst(InlineExecutor):
    """Runs trials inline and raises KeyboardInterrupt when the second one starts."""

    def run(self, fn: Any, tasks: Any, on_event: Any) -> Any:
        for i, outcome in enumerate(super().run(fn, tasks, on_event)):
            yield outcome
            if i == 0:
                raise KeyboardInterrupt


def test_interrupt_keeps_finished_runs_and_leaves_no_partial_file(tmp_path: Path) -> None:
    cfg = CollectConfig(**TINY, runs=3, out=tmp_path)  # type: ignore[arg-type]
    summary = collect(cfg, executor=InterruptAfterFirst())
    assert summary.interrupted and not summary.ok
    assert [r.name for r in summary.results] == ["sb3-ppo-CartPole-v1-s0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sb3-ppo-CartPole-v1-s0.safetensors"]


@pytest.mark.slow
def test_two_worker_processes_collect_in_parallel(tmp_path: Path) -> None:
    events: list[Any] = []
    cfg = CollectConfig(**TINY, runs=2, workers=2, out=tmp_path)  # type: ignore[arg-type]
    summary = collect(cfg, on_event=events.append)
    assert summary.ok and len(summary.results) == 2
    assert {e.run for e in events} == {"sb3-ppo-CartPole-v1-s0", "sb3-ppo-CartPole-v1-s1"}
    assert {e.kind for e in events} >= {"start", "snapshot"}


def test_a_failing_run_is_reported_and_the_others_go_on(tmp_path: Path) -> None:
    cfg = CollectConfig(**TINY, runs=2, out=tmp_path)  # type: ignore[arg-type]
    from tipl_opt.collect.runner import plan

    todo, _ = plan(cfg)
    broken = todo[0].__class__(todo[0].name, "no-such-lib", todo[0].spec, todo[0].path,
                               todo[0].dtype)
    outcomes = list(ProcessExecutor(1).run(run_one, [broken, todo[1]], lambda e: None))
    assert outcomes[0].error is not None and "no-such-lib" in outcomes[0].error
    assert outcomes[1].result is not None and outcomes[1].result.snapshots == 3
