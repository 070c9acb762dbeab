"""Pretraining throughput: windows per second with 0, 1 and 2 loader workers.

    python benchmarks/pretrain_throughput.py --steps 60 --out results/pretrain_throughput.json

Writes synthetic learning paths (``--runs`` runs of ``--snapshots`` snapshots of ``--params``
weights, see ``tests/synthetic.py``'s shape: a converging path with an oscillating minor axis)
or reads ``--paths DIR``, then for each worker count measures

* ``loader``: batches of windows drawn from the memory-mapped files, tokenised and stacked,
  with no model (what the loader alone can feed);
* ``train``: whole pretraining steps (loader + forward + backward + AdamW) on ``--device``.

The first batches (worker start-up) are not timed.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from tipl_opt import atomic
from tipl_opt.paths import PathDataset, PathWriter, Snapshot, TaggedParam
from tipl_opt.predictors import TIPLConfig, TIPLPredictor
from tipl_opt.pretrain.loader import WindowBatches, make_loader
from tipl_opt.pretrain.trainer import masked_loss


def synthetic(folder: Path, runs: int, snapshots: int, params: int) -> Path:
    for seed in range(runs):
        g = torch.Generator().manual_seed(seed)
        start, target = torch.randn(params, generator=g), torch.randn(params, generator=g)
        wobble = torch.randn(params, generator=g) * 0.2
        writer = PathWriter(folder / f"toy-s{seed}.safetensors",
                            {"library": "synthetic", "algorithm": "ppo", "env_id": "Toy-v0",
                             "seed": seed})
        half = params // 2
        for t in range(snapshots):
            w = start + (target - start) * (1 - math.exp(-t / 12)) + wobble * math.sin(1.3 * t)
            writer.add(Snapshot([TaggedParam("pi.weight", "actor", w[:half]),
                                 TaggedParam("vf.weight", "critic", w[half:])],
                                t * 100, t * 10, float(t), 0.0))
        writer.finish()
    return folder


def measure(files: list[Path], model: TIPLConfig, workers: int, batch_size: int, steps: int,
            device: torch.device, train: bool) -> float:
    batches = WindowBatches(files, context=model.context, horizons=model.horizons, rank=model.r,
                            per_layer=model.per_layer, batch_size=batch_size, seed=0,
                            start_step=0, generator=torch.Generator().manual_seed(0))
    loader = iter(make_loader(batches, workers, pin_memory=device.type == "cuda"))
    torch.manual_seed(0)
    net = TIPLPredictor(model).net.to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    warmup = max(2, workers * 2)
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        batch = next(loader).to(device)
        if train:
            loss = masked_loss(net(batch.tokens, batch.times, batch.descriptors,
                                   batch.group_mask), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    del loader
    return steps * batch_size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=Path, default=None,
                        help="Folder of learning paths (default: synthetic ones).")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--snapshots", type=int, default=60)
    parser.add_argument("--params", type=int, default=9_000)
    parser.add_argument("--steps", type=int, default=60, help="Timed batches per row.")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=str, default="0,1,2")
    parser.add_argument("--device", type=str, default="cpu")
    parser.add_argument("--out", type=Path, default=Path("results/pretrain_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    tmp = None
    folder = args.paths
    if folder is None:
        tmp = Path(tempfile.mkdtemp(prefix="tipl-windows-"))
        folder = synthetic(tmp, args.runs, args.snapshots, args.params)
    files = [lp.path for lp in PathDataset(folder)]
    model = TIPLConfig()
    rows: list[dict[str, Any]] = []
    try:
        for workers in (int(w) for w in args.workers.split(",")):
            loader = measure(files, model, workers, args.batch_size, args.steps, device, False)
            train = measure(files, model, workers, args.batch_size, args.steps, device, True)
            rows.append({"workers": workers, "loader_windows_per_s": round(loader, 1),
                         "train_windows_per_s": round(train, 1)})
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(files)} runs, batch {args.batch_size}, model {model.d_model}x{model.layers}, "
          f"device {device}, torch threads 1")
    print(f"{'workers':>7} {'loader windows/s':>17} {'train windows/s':>16}")
    for r in rows:
        print(f"{r['workers']:>7} {r['loader_windows_per_s']:17.0f} "
              f"{r['train_windows_per_s']:16.0f}")
    atomic.write_json({"device": str(device), "runs": len(files), "batch_size": args.batch_size,
                       "steps": args.steps, "model": model.model_dump(mode="json"),
                       "rows": rows}, args.out)


if __name__ == "__main__":
    main()
