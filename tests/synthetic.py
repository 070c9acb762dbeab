"""Synthetic learning paths with known structure, for predictor tests."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from tipl_opt.paths import PathWriter, Snapshot, TaggedParam


def curved_path(path: Path, seed: int, snapshots: int = 30, p: int = 120,
                algorithm: str = "ppo") -> Path:
    """Weights that converge exponentially towards a target and oscillate along a minor axis."""
    g = torch.Generator().manual_seed(seed)
    start, target = torch.randn(p, generator=g), torch.randn(p, generator=g)
    wobble = torch.randn(p, generator=g) * 0.2
    tau = 8 + 8 * float(torch.rand(1, generator=g))
    writer = PathWriter(path, {"library": "synthetic", "algorithm": algorithm,
                               "env_id": "Toy-v0", "seed": seed})
    for t in range(snapshots):
        w = start + (target - start) * (1 - math.exp(-t / tau)) + wobble * math.sin(1.3 * t)
        writer.add(Snapshot([TaggedParam("net.0.weight", "actor", w[:80].reshape(8, 10)),
                             TaggedParam("net.0.bias", "actor", w[80:88]),
                             TaggedParam("value.weight", "critic", w[88:]) ],
                            t * 100, t * 10, float(t), 0.0))
    return writer.finish()


def make_dataset(folder: Path, runs: int = 6, snapshots: int = 30) -> Path:
    for seed in range(runs):
        curved_path(folder / f"toy-s{seed}.safetensors", seed, snapshots)
    return folder


class RecordingPredictor:
    """A "no move" predictor that needs 4 snapshots, can use 10 (``max_context``) and records
    the window lengths it is given and how many snapshot times came with each (None: none)."""

    name, context, max_context, horizons = "recording", 4, 10, (1,)

    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.times: list[int | None] = []

    def predict(self, window: torch.Tensor, steps: torch.Tensor | None,
                specs: object, horizon: int) -> torch.Tensor:
        self.lengths.append(window.shape[0])
        self.times.append(None if steps is None else steps.shape[0])
        return window[-1].clone()
