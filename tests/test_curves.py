"""Learning-curve metrics, intervals, thresholds and the goal checks of the benchmark."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tipl_opt.bench.aggregate import aggregate
from tipl_opt.bench.report import LINEAR, TIPL, check_goals, markdown
from tipl_opt.bench.suites import SUITES, get_suite
from tipl_opt.collect.runner import RunResult
from tipl_opt.curves import (
    area_under_curve,
    bootstrap_median,
    final_return,
    plot_curves,
    steps_to_threshold,
    write_json,
)
from tipl_opt.errors import ConfigError
from tipl_opt.thresholds import threshold_for
from tipl_opt.train import BASE, TrainConfig, TrainSummary, VariantSummary

CURVE = [(0, 10.0, 1.0), (100, 50.0, 1.0), (200, 100.0, 0.0), (300, 90.0, 0.0)]


def test_steps_to_threshold_final_return_and_auc() -> None:
    assert steps_to_threshold(CURVE, 50) == 100
    assert steps_to_threshold(CURVE, 101) == math.inf
    assert final_return(CURVE, last=2) == 95.0
    # trapezoids: (10+50)/2 + (50+100)/2 + (100+90)/2 = 200 per 100 steps -> mean 66.67
    assert area_under_curve(CURVE) == pytest.approx(200 / 3)
    assert area_under_curve(CURVE, total_steps=200) == pytest.approx((30 + 75) / 2)


def test_bootstrap_interval_brackets_the_median_and_keeps_never() -> None:
    med, lo, hi = bootstrap_median([1.0, 2.0, 3.0, 4.0, 100.0])
    assert med == 3.0 and lo <= med <= hi
    med, lo, hi = bootstrap_median([1.0, math.inf, math.inf])
    assert med == math.inf and hi == math.inf
    assert math.isnan(bootstrap_median([])[0])


def test_thresholds_have_a_source() -> None:
    assert threshold_for("CartPole-v1") == (475.0, "gymnasium registration reward_threshold")
    value, source = threshold_for("Pendulum-v1")  # type: ignore[misc]
    assert value == -200.0 and "no registered threshold" in source
    assert threshold_for("MountainCar-v0") == (-110.0, "gymnasium registration reward_threshold")


def test_a_given_threshold_replaces_the_envs_solved_level_and_says_so() -> None:
    from tipl_opt.bench.runner import task_config
    from tipl_opt.bench.suites import BenchTask
    from tipl_opt.train import empty_summary

    own = empty_summary(TrainConfig(env="InvertedDoublePendulum-v5"), [(BASE, None)])
    assert (own.variants[BASE].threshold, own.threshold_source) == (
        9100.0, "gymnasium registration reward_threshold")
    given = empty_summary(TrainConfig(env="InvertedDoublePendulum-v5", threshold=500),
                          [(BASE, None)])
    assert given.variants[BASE].threshold == 500.0 and "given" in given.threshold_source
    task = BenchTask("InvertedDoublePendulum-v5", "sb3", "ppo", 1000, 100, threshold=500)
    assert task_config(task, 1, 0, Path("out")).threshold == 500.0
    assert task_config(BenchTask("CartPole-v1", "sb3", "ppo", 1000, 100), 1, 0,
                       Path("out")).threshold is None


def test_a_suite_that_trains_an_env_twice_names_each_task_apart() -> None:
    from tipl_opt.bench.report import label
    from tipl_opt.bench.runner import task_config
    from tipl_opt.bench.suites import task_label

    suite = get_suite("many-jumps")
    tasks = [(t.env, t.lib, t.algo) for t in suite]
    labels = [task_label(t.env, t.lib, t.algo, tasks) for t in suite]
    assert labels[:3] == ["InvertedPendulum-v5-sb3", "InvertedPendulum-v5-tianshou",
                          "InvertedDoublePendulum-v5"]
    # one library, two algorithms on one env: the algorithm names them apart
    assert [n for n in labels if n.startswith("Pendulum")] == ["Pendulum-v1-sac",
                                                              "Pendulum-v1-ppo"]
    folders = {task_config(t, 1, 0, Path("out"), label=n).out
               for t, n in zip(suite, labels, strict=True)}
    assert len(folders) == len(suite)  # no two tasks share a folder of runs
    a = _summary("E-v0", {BASE: [1000]})
    b = TrainSummary(TrainConfig(env="E-v0", lib="tianshou", steps=1000), a.variants)
    assert (label(a, [a, b]), label(b, [a, b]), label(a, [a])) == ("E-v0-sb3", "E-v0-tianshou",
                                                                   "E-v0")


def test_suites_are_defined_and_unknown_ones_refused() -> None:
    assert {t.env for t in get_suite("classic")} == {
        "CartPole-v1", "Acrobot-v1", "Pendulum-v1", "InvertedPendulum-v5"}
    assert all(threshold_for(t.env) for s in SUITES.values() for t in s)
    with pytest.raises(ConfigError, match="Unknown suite"):
        get_suite("atari")


def _summary(env: str, steps: dict[str, list[float]]) -> TrainSummary:
    """A summary whose runs reach the threshold (100) at the given env steps."""
    cfg = TrainConfig(env=env, steps=1000)
    variants = {}
    for name, reach in steps.items():
        v = VariantSummary(name, threshold=100.0)
        for i, s in enumerate(reach):
            curve = [(0, 0.0, 0.0), (int(s), 100.0, 0.0)] if math.isfinite(s) else [
                (0, 0.0, 0.0), (1000, 50.0, 0.0)]
            v.runs.append(RunResult(f"r-s{i}-{name}", Path("x"), 2, 10, 0.0, 100.0, 1.0,
                                    curve=curve, seed=i))
        variants[name] = v
    return TrainSummary(cfg, variants)


def test_goal_checks_on_known_results() -> None:
    good = [_summary(f"E{i}-v0", {BASE: [1000, 1000, 1000], TIPL: [500, 600, 600],
                                  LINEAR: [900, 900, 900]}) for i in range(3)]
    bad = _summary("Bad-v0", {BASE: [1000, 1000, 1000], TIPL: [math.inf] * 3,
                              LINEAR: [800, 800, 800]})
    agg = aggregate([*good, bad], reps=200)
    # normalised steps: 0.5, 0.6, 0.6 on each good env, 1.0 (the budget) on the bad one
    assert agg["runs_per_env"] == 3 and len(agg["envs"]) == 4
    assert agg["iqm"][BASE]["steps"]["iqm"] == pytest.approx(1.0)
    assert agg["iqm"][TIPL]["steps"]["iqm"] == pytest.approx(0.6)
    # fewer steps than linear on 3 of 4 envs, on every seed: P = 0.75
    assert agg["probability_of_improvement"][f"{TIPL} vs {LINEAR}"]["steps"]["p"] == \
        pytest.approx(0.75)
    goals = check_goals([*good, bad], agg)
    assert goals["speedup"]["met"]  # 3 of 4 at 0.6
    assert goals["iqm"]["met"] and "0.60" in goals["iqm"]["detail"]
    assert goals["beats_linear"]["met"]
    assert not goals["no_harm"]["met"] and "Bad-v0" in goals["no_harm"]["detail"]
    assert not check_goals([*good, bad])["iqm"]["met"]  # no aggregate, no claim
    base_never = _summary("Slow-v0", {BASE: [math.inf] * 3, TIPL: [800, 900, math.inf],
                                      LINEAR: [math.inf] * 3})
    assert check_goals([base_never])["no_harm"]["met"]  # TIPL reached it, the base never did
    text = markdown("classic", [*good, bad], goals, {}, agg)
    assert "**not met**" in text and "| tipl:default | 600 [500, 600] | 3/3 |" in text
    assert "| tipl:default | 0.60 [" in text  # the suite's IQM table


def test_json_and_plot_outputs(tmp_path: Path) -> None:
    path = write_json({"x": math.inf, "y": [math.nan, 1.0]}, tmp_path / "r.json")
    assert json.loads(path.read_text()) == {"x": "inf", "y": ["nan", 1.0]}
    png = plot_curves({"base": [CURVE, CURVE]}, tmp_path / "c.png", title="t", threshold=80)
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"


def test_a_failed_plot_write_keeps_the_old_plot_and_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.figure

    out = tmp_path / "curves.png"
    out.write_bytes(b"old plot")

    def full_disk(self: object, *args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    with pytest.raises(OSError):
        plot_curves({"base": [CURVE]}, out, title="t")
    assert out.read_bytes() == b"old plot"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]
