"""How far along the real learning path a predicted jump lands, on held-out runs.

    python benchmarks/jump_progress.py --paths data --predictor default

The error benchmark says how close a prediction gets to the future weights; this one says what
a jump is worth. For every window of the held-out runs (the predictor's own validation runs,
from its config, when they are in ``--paths``; else every run) and every horizon h, with
``true = w(t+h) - w(t)`` and ``move = prediction - w(t)``:

* ``progress`` = <move, true> / |true|^2: the share of the real h-snapshot move that the jump
  covers along its direction (1: all of it; 0: none; negative: backwards). A jump of horizon h
  is worth about ``h x progress`` snapshots of training, before the guard shortens it;
* ``cosine`` between move and true;
* ``length`` = |move| / |true|;
* ``error`` = |move - true|^2 / |true|^2 (1: as far off as not moving at all).

``--runs a,b`` measures on named runs instead (say, runs neither of two predictors saw).

Medians and means over windows, for the predictor and for ``linear`` at the same window and
horizon. Writes ``jump_progress.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from tipl_opt import atomic
from tipl_opt.paths import PathDataset
from tipl_opt.predictors import TIPLPredictor, load_predictor
from tipl_opt.pretrain.metrics import progress_on_runs
from tipl_opt.pretrain.trainer import run_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=Path, default=Path("data"))
    parser.add_argument("--predictor", default="default")
    parser.add_argument("--max-windows", type=int, default=2000)
    parser.add_argument("--runs", default="", help="comma-separated run names to measure on "
                        "(default: the predictor's validation runs)")
    parser.add_argument("--all-runs", action="store_true",
                        help="if none of those runs is in --paths, measure on every run")
    parser.add_argument("--out", type=Path, default=Path("results/jump_progress.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    predictor = load_predictor(args.predictor)
    if not isinstance(predictor, TIPLPredictor):
        raise SystemExit(f"{args.predictor} is not a TIPL checkpoint")
    config = predictor.config
    runs = list(PathDataset(args.paths))
    if args.runs:
        wanted, origin = set(args.runs.split(",")), "the runs given with --runs"
    else:
        training = predictor.info.get("training", {})
        # a run recorded by its path (its name was shared) counts by name; a name that is
        # also a training run's is ambiguous and left out
        wanted = ({run_name(i) for i in training.get("val_runs", [])}
                  - {run_name(i) for i in training.get("train_runs", [])})
        origin = "the predictor's validation runs"
    val = [lp for lp in runs if lp.name in wanted]
    if not val:
        if not args.all_runs:
            raise SystemExit(f"none of {origin} is in {args.paths}; pass --all-runs to measure on "
                             "every run (including runs the predictor was trained on)")
        val, origin = runs, "every run (not held out)"
    horizons = config.horizons
    windows, stats = progress_on_runs(predictor, val, args.max_windows)
    print(f"{len(val)} runs ({origin}), windows: {windows}, horizons {list(horizons)}")
    print(f"{'predictor':8} {'measure':16}" + "".join(f"{'h=' + str(h):>9}" for h in horizons))
    for name, st in stats.items():
        for key, row in st.items():
            print(f"{name:8} {key:16}" + "".join(f"{v:9.3f}" for v in row))
        worth = [h * p for h, p in zip(horizons, st["progress_median"], strict=True)]
        print(f"{name:8} {'snapshots worth':16}" + "".join(f"{v:9.2f}" for v in worth))
    doc = {"paths": str(args.paths), "predictor": args.predictor,
           "runs": [lp.name for lp in val], "runs_are": origin, "windows": windows,
           "horizons": list(horizons), "stats": stats}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out, json.dumps(doc, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
