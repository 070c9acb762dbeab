"""Steps to a target loss in plain supervised loops: Adam vs TIPL variants, same seeds.

    python benchmarks/supervised_steps.py --seeds 10 --steps 3000 --out results/supervised.json

For each task and seed, Adam trains ``--steps`` steps; its final training loss is the target.
Every variant starts from the same initialisation and counts the steps until its training loss
first reaches the target (``never`` if it does not within the budget). The ratio to Adam's
steps is the figure of merit (< 1: faster). Variants differ in predictor (the embedded default,
``linear``) and acceptance rule (no guard; a loss guard that forbids any rise; the ``search``
rule with a loss guard that tolerates a 5% rise), which is the question this script answers:
how much do acceptance rules matter when the predictor is fixed?
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tipl_opt import TIPLOptimizer
from tipl_opt.atomic import write_json
from tipl_opt.guard import LossGuard

Task = Callable[[int], tuple[nn.Module, torch.Tensor, torch.Tensor, Callable[..., torch.Tensor]]]


def regression(seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor, Any]:
    """The README example: y = sin(x w) + noise, an 8-64-1 tanh MLP, MSE."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 8, generator=g)
    y = torch.sin(x @ torch.randn(8, 1, generator=g)) + 0.1 * torch.randn(512, 1, generator=g)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 1))
    return net, x, y, nn.functional.mse_loss


def classification(seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor, Any]:
    """Four Gaussian blobs in 16-d, labels by a random linear rule; 16-64-64-4 ReLU MLP."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1024, 16, generator=g)
    y = (x @ torch.randn(16, 4, generator=g)).argmax(dim=1)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 4))
    return net, x, y, nn.functional.cross_entropy


TASKS: dict[str, Task] = {"regression": regression, "classification": classification}

VARIANTS: dict[str, dict[str, Any]] = {
    "adam": {},
    "tipl": {"predictor": "default"},
    "tipl+guard0": {"predictor": "default", "limit": 0.0},
    "tipl+search": {"predictor": "default", "limit": 0.05, "rule": "search"},
    "tipl+keep2": {"predictor": "default", "keep_window": True, "jump_every": 2},
    "linear": {"predictor": "linear"},
    "linear+search": {"predictor": "linear", "limit": 0.05, "rule": "search"},
}
"""Variant -> predictor, guard limit (absent: no guard), acceptance rule, window options."""


def run(task: Task, seed: int, steps: int, variant: dict[str, Any], every: int
        ) -> tuple[list[float], dict[str, int]]:
    net, x, y, loss_fn = task(seed)

    def loss() -> torch.Tensor:
        return loss_fn(net(x), y)

    opt: torch.optim.Optimizer
    if "predictor" in variant:
        config: dict[str, Any] = {"snapshot_every": every, "rule": variant.get("rule",
                                                                                "backtrack")}
        if variant.get("keep_window"):
            config.update(keep_window=True, jump_every=variant["jump_every"])
        guard = LossGuard(loss, variant["limit"]) if "limit" in variant else None
        opt = TIPLOptimizer(net, variant["predictor"], lr=1e-3, guard=guard, config=config)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    curve = []
    for _ in range(steps):
        opt.zero_grad()
        value = loss()
        curve.append(float(value))
        value.backward()
        opt.step()
    with torch.no_grad():
        curve.append(float(loss()))
    return curve, dict(opt.counters) if isinstance(opt, TIPLOptimizer) else {}


def steps_to(curve: list[float], target: float) -> int | None:
    return next((i for i, v in enumerate(curve) if v <= target), None)


def bootstrap_median(values: list[float], reps: int = 2000) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    t = torch.tensor(values)
    idx = torch.randint(len(values), (reps, len(values)), generator=g)
    medians = t[idx].median(dim=1).values
    return float(medians.quantile(0.025)), float(medians.quantile(0.975))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=25, help="optimizer steps per snapshot")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--predictor", default="default",
                        help="predictor of the tipl variants: default, or a checkpoint folder")
    parser.add_argument("--out", type=Path, default=Path("results/supervised.json"))
    args = parser.parse_args()
    for spec in VARIANTS.values():
        if spec.get("predictor") == "default":
            spec["predictor"] = args.predictor
    torch.set_num_threads(1)
    variants = args.variants.split(",")
    records: list[dict[str, Any]] = []
    summary: dict[str, dict[str, Any]] = {}
    for task_name in args.tasks.split(","):
        task = TASKS[task_name]
        ratios: dict[str, list[float]] = {v: [] for v in variants}
        for seed in range(args.seeds):
            base, _ = run(task, seed, args.steps, {}, args.every)
            target = base[-1]
            base_steps = steps_to(base, target) or args.steps
            for name in variants:
                start = time.perf_counter()
                curve, counters = (base, {}) if name == "adam" else run(
                    task, seed, args.steps, VARIANTS[name], args.every)
                reached = steps_to(curve, target)
                ratio = (reached / base_steps) if reached is not None else math.inf
                ratios[name].append(ratio)
                records.append({"task": task_name, "seed": seed, "variant": name,
                                "target": target, "steps": reached, "adam_steps": base_steps,
                                "ratio": ratio, "final_loss": curve[-1], "jumps": counters,
                                "seconds": time.perf_counter() - start})
        summary[task_name] = {}
        print(f"\n{task_name}: steps to Adam's final loss after {args.steps} steps, "
              f"ratio to Adam (median [95% CI], {args.seeds} seeds)")
        for name in variants:
            finite = [r if math.isfinite(r) else 10.0 for r in ratios[name]]
            lo, hi = bootstrap_median(finite)
            med = statistics.median(finite)
            faster = sum(r < 1 for r in ratios[name])
            summary[task_name][name] = {"median_ratio": med, "ci95": [lo, hi],
                                        "faster_seeds": faster, "ratios": ratios[name]}
            print(f"  {name:14s} {med:5.2f} [{lo:4.2f}, {hi:4.2f}]  faster on {faster}/"
                  f"{args.seeds} seeds")
    write_json({"settings": vars(args) | {"out": str(args.out)}, "variants": VARIANTS,
                "summary": summary, "records": records}, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
