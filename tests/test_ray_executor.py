"""The Ray executor: the same runs as the process pool, a dying worker retried or reported
without losing the others, Ctrl-C keeping finished runs. A local Ray instance is started
inside the tests (no external service)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tipl_opt.cli import app
from tipl_opt.collect import CollectConfig, InlineExecutor, ProcessExecutor, collect
from tipl_opt.collect.executor import Emit
from tipl_opt.paths import LearningPath

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

from tipl_opt.collect.ray_executor import RayExecutor  # noqa: E402

# The trial functions below run in Ray workers, which may not find this test module on their
# path: ship it by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})

TINY = {"lib": "sb3", "algo": "ppo", "env": "CartPole-v1", "steps": 256, "every": 128,
        "eval_episodes": 1, "hidden_sizes": (8,), "hyperparams": {"n_steps": 128,
                                                                   "batch_size": 32}}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_collects_the_same_learning_paths_as_the_process_pool(tmp_path: Path) -> None:
    pool = collect(CollectConfig(**TINY, runs=2, out=tmp_path / "pool"),  # type: ignore[arg-type]
                   executor=ProcessExecutor(2))
    assert pool.ok
    config = tmp_path / "tiny.toml"
    config.write_text('lib = "sb3"\nalgo = "ppo"\nenv = "CartPole-v1"\nsteps = 256\n'
                      "every = 128\neval_episodes = 1\nhidden_sizes = [8]\n"
                      "[hyperparams]\nn_steps = 128\nbatch_size = 32\n")
    result = runner.invoke(app, ["collect", "--config", str(config), "--runs", "2",
                                 "--executor", "ray", "--workers", "2",
                                 "--out", str(tmp_path / "ray")])
    assert result.exit_code == 0, result.output
    assert result.output.count("collected") == 2
    for a in pool.results:
        b = LearningPath(tmp_path / "ray" / a.path.name)
        np.testing.assert_array_equal(LearningPath(a.path).weights, b.weights)
        assert [c[1] for c in a.curve] == b.return_mean.tolist()


def crash_once(task: tuple[str, int], emit: Emit) -> int:
    """Kills its own worker the first time it runs a task named ``crash`` (a marker file
    remembers), returns the task's value otherwise."""
    marker, value = task
    if marker.endswith("crash") and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    emit(("done", value))
    return value


def fail_always(task: int, emit: Emit) -> int:
    if task == 1:
        raise RuntimeError("bad hyperparameter")
    return task


def test_a_killed_worker_is_retried_and_the_others_finish(tmp_path: Path) -> None:
    tasks = [(str(tmp_path / "a"), 1), (str(tmp_path / "crash"), 2), (str(tmp_path / "b"), 3)]
    events: list[Any] = []
    outcomes = list(RayExecutor(2, max_retries=1).run(crash_once, tasks, events.append))
    assert sorted(o.result for o in outcomes if o.result is not None) == [1, 2, 3]
    assert not any(o.error for o in outcomes)
    assert sorted(v for _, v in events) == [1, 2, 3]


def test_a_killed_worker_without_retries_is_reported_and_the_others_finish(tmp_path: Path
                                                                           ) -> None:
    tasks = [(str(tmp_path / "a"), 1), (str(tmp_path / "crash"), 2), (str(tmp_path / "b"), 3)]
    outcomes = {o.task[1]: o for o in RayExecutor(2, max_retries=0).run(crash_once, tasks,
                                                                         lambda e: None)}
    assert outcomes[1].result == 1 and outcomes[3].result == 3
    assert outcomes[2].result is None and "Ray task failed" in (outcomes[2].error or "")


def test_an_error_in_a_trial_is_reported_with_its_traceback_not_retried() -> None:
    outcomes = {o.task: o for o in RayExecutor(2).run(fail_always, [0, 1, 2], lambda e: None)}
    assert outcomes[0].result == 0 and outcomes[2].result == 2
    assert "RuntimeError: bad hyperparameter" in (outcomes[1].error or "")


def test_ctrl_c_keeps_the_finished_runs_and_collect_resumes(tmp_path: Path) -> None:
    cfg = CollectConfig(**{**TINY, "steps": 512}, runs=3, out=tmp_path)  # type: ignore[arg-type]

    def interrupt(result: Any) -> None:
        raise KeyboardInterrupt

    summary = collect(cfg, executor=RayExecutor(2), on_result=interrupt)
    assert summary.interrupted and len(summary.results) == 1
    kept = summary.results[0]
    assert LearningPath(kept.path).num_snapshots == 5
    files = sorted(tmp_path.glob("*.safetensors"))
    for file in files:
        LearningPath(file).validate()  # only whole files: the stopped runs left none
    again = collect(cfg, executor=InlineExecutor())
    assert again.ok and len(again.results) == 3
    reused = {r.name for r in again.results if r.skipped}
    assert kept.name in reused
    assert reused == {f.name.removesuffix(".safetensors") for f in files}
