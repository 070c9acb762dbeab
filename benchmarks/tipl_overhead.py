"""Overhead of the TIPL machinery during SB3 PPO training, and its memory.

    python benchmarks/tipl_overhead.py --steps 30000 --repeats 2

Trains SB3 PPO (MLP policy, CartPole-v1, rollouts of 512 steps) with ``tipl_sb3.attach`` and the
default predictor, and times, inside the same runs, everything TIPL adds: snapshots, predictions
and guard checks (``TIPLOptimizer.snapshot`` and ``TIPLOptimizer.jump``, which includes the guard
and the prediction). Reports that time as a share of the training wall time (target <= 3%), and
the memory TIPL holds: the K x P history next to the base optimizer's state.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO

import tipl_sb3
from tipl_opt import atomic
from tipl_opt.optimizer import TIPLOptimizer

_spent = {"snapshot": 0.0, "jump": 0.0}


def _timed(name: str, method: Any) -> Any:
    def wrapper(self: TIPLOptimizer, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            _spent[name] += time.perf_counter() - start
    return wrapper


def one_run(steps: int, seed: int) -> dict[str, float]:
    _spent.update(snapshot=0.0, jump=0.0)
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=512, batch_size=64, seed=seed,
                device="cpu")
    callback = tipl_sb3.attach(model, "default")
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=callback)
    wall = time.perf_counter() - start
    opt = model.policy.optimizer
    assert isinstance(opt, TIPLOptimizer)
    base_bytes = sum(t.numel() * t.element_size() for s in opt.base.state.values()
                     for t in s.values() if isinstance(t, torch.Tensor))
    history_bytes = opt.history.buffer.numel() * opt.history.buffer.element_size()
    tipl = _spent["snapshot"] + _spent["jump"]
    return {"wall_s": wall, "tipl_s": tipl, "snapshot_s": _spent["snapshot"],
            "jump_s": _spent["jump"], "share_pct": 100 * tipl / wall,
            "jumps": opt.counters["jumps_tried"], "P": opt.history.size,
            "K": opt.history.capacity, "history_bytes": history_bytes,
            "base_state_bytes": base_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/tipl_overhead.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    TIPLOptimizer.snapshot = _timed("snapshot", TIPLOptimizer.snapshot)  # type: ignore[method-assign]
    TIPLOptimizer.jump = _timed("jump", TIPLOptimizer.jump)  # type: ignore[method-assign]
    rows = [one_run(args.steps, seed) for seed in range(args.repeats)]
    print(f"SB3 PPO CartPole-v1, {args.steps:,} steps, default predictor, 1 torch thread")
    print(f"{'seed':>4} {'wall s':>7} {'TIPL s':>7} {'share':>7} {'jumps':>6} "
          f"{'history KB':>11} {'Adam state KB':>14}")
    for i, r in enumerate(rows):
        print(f"{i:>4} {r['wall_s']:7.1f} {r['tipl_s']:7.3f} {r['share_pct']:6.2f}% "
              f"{r['jumps']:>6} {r['history_bytes'] / 1024:11.1f} "
              f"{r['base_state_bytes'] / 1024:14.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out, json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
