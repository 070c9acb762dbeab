"""Learning paths of plain supervised loops, for pretraining beside the RL paths.

    python benchmarks/collect_supervised.py --out data/supervised --runs 32

Each run draws a small task and network from its seed (regression on a random smooth target or
classification by a random rule; 1-2 hidden layers of 32-128 tanh or ReLU units; full batch or
minibatches of 64; Adam at 5e-4, 1e-3 or 2e-3), trains it ``--steps`` Adam steps and records a
snapshot every ``--every`` steps, its "return" the negated training loss. Seeds start at 1000
and the data of every run is drawn from its own seed, so none of these runs is one of the
``supervised_steps.py`` benchmark's tasks (seeds 0-9). Finished runs are skipped on a rerun;
``tipl paths check OUT`` validates the files.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tipl_opt.paths.spec import Snapshot, TaggedParam
from tipl_opt.paths.writer import PathWriter

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def draw(seed: int) -> dict[str, Any]:
    """The task, network and optimiser settings of run ``seed``."""
    r = random.Random(seed)
    kind = r.choice(["regression", "classification"])
    return {
        "kind": kind,
        "inputs": r.choice([4, 8, 12, 16, 24]),
        "outputs": 1 if kind == "regression" else r.choice([3, 4, 6]),
        "samples": r.choice([256, 512, 1024]),
        "hidden_sizes": [r.choice([32, 64, 128])] * r.choice([1, 2]),
        "activation": r.choice(list(ACTIVATIONS)),
        "batch_size": r.choice([None, 64]),
        "lr": r.choice([5e-4, 1e-3, 2e-3]),
    }


def build(seed: int, s: dict[str, Any]) -> tuple[nn.Module, torch.Tensor, torch.Tensor, Any]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(s["samples"], s["inputs"], generator=g)
    teacher = torch.randn(s["inputs"], max(s["outputs"], 2), generator=g)
    if s["kind"] == "regression":
        y = torch.sin(x @ teacher[:, :1]) + 0.1 * torch.randn(s["samples"], 1, generator=g)
        loss_fn: Any = nn.functional.mse_loss
    else:
        y = (x @ teacher).argmax(dim=1)
        loss_fn = nn.functional.cross_entropy
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = s["inputs"]
    for h in s["hidden_sizes"]:
        layers += [nn.Linear(width, h), ACTIVATIONS[s["activation"]]()]
        width = h
    layers.append(nn.Linear(width, s["outputs"]))
    return nn.Sequential(*layers), x, y, loss_fn


def collect(seed: int, steps: int, every: int, out: Path) -> Path | None:
    s = draw(seed)
    name = (f"{s['kind']}-{s['inputs']}x{'x'.join(map(str, s['hidden_sizes']))}"
            f"x{s['outputs']}-{s['activation']}")
    path = out / name / f"torch-adam-{name}-s{seed}.safetensors"
    if path.exists():
        return None
    net, x, y, loss_fn = build(seed, s)
    opt = torch.optim.Adam(net.parameters(), lr=s["lr"])
    batch = torch.Generator().manual_seed(seed + 1)
    meta = {"library": "torch", "algorithm": "adam", "env_id": name, "seed": seed,
            "total_steps": steps, "cadence": {"every": every, "unit": "grad_steps"},
            "network": {"hidden_sizes": s["hidden_sizes"], "activation": s["activation"]},
            "hyperparameters": {"learning_rate": s["lr"], "batch_size": s["batch_size"],
                                "samples": s["samples"], "task": s["kind"]}}
    writer = PathWriter(path, meta)

    def snapshot(step: int) -> None:
        with torch.no_grad():
            full = float(loss_fn(net(x), y))
        if not math.isfinite(full):
            raise RuntimeError(f"run {seed} diverged at step {step}")
        writer.add(Snapshot([TaggedParam(n, "actor", p) for n, p in net.named_parameters()],
                            env_steps=step, grad_steps=step, return_mean=-full, return_std=0.0))

    snapshot(0)
    for step in range(1, steps + 1):
        if s["batch_size"] is None:
            xb, yb = x, y
        else:
            idx = torch.randint(len(x), (s["batch_size"],), generator=batch)
            xb, yb = x[idx], y[idx]
        opt.zero_grad()
        loss_fn(net(xb), yb).backward()
        opt.step()
        if step % every == 0:
            snapshot(step)
    return writer.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/supervised"))
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first run")
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps per run")
    parser.add_argument("--every", type=int, default=25, help="Adam steps per snapshot")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in range(args.seed, args.seed + args.runs):
        written = collect(seed, args.steps, args.every, args.out)
        print(f"run {seed}: {written or 'exists, skipped'}")


if __name__ == "__main__":
    main()
