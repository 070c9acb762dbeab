"""Prediction error on held-out runs: persistence vs ``linear`` vs ``tipl`` (global, per-layer).

    python benchmarks/predictor_error.py --paths data/ppo --steps 2000 --out results/predictor

Pretrains both TIPL variants on the same training runs (the pretrain split holds out whole runs,
the same ones for both, by seed), then measures on every window of the held-out runs the error of
each predictor per horizon, relative to "no move". Writes ``predictor_error.json`` and a table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from tipl_opt import atomic
from tipl_opt.paths import PathDataset
from tipl_opt.predictors import LinearPredictor, TIPLConfig, TIPLPredictor
from tipl_opt.pretrain import PretrainConfig, WindowSource, horizon_errors, pretrain, split_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=Path, default=Path("data/ppo"))
    parser.add_argument("--out", type=Path, default=Path("results/predictor"))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--context", type=int, default=8)
    parser.add_argument("--horizons", default="1,2,4,8")
    parser.add_argument("--val-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-windows", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    horizons = tuple(int(h) for h in args.horizons.split(","))
    models: dict[str, TIPLPredictor] = {}
    timings = {}
    for name, per_layer in (("tipl-global", False), ("tipl-layer", True)):
        cfg = PretrainConfig(paths=args.paths, out=args.out / name, steps=args.steps,
                             val_fraction=args.val_fraction, seed=args.seed, resume=True,
                             model=TIPLConfig(context=args.context, horizons=horizons,
                                              per_layer=per_layer))
        start = time.perf_counter()
        models[name] = pretrain(cfg).predictor
        timings[name] = round(time.perf_counter() - start, 1)
    _, val = split_runs(list(PathDataset(args.paths)), args.val_fraction, args.seed)
    source = WindowSource(val, args.context, horizons, args.context - 1, False)
    starts = source.starts()
    stride = max(1, len(starts) // args.max_windows)
    samples = [source.get(r, s) for r, s in starts[::stride]]
    predictors = {"linear": LinearPredictor(args.context), **models}
    errors = horizon_errors(predictors, samples, horizons)
    stay = errors["stay"]
    table = {name: [e / s for e, s in zip(errs, stay, strict=True)]
             for name, errs in errors.items()}
    print(f"held-out runs: {len(val)}, windows: {len(samples)}; error relative to no move")
    print(f"{'predictor':14}" + "".join(f"{'h=' + str(h):>9}" for h in horizons))
    for name, row in table.items():
        print(f"{name:14}" + "".join(f"{v:9.3f}" for v in row))
    for name in models:
        ratio = [t / lin for t, lin in zip(errors[name], errors["linear"], strict=True)]
        print(f"{name + ' / linear':22}" + "".join(f"{v:9.3f}" for v in ratio))
    by_source: dict[str, int] = {}
    for lp in val:
        key = f"{lp.library}/{lp.env_id}"
        by_source[key] = by_source.get(key, 0) + 1
    doc = {"paths": str(args.paths), "held_out_runs": [lp.name for lp in val],
           "held_out_by_source": by_source, "windows": len(samples),
           "horizons": list(horizons), "relative_to_stay": table,
           "vs_linear": {n: [t / lin for t, lin in zip(errors[n], errors["linear"], strict=True)]
                         for n in models},
           "pretrain_steps": args.steps, "pretrain_wall_s": timings}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_text((args.out / "predictor_error.json"), json.dumps(doc, indent=2))
    print(f"wrote {args.out / 'predictor_error.json'}")


if __name__ == "__main__":
    main()
