"""Runs per minute through the local process pool and through 1 and 2 local Ray workers.

    python benchmarks/executor_throughput.py --runs 4 --steps 2048 --out results/executors.json

Every row collects the same small runs (SB3 PPO on CartPole-v1, one evaluation episode per
snapshot) into a fresh folder: ``process`` with ``--workers 2``, then Ray started here with 1
and then 2 CPUs (one trial per CPU). The Ray start-up (``ray.init``) is timed apart from the
runs, since a cluster pays it once; ``runs/min`` counts the runs only. Needs the ``ray`` extra.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from tipl_opt import atomic
from tipl_opt.collect import CollectConfig, Executor, ProcessExecutor, collect


def timed(executor: Executor, runs: int, steps: int, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    cfg = CollectConfig(lib="sb3", algo="ppo", env="CartPole-v1", runs=runs, steps=steps,
                        every=512, out=out, eval_episodes=1, hidden_sizes=(64, 64),
                        hyperparams={"n_steps": 256})
    start = time.perf_counter()
    summary = collect(cfg, executor=executor)
    elapsed = time.perf_counter() - start
    if not summary.ok:
        raise SystemExit(f"collection failed: {summary.failures}")
    return elapsed


def row(name: str, workers: int, elapsed: float, runs: int, steps: int,
        startup: float | None = None) -> dict[str, Any]:
    return {"executor": name, "workers": workers, "wall_s": round(elapsed, 2),
            "startup_s": None if startup is None else round(startup, 2),
            "runs_per_min": round(60 * runs / elapsed, 2),
            "env_steps_per_s": round(runs * steps / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=Path("results/executors.json"))
    args = parser.parse_args()
    import ray

    from tipl_opt.collect.ray_executor import RayExecutor

    tmp = args.out.parent / "tmp-executors"
    rows = [row("process", 2, timed(ProcessExecutor(2), args.runs, args.steps, tmp / "p2"),
                args.runs, args.steps)]
    for workers in (1, 2):
        start = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        startup = time.perf_counter() - start
        elapsed = timed(RayExecutor(workers), args.runs, args.steps, tmp / f"r{workers}")
        ray.shutdown()
        rows.append(row("ray", workers, elapsed, args.runs, args.steps, startup))
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"SB3 PPO CartPole-v1: {args.runs} runs x {args.steps:,} env steps")
    print(f"{'executor':>8} {'workers':>7} {'start s':>8} {'wall s':>8} {'runs/min':>9} "
          f"{'env steps/s':>12}")
    for r in rows:
        start = "-" if r["startup_s"] is None else f"{r['startup_s']:.1f}"
        print(f"{r['executor']:>8} {r['workers']:>7} {start:>8} {r['wall_s']:8.1f} "
              f"{r['runs_per_min']:9.2f} {r['env_steps_per_s']:12.0f}")
    atomic.write_json({"runs": args.runs, "steps": args.steps, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
