"""Wall-time cost of snapshotting during collection.

    python benchmarks/snapshot_overhead.py --steps 20000 --repeats 3

For each library (PPO on CartPole-v1, one torch thread, in this process) it trains the same
seeds three ways, interleaved so machine noise hits all alike:

* ``no snapshots``: the adapter's callback runs but no snapshot is due (only the first and
  last weights are taken) and nothing is evaluated;
* ``snapshots``: a snapshot at the default cadence (every 1,000 env steps), no evaluation;
* ``snapshots + eval``: the same plus the default 5 evaluation episodes per snapshot.

It prints a table of median wall times and the overheads relative to ``no snapshots``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from tipl_opt import atomic
from tipl_opt.adapters import TrainSpec
from tipl_opt.paths import PathWriter
from tipl_opt.plugins import get_adapter

VARIANTS = {"no snapshots": (10**9, 0), "snapshots": (1000, 0), "snapshots + eval": (1000, 5)}


def one_run(lib: str, seed: int, steps: int, every: int, episodes: int, tmp: Path) -> float:
    spec = TrainSpec(algo="ppo", env_id="CartPole-v1", seed=seed, total_steps=steps,
                     every=every, eval_episodes=episodes)
    writer = PathWriter(tmp / f"{lib}-{seed}.safetensors", {})
    start = time.perf_counter()
    get_adapter(lib).collect(spec, writer.add, lambda _: None)
    writer.finish()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--libs", default="sb3,tianshou")
    parser.add_argument("--out", type=Path, default=Path("results/snapshot_overhead.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    tmp = args.out.parent / "tmp-overhead"
    tmp.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, list[float]]] = {}
    for lib in args.libs.split(","):
        one_run(lib, 99, 2048, 1000, 0, tmp)  # warm up imports and JIT caches
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for seed in range(args.repeats):
            for name, (every, episodes) in VARIANTS.items():
                times[name].append(one_run(lib, seed, args.steps, every, episodes, tmp))
        results[lib] = times
    rows = []
    for lib, times in results.items():
        base = statistics.median(times["no snapshots"])
        for name, values in times.items():
            med = statistics.median(values)
            rows.append({"library": lib, "variant": name, "median_s": round(med, 3),
                         "min_s": round(min(values), 3), "max_s": round(max(values), 3),
                         "overhead_pct": round(100 * (med - base) / base, 2)})
    print(f"PPO CartPole-v1, {args.steps:,} env steps, {args.repeats} seeds, 1 torch thread")
    print(f"{'library':10} {'variant':18} {'median s':>9} {'range s':>15} {'overhead':>9}")
    for r in rows:
        print(f"{r['library']:10} {r['variant']:18} {r['median_s']:9.2f} "
              f"{r['min_s']:7.2f}-{r['max_s']:<7.2f} {r['overhead_pct']:8.1f}%")
    atomic.write_text(args.out, json.dumps({"steps": args.steps, "repeats": args.repeats,
                                            "rows": rows, "raw": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
