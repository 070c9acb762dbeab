"""Collection throughput with 1 and 2 worker processes.

    python benchmarks/collect_throughput.py --runs 4 --steps 10000 --out results/throughput.json

Runs the same collection (SB3 PPO on CartPole-v1, ``--runs`` runs, one evaluation episode per
snapshot) into a fresh folder with ``--workers 1`` and then ``--workers 2`` and reports runs per
minute, training env steps per second and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from tipl_opt import atomic
from tipl_opt.collect import CollectConfig, collect


def timed(workers: int, runs: int, steps: int, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    cfg = CollectConfig(lib="sb3", algo="ppo", env="CartPole-v1", runs=runs, steps=steps,
                        every=1000, workers=workers, out=out, eval_episodes=1)
    start = time.perf_counter()
    summary = collect(cfg)
    elapsed = time.perf_counter() - start
    if not summary.ok:
        raise SystemExit(f"collection failed: {summary.failures}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("results/throughput.json"))
    args = parser.parse_args()
    rows = []
    for workers in (1, 2):
        elapsed = timed(workers, args.runs, args.steps, args.out.parent / f"tmp-w{workers}")
        rows.append({"workers": workers, "wall_s": round(elapsed, 2),
                     "runs_per_min": round(60 * args.runs / elapsed, 2),
                     "env_steps_per_s": round(args.runs * args.steps / elapsed, 1)})
    speedup = rows[0]["wall_s"] / rows[1]["wall_s"]
    print(f"SB3 PPO CartPole-v1: {args.runs} runs x {args.steps:,} env steps")
    print(f"{'workers':>7} {'wall s':>8} {'runs/min':>9} {'env steps/s':>12}")
    for r in rows:
        print(f"{r['workers']:>7} {r['wall_s']:8.1f} {r['runs_per_min']:9.2f} "
              f"{r['env_steps_per_s']:12.0f}")
    print(f"speed-up with 2 workers: {speedup:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out, json.dumps({"rows": rows, "speedup": speedup}, indent=2))


if __name__ == "__main__":
    main()
