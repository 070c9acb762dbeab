"""TIPL is not only for RL: a plain torch regression loop with TIPLOptimizer.

    python examples/supervised_torch.py --steps 2000

Trains the same network twice from the same initialisation, with Adam and with TIPLOptimizer
(Adam inside, jumps guarded by the training loss), and prints both losses.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from tipl_opt import TIPLOptimizer
from tipl_opt.guard import LossGuard


def make_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 8, generator=g)
    y = torch.sin(x @ torch.randn(8, 1, generator=g)) + 0.1 * torch.randn(512, 1, generator=g)
    return x, y


def train(steps: int, use_tipl: bool, seed: int = 0) -> float:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 1))
    x, y = make_data(seed)

    def loss_fn() -> torch.Tensor:
        return nn.functional.mse_loss(net(x), y)

    optimizer: torch.optim.Optimizer
    if use_tipl:
        optimizer = TIPLOptimizer(net, "linear", lr=1e-3, guard=LossGuard(loss_fn, limit=0.0),
                                  config={"snapshot_every": 25, "horizon": 4})
    else:
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
    if isinstance(optimizer, TIPLOptimizer):
        print(f"TIPL jumps: {optimizer.counters}")
    with torch.no_grad():
        return float(loss_fn())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    adam = train(args.steps, use_tipl=False)
    tipl = train(args.steps, use_tipl=True)
    print(f"final loss after {args.steps} steps: Adam {adam:.4f}, TIPL {tipl:.4f}")


if __name__ == "__main__":
    main()
