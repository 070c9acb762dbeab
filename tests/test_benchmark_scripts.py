"""The benchmark scripts run end to end on small synthetic learning paths."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import write_synthetic_path

from tipl_opt.paths import PathWriter, Snapshot, TaggedParam

ROOT = Path(__file__).resolve().parents[1]


def _synthetic_runs(folder: Path, runs: int, snapshots: int) -> Path:
    """``runs`` straight synthetic learning paths of ``snapshots`` each in ``folder``."""
    for seed in range(runs):
        write_synthetic_path(folder / f"synthetic-ppo-Toy-v0-s{seed}.safetensors",
                             snapshots=snapshots, seed=seed)
    return folder


def test_jump_progress_measures_how_far_a_jump_lands(tmp_path: Path) -> None:
    data = _synthetic_runs(tmp_path / "data", 2, 20)
    out = tmp_path / "progress.json"
    script = [sys.executable, str(ROOT / "benchmarks" / "jump_progress.py"), "--paths",
              str(data), "--out", str(out)]
    # the default predictor's validation runs are not here: refuse to call these held out
    refused = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "--all-runs" in refused.stderr and not out.exists()
    result = subprocess.run([*script, "--all-runs"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "snapshots worth" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["horizons"] == [1, 2, 4, 8] and doc["windows"] > 0
    assert doc["runs_are"] == "every run (not held out)" and len(doc["runs"]) == 2
    linear = doc["stats"]["linear"]
    # the synthetic paths are straight lines: linear extrapolation lands exactly on them
    for key in ("progress_median", "cosine_median", "length_median"):
        assert linear[key] == pytest.approx([1.0] * 4, abs=1e-4)
    tipl = doc["stats"]["tipl"]
    assert all(-1.0 <= c <= 1.0 for c in tipl["cosine_median"])


def test_path_predictability_joins_the_offline_cosine_with_the_online_ratio(tmp_path: Path
                                                                           ) -> None:
    data = _synthetic_runs(tmp_path / "paths", 2, 40)
    paired = tmp_path / "paired.json"
    paired.write_text(json.dumps({"rows": [
        {"folder": "runs/toy", "variant": v, "median_ratio": r, "median_ratio_ci95": [r - .1, r]}
        for v, r in (("tipl-default", 0.7), ("tipl-linear", 0.9))]}))
    out = tmp_path / "out"
    script = [sys.executable, str(ROOT / "benchmarks" / "path_predictability.py"), "--task",
              f"toy={data}:{paired}", "--out", str(out)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    task = json.loads((out / "predictability.json").read_text())["tasks"]["toy"]
    assert task["runs"] == 2 and task["windows"] > 0
    # straight synthetic paths: the path keeps its direction, linear lands on it
    assert task["stats"]["linear"]["cosine_median"] == pytest.approx([1.0] * 4, abs=1e-4)
    assert task["online"]["tipl-default"]["median_ratio"] == 0.7
    assert "toy" in result.stdout and "0.70 / 0.90" in result.stdout
    # every 2nd snapshot (snapshot_every=2): fewer windows, the same straight path
    strided = subprocess.run([*script[:-2], "--stride", "2", "--out", str(tmp_path / "s2")],
                             capture_output=True, text=True, timeout=300)
    assert strided.returncode == 0, strided.stderr
    task2 = json.loads((tmp_path / "s2" / "predictability.json").read_text())["tasks"]["toy"]
    assert 0 < task2["windows"] < task["windows"]
    assert task2["stats"]["linear"]["cosine_median"] == pytest.approx([1.0] * 4, abs=1e-4)
    wrong = subprocess.run([*script[:-4], "--task", f"toy={data}:{paired}:idp", "--out",
                            str(out)], capture_output=True, text=True, timeout=300)
    assert wrong.returncode != 0 and "no row for a folder ending with 'idp'" in wrong.stderr


def test_direction_memory_measures_slopes_and_the_trend_predictor(tmp_path: Path) -> None:
    data = _synthetic_runs(tmp_path / "paths", 2, 30)
    out = tmp_path / "direction"
    script = [sys.executable, str(ROOT / "benchmarks" / "direction_memory.py"), "--task",
              f"toy={data}", "--predictor", "linear", "--history", "16", "--horizon", "4",
              "--out", str(out)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    task = json.loads((out / "direction.json").read_text())["tasks"]["toy"]
    # windows from snapshot 7 (linear's context) to 25 (4 ahead of the last), per run
    assert task["runs"] == 2 and task["windows"] == {"all": 38, "early": 16, "late": 22}
    med = task["medians"]
    # straight paths: every slope points at the coming move; linear lands on it; trend adds
    # only what linear's move lacks, here nothing
    for key in ("slope8:all", "slope16:late", "slope32:early", "inner.cosine:all",
                "trend.cosine:all"):
        assert med[key] == pytest.approx(1.0, abs=1e-4)
    assert med["inner.error:all"] == pytest.approx(0.0, abs=1e-4)
    assert med["trend.progress:all"] == pytest.approx(1.0, abs=1e-3)
    assert med["whole.progress:all"] == pytest.approx(2.0, abs=1e-3)  # the trend twice
    assert "toy" in result.stdout and "late" in result.stdout
    bad = subprocess.run([*script[:3], "toy", "--out", str(out)], capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode != 0 and "expected NAME=PATHS" in bad.stderr


def test_direction_curvature_fits_lines_and_bends_to_the_window(tmp_path: Path) -> None:
    data = _synthetic_runs(tmp_path / "paths", 2, 24)
    script = [sys.executable, str(ROOT / "benchmarks" / "direction_curvature.py"), str(data),
              "--horizon", "4"]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[1]: [float(x) for x in line.split()[2:]]
            for line in result.stdout.splitlines()[1:]}
    # straight paths: every fit, line or bend, lands on the coming move
    assert set(rows) == {"line-8", "line-4", "bend-8", "half"}
    for cos, err, err_best in rows.values():
        assert cos == pytest.approx(1.0, abs=1e-4) and err == pytest.approx(0.0, abs=1e-4)
        assert err_best == pytest.approx(0.0, abs=1e-4)
    # on a bent path the quadratic is exact and the straight lines are not, the short one less
    # wrong; the average of line and bend lands between them
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from direction_curvature import extrapolate, probe
    finally:
        sys.path.pop(0)
    t = np.arange(8, dtype=np.float64)[:, None]
    window = np.hstack([t**2, 3.0 * t])
    assert extrapolate(window, 2, 4) == pytest.approx([121.0, 33.0])
    assert extrapolate(window, 1, 4)[0] < 121.0 - 10
    bent = tmp_path / "bent"
    bent.mkdir()
    writer = PathWriter(bent / "synthetic-ppo-Bent-v0-s0.safetensors",
                        {"library": "synthetic", "algorithm": "ppo", "env_id": "Bent-v0",
                         "seed": 0})
    for k in range(20):
        w = torch.tensor([0.05 * k * k, 1.0 * k, -0.02 * k * k + 0.5 * k], dtype=torch.float64)
        writer.add(Snapshot([TaggedParam("actor.w", "actor", w.float())], k * 100, k * 10,
                            float(k), 0.0))
    writer.finish()
    fits = probe(bent, horizon=4, max_windows=1000)
    assert fits["bend-8"][0] == pytest.approx(1.0, abs=1e-4)
    assert fits["bend-8"][1] == pytest.approx(0.0, abs=1e-4)
    assert fits["line-8"][1] > fits["line-4"][1] > 0.01
    assert fits["line-8"][1] > fits["half"][1] > fits["bend-8"][1]
    assert fits["line-8"][2] < fits["line-8"][1]  # the best length does better than the full


def test_persistence_over_run_bins_the_online_check_and_the_return_differences(
        tmp_path: Path) -> None:
    data = _synthetic_runs(tmp_path / "paths", 2, 60)  # straight: a snapshot every 100 steps
    runs = tmp_path / "task" / "runs"
    runs.mkdir(parents=True)
    for seed, gain in ((0, 1.0), (1, 3.0)):
        for variant, extra in (("base", 0.0), ("tipl-default", gain)):
            curve = [[1000 * i, float(i) + (extra if i >= 3 else 0.0), 0.0] for i in range(6)]
            (runs / f"sb3-ppo-Toy-v0-s{seed}-{variant}.json").write_text(json.dumps(
                {"format": "tipl-run-result", "curve": curve}))
    out = tmp_path / "out"
    script = [sys.executable, str(ROOT / "benchmarks" / "persistence_over_run.py"),
              "--task", f"toy={data}:{tmp_path / 'task'}", "--variant", "default",
              "--bin", "3000", "--windows", "4", "--level", "0.5", "--out", str(out)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    task = json.loads((out / "persistence.json").read_text())["tasks"]["toy"]
    assert task["runs"] == 2 and task["bins"] == [0, 3000]
    # a straight path keeps its direction: every cosine 1, nothing held
    assert task["cosine"] == pytest.approx([1.0, 1.0], abs=1e-4)
    assert task["held"][1] == 0.0
    # evaluations 0-2 in the first bin (no difference), 3-5 in the second (+1 and +3)
    first, second = task["returns"]["default"]["per_bin"]
    assert first == pytest.approx([0.0, 0.0])
    assert second[0] == pytest.approx(2.0)
    assert second[1] == pytest.approx(2 * math.sqrt(2.0) / math.sqrt(2))
    # by role: a critic on a straight path beside an actor that wanders (noise)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    writer = PathWriter(mixed / "synthetic-ppo-Mixed-v0-s0.safetensors",
                        {"library": "synthetic", "algorithm": "ppo", "env_id": "Mixed-v0",
                         "seed": 0})
    noise = torch.randn(60, 6, generator=torch.Generator().manual_seed(0))
    for k in range(60):
        writer.add(Snapshot([TaggedParam("actor.w", "actor", noise[k]),
                             TaggedParam("critic.w", "critic", torch.full((2,), float(k)))],
                            k * 100, k * 10, float(k), 0.0))
    writer.finish()
    script[3] = f"mixed={mixed}"
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    by_role = json.loads((out / "persistence.json").read_text())["tasks"]["mixed"]["by_role"]
    assert by_role["critic"] == pytest.approx([1.0, 1.0], abs=1e-4)
    assert all(abs(v) < 0.5 for v in by_role["actor"])
    # what the once-deciding check reads: each role's first 16 cosines in the one run
    decided = json.loads((out / "persistence.json").read_text())["tasks"]["mixed"]["first"]
    assert decided["critic"] == [pytest.approx(1.0, abs=1e-4)]
    assert len(decided["actor"]) == 1 and decided["actor"][0] < 0.5
    assert "first 16 windows, actor" in result.stdout and "(1 of 1 runs below 0.5)" in result.stdout


def test_predictor_objectives_trains_each_variant_and_measures_it_per_env(tmp_path: Path
                                                                         ) -> None:
    train, heldout = tmp_path / "train", tmp_path / "heldout"
    for seed in range(3):
        write_synthetic_path(train / f"synthetic-ppo-Toy-v0-s{seed}.safetensors", snapshots=20,
                             seed=seed)
    write_synthetic_path(heldout / "synthetic-ppo-Toy-v0-s9.safetensors", snapshots=20, seed=9)
    out = tmp_path / "objectives"
    script = [sys.executable, str(ROOT / "benchmarks" / "predictor_objectives.py"), "--train",
              str(train), "--heldout", str(heldout), "--out", str(out), "--variants",
              "mse,residual-direction", "--steps", "3"]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("pretrained ") == 2
    doc = json.loads((out / "objectives.json").read_text())
    assert list(doc["results"]) == ["all", "Toy-v0"]
    stats = doc["results"]["Toy-v0"]["stats"]
    assert list(stats) == ["default", "mse", "residual-direction", "linear"]
    # straight synthetic paths: linear lands on them, and so does a barely trained residual
    assert stats["linear"]["progress_median"] == pytest.approx([1.0] * 4, abs=1e-4)
    assert stats["residual-direction"]["cosine_median"][0] > 0.9
    config = json.loads((out / "predictors" / "residual-direction" / "config.json").read_text())
    assert config["model"]["residual"] and config["training"]["loss"] == "direction"
    again = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "pretrained" not in again.stdout  # finished ones are kept
    bad = subprocess.run([*script[:-4], "--variants", "huber"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "unknown variants" in bad.stderr


def test_pretrain_throughput_measures_windows_per_second(tmp_path: Path) -> None:
    out = tmp_path / "pretrain.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pretrain_throughput.py"),
                             "--runs", "2", "--snapshots", "14", "--params", "200", "--steps",
                             "2", "--batch-size", "4", "--workers", "0,1", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["workers"] for r in rows] == [0, 1]
    assert all(r["loader_windows_per_s"] > 0 and r["train_windows_per_s"] > 0 for r in rows)


@pytest.mark.parametrize("recipe", sorted((ROOT / "benchmarks" / "recipes").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_every_data_recipe_is_a_valid_collect_config_of_an_installed_adapter(recipe: Path
                                                                             ) -> None:
    from tipl_opt.collect.config import load_config
    from tipl_opt.plugins import get_adapter

    config = load_config(recipe, {})
    adapter = get_adapter(config.lib)
    assert config.algo in adapter.algorithms, (recipe.name, adapter.algorithms)
    scripts = "".join(p.read_text() for p in (ROOT / "benchmarks").glob("*.sh"))
    scripts += scripts.replace("$lib", "sb3") + scripts.replace("$lib", "tianshou")
    assert f"recipes/{recipe.name}" in scripts or f"collect {recipe.stem} " in scripts, \
        f"{recipe.name} is used by no data script"


def test_paired_runs_compares_each_tipl_run_with_the_base_run_of_its_seed(tmp_path: Path
                                                                          ) -> None:
    runs = tmp_path / "ip" / "runs"
    runs.mkdir(parents=True)

    def write(seed: int, variant: str, returns: list[float]) -> None:
        curve = [[1000 * i, r, 0.0] for i, r in enumerate(returns)]
        (runs / f"sb3-ppo-Toy-v0-s{seed}-{variant}.json").write_text(json.dumps(
            {"format": "tipl-run-result", "curve": curve}))

    write(0, "base", [0, 0, 100, 100])  # reaches 100 at 2000
    write(0, "tipl-default", [0, 100, 100, 100])  # at 1000: ratio 0.5, AUC +25
    write(1, "base", [0, 100, 100, 100])
    write(1, "tipl-default", [0, 0, 0, 0])  # never: 1.1 x 3000 / 1000, ends below
    write(2, "tipl-default", [100, 100, 100, 100])  # no base run for seed 2: not paired
    write(0, "tipl-search", [0, 100, 100, 100])  # a variant whose name starts with "s"
    out = tmp_path / "paired.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paired_runs.py"),
                             str(tmp_path / "ip"), "--threshold", "100", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    row, search = json.loads(out.read_text())["rows"]
    assert row["variant"] == "tipl-default" and row["seeds"] == 2
    assert (search["variant"], search["seeds"]) == ("tipl-search", 1)
    assert row["median_ratio"] == pytest.approx((0.5 + 3.3) / 2)
    assert (row["earlier"], row["later"], row["auc_higher"]) == (1, 1, 1)
    assert row["auc_diff_mean"] == pytest.approx((25.0 - 75.0) / 2)
    assert (row["final_below_threshold"], row["base_final_below_threshold"]) == (1, 0)
    (runs / "sb3-ppo-Toy-v0-s0-tipl-search.json").unlink()  # the suite pairs every variant
    suite = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paired_runs.py"),
                            str(tmp_path / "ip"), "--threshold", "100", "--suite", "--out",
                            str(out), "--plot", str(tmp_path / "plots")],
                           capture_output=True, text=True, timeout=300)
    assert suite.returncode == 0, suite.stderr
    try:
        import matplotlib  # noqa: F401
        assert (tmp_path / "plots" / "ip.png").stat().st_size > 1000
    except ImportError:
        assert "matplotlib is not installed" in suite.stdout
    # steps over the base median (1500), never = the budget: base 4/3 and 2/3, TIPL 2/3 and 2
    iqm = json.loads(out.read_text())["suite"]["iqm_steps"]
    assert iqm["base"]["iqm"] == pytest.approx(1.0)
    assert iqm["tipl-default"]["iqm"] == pytest.approx(4 / 3)
    better = json.loads(out.read_text())["suite"]["probability_of_fewer_steps"]
    assert set(better) == {"tipl-default vs base"}
    # TIPL {2/3, 2} against base {4/3, 2/3}, every pair of runs (Mann-Whitney, a tie counts
    # half): 2/3 < 4/3 (1), 2/3 = 2/3 (0.5), 2 > 4/3 (0), 2 > 2/3 (0): 1.5 of 4
    assert better["tipl-default vs base"]["p"] == pytest.approx(0.375)
    assert "suite IQM" in suite.stdout
    empty = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paired_runs.py"),
                            str(tmp_path), "--threshold", "1"], capture_output=True, text=True,
                           timeout=300)
    assert empty.returncode != 0 and "no paired runs" in empty.stderr


def test_the_suite_leaves_out_a_variant_that_not_every_folder_has(tmp_path: Path) -> None:
    def write(folder: str, seed: int, variant: str, returns: list[float]) -> None:
        runs = tmp_path / folder / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        curve = [[1000 * i, r, 0.0] for i, r in enumerate(returns)]
        (runs / f"sb3-ppo-Toy-v0-s{seed}-{variant}.json").write_text(json.dumps(
            {"format": "tipl-run-result", "curve": curve}))

    for folder in ("a", "b"):
        for seed in (0, 1):
            write(folder, seed, "base", [0, 0, 100, 100])
            write(folder, seed, "tipl-default", [0, 100, 100, 100])
    write("a", 0, "tipl-new", [100, 100, 100, 100])  # a candidate with one seed, in one folder
    out = tmp_path / "suite.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paired_runs.py"),
                             str(tmp_path / "a"), str(tmp_path / "b"), "--threshold", "100",
                             "--suite", "--out", str(out)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())["suite"]
    assert doc["runs_per_folder"] == 2  # not cut to the candidate's one seed
    assert set(doc["iqm_steps"]) == {"base", "tipl-default"}
    assert doc["iqm_steps"]["tipl-default"]["iqm"] == pytest.approx(0.5)


def test_paired_runs_takes_a_threshold_per_folder(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        runs = tmp_path / folder / "runs"
        runs.mkdir(parents=True)
        for variant, returns in (("base", [0, 50, 100, 100]), ("tipl-default", [50, 50, 100, 100])):
            curve = [[1000 * i, r, 0.0] for i, r in enumerate(returns)]
            (runs / f"sb3-ppo-Toy-v0-s0-{variant}.json").write_text(json.dumps(
                {"format": "tipl-run-result", "curve": curve, "jump_steps": [
                    500, 1500, 2500] if variant != "base" else []}))
    out = tmp_path / "paired.json"
    script = [sys.executable, str(ROOT / "benchmarks" / "paired_runs.py"), str(tmp_path / "a"),
              str(tmp_path / "b")]
    result = subprocess.run([*script, "--threshold", "100", "--threshold", "b=50", "--out",
                             str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["thresholds"] == [100.0, 50.0]
    # a: TIPL and base both reach 100 at 2000; b: TIPL reaches 50 at 0, the base at 1000
    assert [row["earlier"] for row in doc["rows"]] == [0, 1]
    # jumps at 500, 1500, 2500: two before the base reached 100 (a), one before 50 (b)
    assert [row["jumps_before_base_threshold"] for row in doc["rows"]] == [2, 1]
    assert "jumps before the base reached it 2" in result.stdout
    for bad, message in ((["--threshold", "c=5"], "names no folder"),
                         (["--threshold", "b=x"], "expected a number")):
        refused = subprocess.run([*script, *bad], capture_output=True, text=True, timeout=300)
        assert refused.returncode != 0 and message in refused.stderr


def test_paired_runs_takes_the_stored_runs_of_the_folders_library(tmp_path: Path) -> None:
    runs = tmp_path / "new" / "runs"
    runs.mkdir(parents=True)
    (runs / "sb3-ppo-Toy-v0-s0-tipl-new.json").write_text(json.dumps(
        {"format": "tipl-run-result", "lib": "sb3", "spec": {"env_id": "Toy-v0"},
         "curve": [[0, 0, 0.0], [1000, 100, 0.0]]}))

    def entry(lib: str, base: list[float]) -> dict[str, object]:
        return {"config": {"env": "Toy-v0", "lib": lib}, "variants": {"base": {"curves": {
            f"{lib}-ppo-Toy-v0-s0-base": [[1000 * i, r, 0.0] for i, r in enumerate(base)]}}}}

    bench = tmp_path / "bench.json"  # a suite that trains Toy-v0 with two libraries
    bench.write_text(json.dumps({"envs": [entry("tianshou", [0, 100]),
                                          entry("sb3", [0, 0, 100])]}))
    out = tmp_path / "paired.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paired_runs.py"),
                             str(tmp_path / "new"), "--threshold", "100", "--against",
                             str(bench), "--out", str(out)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    [row] = json.loads(out.read_text())["rows"]
    assert row["median_ratio"] == pytest.approx(0.5)  # against the SB3 base (2000), not 1000


def test_paired_runs_pairs_new_runs_with_the_stored_runs_of_a_benchmark(tmp_path: Path
                                                                         ) -> None:
    spec = {"algo": "ppo", "env_id": "Toy-v0", "total_steps": 3000, "every": 1000,
            "hyperparams": {"n_steps": 256}, "hidden_sizes": [64, 64]}
    runs = tmp_path / "new" / "runs"
    runs.mkdir(parents=True)
    for seed, returns in ((0, [0, 100, 100, 100]), (1, [0, 0, 0, 100])):
        (runs / f"sb3-ppo-Toy-v0-s{seed}-tipl-new.json").write_text(json.dumps(
            {"format": "tipl-run-result", "spec": spec,
             "curve": [[1000 * i, r, 0.0] for i, r in enumerate(returns)]}))
    stored = {"base": [0, 0, 100, 100], "tipl-default": [0, 0, 0, 0]}
    config = {"env": "Toy-v0", "algo": "ppo", "steps": 3000, "every": 1000,
              "hyperparams": {"n_steps": 256}, "hidden_sizes": [64, 64]}
    bench = tmp_path / "bench.json"

    def write_bench(config: dict[str, object]) -> None:
        variants = {name.replace("-", ":", 1): {"curves": {
            f"sb3-ppo-Toy-v0-s{seed}-{name}": [[1000 * i, r, 0.0] for i, r in enumerate(c)]
            for seed in (0, 1, 2)}} for name, c in stored.items()}
        other = {"config": {**config, "env": "Other-v0"}, "variants": {}}
        bench.write_text(json.dumps({"envs": [other, {"config": config,
                                                      "variants": variants}]}))

    write_bench(config)
    out = tmp_path / "paired.json"
    script = [sys.executable, str(ROOT / "benchmarks" / "paired_runs.py"),
              str(tmp_path / "new"), "--threshold", "100", "--against", str(bench),
              "--out", str(out)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "does not name" in result.stderr  # the stored bench says nothing of its CPU
    rows = {r["variant"]: r for r in json.loads(out.read_text())["rows"]}
    # the new variant: seeds 0 and 1 (ratios 0.5 and 1.5); the stored one: seeds 0, 1 and 2
    assert (rows["tipl-new"]["seeds"], rows["tipl-default"]["seeds"]) == (2, 3)
    assert rows["tipl-new"]["median_ratio"] == pytest.approx(1.0)
    assert (rows["tipl-new"]["earlier"], rows["tipl-new"]["later"]) == (1, 1)
    # a tipl train results.json holds one env's entry at its top level
    bench.write_text(json.dumps(json.loads(bench.read_text())["envs"][1]))
    single = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    assert {r["variant"]: r["seeds"] for r in json.loads(out.read_text())["rows"]} == \
        {"tipl-new": 2, "tipl-default": 3}
    same = {**json.loads(bench.read_text()), "machine": "CPU-A"}
    bench.write_text(json.dumps(same))
    for file in runs.iterdir():
        file.write_text(json.dumps({**json.loads(file.read_text()), "machine": "CPU-A"}))
    quiet = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr
    bench.write_text(json.dumps({**same, "machine": "CPU-B"}))
    other = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert "made on CPU-B, these runs on CPU-A" in other.stderr
    write_bench({**config, "every": 500})
    mismatch = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert mismatch.returncode != 0 and "every = 500" in mismatch.stderr


def test_entropy_probe_records_each_variants_entropy_on_the_same_observations(
        tmp_path: Path) -> None:
    out = tmp_path / "entropy"
    script = [sys.executable, str(ROOT / "benchmarks" / "entropy_probe.py"), "--env",
              "CartPole-v1", "--seed", "1", "--steps", "768", "--out", str(out)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "entropy.json").read_text())
    assert doc["env"] == "CartPole-v1" and doc["observations"] == 500
    variants = doc["variants"]
    assert list(variants)[:2] == ["base", "tipl, no entropy check"] and len(variants) == 3
    first = [v["rows"][0]["entropy"] for v in variants.values()]
    # 3 rollouts each; before any jump (a window takes 8) every variant trains alike
    assert all(len(v["rows"]) == 3 and v["jumps"] == [] for v in variants.values())
    assert first == pytest.approx([first[0]] * 3, abs=1e-4) and 0 < first[0] <= math.log(2)
    assert (out / "entropy.png").stat().st_size > 0


def test_collect_supervised_writes_valid_paths_whose_return_is_the_negated_loss(tmp_path: Path
                                                                               ) -> None:
    from tipl_opt.paths.reader import LearningPath

    script = [sys.executable, str(ROOT / "benchmarks" / "collect_supervised.py"), "--out",
              str(tmp_path), "--runs", "2", "--steps", "100", "--every", "25"]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    files = sorted(tmp_path.rglob("*.safetensors"))
    assert sorted(f.name.rsplit("-", 1)[1] for f in files) == ["s1000.safetensors",
                                                               "s1001.safetensors"]
    for f in files:
        lp = LearningPath(f)
        assert lp.library == "torch" and lp.algorithm == "adam"
        assert list(lp.env_steps) == [0, 25, 50, 75, 100]
        returns = list(lp.return_mean)
        assert all(r < 0 for r in returns) and returns[-1] > returns[0]  # the loss fell
        assert {s.role for s in lp.specs} == {"actor"}
    again = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert again.stdout.count("exists, skipped") == 2


def _load_script(name: str) -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_averaged_weights_builds_each_candidate_from_the_window(tmp_path: Path) -> None:
    from tipl_opt.paths import LearningPath
    from tipl_opt.predictors import load_predictor
    from tipl_opt.predictors.average import output_mask

    script: Any = _load_script("averaged_weights")
    file = write_synthetic_path(tmp_path / "synthetic-ppo-Toy-v0-s0.safetensors",
                                snapshots=30, seed=0)
    run = LearningPath(file)
    now, mean, mean_out, line, jump, average, real = script.window_vectors(
        str(file), 20, load_predictor("default"))
    history = run.window(5, 16).double()
    out = output_mask(run.specs, ("actor",))
    assert 0 < int(out.sum()) < out.numel()
    torch.testing.assert_close(now, run.window(20, 1)[0])
    torch.testing.assert_close(mean.double(), history.mean(dim=0), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(mean_out[out], mean[out])
    torch.testing.assert_close(mean_out[~out], now[~out])
    torch.testing.assert_close(real, run.window(28, 1)[0])
    torch.testing.assert_close((average - jump)[out], (mean - now)[out], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(average[~out], jump[~out], rtol=1e-5, atol=1e-5)
    assert line.shape == now.shape and bool(torch.isfinite(line).all())


def test_averaged_weights_summarises_per_bin_with_intervals() -> None:
    script: Any = _load_script("averaged_weights")
    n = len(script.CANDIDATES)
    rows = [{"run": f"r{i % 3}", "t": i, "env_steps": 1000 * i,
             # candidate j is j higher than the newest weights early, j lower late
             "returns": [0.0] + [float(j if i < 5 else -j) for j in range(1, n + 1)]}
            for i in range(10)]
    table = script.summarise(rows, [5000])
    assert len(table) == 2 * n
    early = [r for r in table if r["from"] == 0]
    late = [r for r in table if r["from"] == 5000]
    assert [r["diff"] for r in early] == pytest.approx(list(range(1, n + 1)))
    assert [r["diff"] for r in late] == pytest.approx([-j for j in range(1, n + 1)])
    assert all(r["interval"] == pytest.approx([r["diff"]] * 2) for r in table)  # no spread
    assert [r["higher"] for r in early] == [1.0] * n and late[0]["to"] is None
    assert early[0]["windows"] == 5 and early[0]["candidate"] == "mean16"


@pytest.mark.slow
def test_averaged_weights_evaluates_a_real_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    train = [sys.executable, "-m", "tipl_opt", "train", "--env", "CartPole-v1", "--steps", "8192",
             "--every", "256", "--eval-episodes", "1", "--hp", "n_steps=256", "--seeds", "1",
             "--predictor", "none", "--save-paths", "--out", str(runs)]
    done = subprocess.run(train, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "averaged.json"
    script = [sys.executable, str(ROOT / "benchmarks" / "averaged_weights.py"), "--paths",
              str(runs / "paths"), "--every", "8", "--episodes", "1", "--bins", "5000",
              "--out", str(out)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["format"] == "tipl-averaged-weights"
    assert len(report["rows"]) == 2  # window ends 15 and 23 of 33 snapshots
    assert all(len(r["returns"]) == 1 + len(report["candidates"]) for r in report["rows"])
    assert all(1 <= x <= 500 for r in report["rows"] for x in r["returns"])  # CartPole returns
    assert "mean16-output" in result.stdout


def test_train_vs_eval_pairs_training_and_evaluation_returns_per_seed(tmp_path: Path) -> None:
    out = tmp_path / "tve"
    script = [sys.executable, str(ROOT / "benchmarks" / "train_vs_eval.py"), "--env",
              "CartPole-v1", "--seeds", "1", "--steps", "768", "--every", "256",
              "--eval-episodes", "1", "--workers", "1", "--variant",
              "fixed:fixed_params=value_net.bias,scale=2", "--out", str(out)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "train_vs_eval.json").read_text())
    assert doc["env"] == "CartPole-v1" and set(doc["runs"]) == {"base", "tipl", "fixed"}
    assert doc["variants"] == {"tipl": {}, "fixed": {"fixed_params": "value_net.bias", "scale": 2}}
    assert set(doc["tables"]) == {"tipl", "fixed"}
    for table in doc["tables"].values():
        assert [row["env_steps"] for row in table] == [256, 512, 768]
        # 3 rollouts, no jump yet (a window takes 8 snapshots): TIPL trains exactly as the base
        for row in table:
            for key in ("diff_train_return", "diff_eval_return", "diff_entropy"):
                assert row[key]["mean"] == 0.0 and row[key]["seeds"] == 1
        assert table[-1]["base_eval_return"] >= 8  # a real CartPole episode was played
    assert (out / "train_vs_eval.png").stat().st_size > 0
