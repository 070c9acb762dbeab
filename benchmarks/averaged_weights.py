"""What an average of the newest snapshots is worth in return, against the newest weights,
a jump and 8 more snapshots of training.

    python benchmarks/averaged_weights.py --paths runs/pusher-paths/paths \\
        --bins 10000,25000,40000 --episodes 10 --workers 2 --out results/averaged/pusher.json

For windows ending every ``--every`` snapshots of each saved base path (``tipl train
--predictor none --save-paths --every 256``), evaluates through the run's adapter, on the same
episode seeds: the newest weights; the mean of the newest 16 snapshots (every parameter, then
only the actor's output layer, the hidden layers as they are); the least-squares line through
the newest 16 read at the newest snapshot (noise removed, trend kept); the default predictor's
jump 8 intervals ahead, alone and started from the actor's output-layer mean (what
``--predictor average`` jumps to, unguarded); and the real weights 8 snapshots later.
Prints, per bin of env steps, each candidate's mean return difference from the newest weights
with a 95% interval (bootstrap over runs, then windows) and the share of windows where it is
higher; writes every evaluation and the table to ``--out``.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tipl_opt import atomic

HISTORY, AHEAD = 16, 8
CANDIDATES = ("mean16", "mean16-output", "line16", "default@8", "average@8", "real+8")


def line_at_end(w: torch.Tensor) -> torch.Tensor:
    """The least-squares line through the rows of ``w`` [n, P], read at the last row."""
    from tipl_opt.predictors.trend import slope

    w = w.double()
    t = torch.arange(w.shape[0], dtype=torch.float64)
    return w.mean(dim=0) + slope(w, t) * float(t[-1] - t.mean())


def window_vectors(path: str, t: int, predictor: Any) -> list[torch.Tensor]:
    """The newest weights at snapshot ``t`` of ``path`` and each of :data:`CANDIDATES`."""
    from tipl_opt.jump_value.plan import predict_ahead
    from tipl_opt.paths import LearningPath
    from tipl_opt.predictors import AveragePredictor
    from tipl_opt.predictors.average import output_mask

    run = LearningPath(path)
    now = run.window(t, 1)[0]
    history = run.window(t - HISTORY + 1, HISTORY).double()
    mean = history.mean(dim=0)
    out = output_mask(run.specs, ("actor",))
    averaged = AveragePredictor(predictor, history=HISTORY)  # what --predictor average does
    vectors = [now.double(), mean, torch.where(out, mean, now.double()),
               line_at_end(history), predict_ahead(predictor, run, t, [AHEAD]).double(),
               predict_ahead(averaged, run, t, [AHEAD]).double(),
               run.window(t + AHEAD, 1)[0].double()]
    return [v.to(now.dtype) for v in vectors]


_PREDICTOR: Any = None


def evaluate(job: tuple[str, int, int]) -> dict[str, Any]:
    """Returns of the newest weights and every candidate of one window (in a worker)."""
    global _PREDICTOR
    torch.set_num_threads(1)
    from tipl_opt.jump_value.measure import evaluate_window
    from tipl_opt.jump_value.plan import WindowTask
    from tipl_opt.paths import LearningPath
    from tipl_opt.predictors import load_predictor

    path, t, episodes = job
    if _PREDICTOR is None:
        _PREDICTOR = load_predictor("default")
    vectors = window_vectors(path, t, _PREDICTOR)
    task = WindowTask(path, t, [v.numpy().copy() for v in vectors], episodes)
    returns = evaluate_window(task, lambda event: None)
    run = LearningPath(path)
    return {"run": run.name, "t": t, "env_steps": int(run.env_steps[t]),
            "returns": [r[0] for r in returns]}


def summarise(rows: Sequence[dict[str, Any]], bins: Sequence[int], seed: int = 0
              ) -> list[dict[str, Any]]:
    """Per bin of env steps and candidate: mean return difference from the newest weights,
    its 95% interval (runs resampled, then their windows) and the share of windows higher."""
    rng = np.random.default_rng(seed)
    returns = np.array([r["returns"] for r in rows], dtype=float)
    steps = np.array([r["env_steps"] for r in rows])
    runs = np.array([r["run"] for r in rows])
    edges = [0, *bins, np.iinfo(np.int64).max]
    table = []
    for lo, hi in itertools.pairwise(edges):
        inside = (steps >= lo) & (steps < hi)
        if not inside.any():
            continue
        names = np.unique(runs[inside])
        for j, name in enumerate(CANDIDATES, start=1):
            diff = returns[inside, j] - returns[inside, 0]
            per_run = [diff[runs[inside] == n] for n in names]
            boots = [np.concatenate([rng.choice(per_run[i], len(per_run[i]))
                                     for i in rng.integers(len(names), size=len(names))]
                                    ).mean() for _ in range(2000)]
            table.append({"from": lo, "to": None if hi == edges[-1] else hi,
                          "windows": int(inside.sum()), "candidate": name,
                          "diff": float(diff.mean()),
                          "interval": [float(np.percentile(boots, 2.5)),
                                       float(np.percentile(boots, 97.5))],
                          "higher": float((diff > 0).mean())})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=Path, required=True)
    parser.add_argument("--every", type=int, default=4, help="snapshots between window ends")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--bins", default="10000,25000,40000",
                        help="env steps where a new bin starts")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from tipl_opt.paths import LearningPath

    jobs = []
    for file in sorted(glob.glob(str(args.paths / "*.safetensors"))):
        n = LearningPath(file).num_snapshots
        jobs += [(file, t, args.episodes) for t in range(HISTORY - 1, n - AHEAD, args.every)]
    if not jobs:
        raise SystemExit(f"no window of {HISTORY} snapshots with {AHEAD} after it in "
                         f"{args.paths}")
    print(f"{len(jobs)} windows", flush=True)
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = list(pool.map(evaluate, jobs))
    else:
        rows = [evaluate(job) for job in jobs]
    bins = [int(b) for b in args.bins.split(",") if b]
    table = summarise(rows, bins)
    for row in table:
        to = "end" if row["to"] is None else row["to"]
        lo, hi = row["interval"]
        print(f"{row['from']:>7}-{to:<7} {row['windows']:>4} windows  {row['candidate']:<14} "
              f"{row['diff']:+8.2f} [{lo:+.2f}, {hi:+.2f}]  higher on {row['higher']:.0%}")
    atomic.write_text(args.out, json.dumps({
        "format": "tipl-averaged-weights", "paths": str(args.paths), "history": HISTORY,
        "ahead": AHEAD, "episodes": args.episodes, "candidates": list(CANDIDATES),
        "rows": rows, "table": table}, indent=1))


if __name__ == "__main__":
    main()
