"""Which pretraining objective makes a jump worth most, in weight space, on held-out runs.

    python benchmarks/predictor_objectives.py --train data --heldout data/heldout \
        --out results/objectives --workers 2

Pretrains one TIPL model per variant on ``--train``, all with the same data, split, seed, steps
and shape (global tokens, K = 8, horizons 1, 2, 4, 8), differing only in the loss and in whether
the model is a residual on ``linear`` (``tipl pretrain --loss``, ``--residual``); a variant whose
``OUT/predictors/<name>`` already holds a finished checkpoint is not trained again. Then every
variant, the embedded default and ``linear`` predict from every window of the ``--heldout`` runs
(runs none of them was trained on: ``benchmarks/collect_heldout.sh``), and the script reports,
per held-out env and pooled, the medians over windows of ``progress`` (the share of the real
move covered along its direction; a jump of horizon h is worth about h x progress snapshots of
training), ``cosine``, ``length`` and ``error`` (1: as far off as not moving), see
:func:`tipl_opt.pretrain.metrics.progress_stats`. Writes ``OUT/objectives.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from tipl_opt import atomic
from tipl_opt.errors import TiplError
from tipl_opt.paths import LearningPath, PathDataset
from tipl_opt.predictors import LinearPredictor, Predictor, TIPLConfig, load_predictor
from tipl_opt.predictors.tipl import read_config
from tipl_opt.pretrain import PretrainConfig, WindowSource, pretrain
from tipl_opt.pretrain.metrics import progress_stats

VARIANTS: dict[str, dict[str, Any]] = {
    "mse": {"loss": "mse", "residual": False},
    "l1": {"loss": "l1", "residual": False},
    "direction": {"loss": "direction", "residual": False},
    "residual-mse": {"loss": "mse", "residual": True},
    "residual-l1": {"loss": "l1", "residual": True},
    "residual-direction": {"loss": "direction", "residual": True},
}
HORIZONS = (1, 2, 4, 8)
CONTEXT = 8


def _train(name: str, train: str, out: str, steps: int, seed: int) -> str:
    torch.set_num_threads(1)
    variant = VARIANTS[name]
    config = PretrainConfig(paths=Path(train), out=Path(out), steps=steps, val_fraction=0.25,
                            seed=seed, device="cpu", loss=variant["loss"],
                            model=TIPLConfig(context=CONTEXT, horizons=HORIZONS,
                                             residual=variant["residual"]),
                            recipe=f"benchmarks/predictor_objectives.py variant {name}")
    pretrain(config)
    return name


def _finished(folder: Path) -> bool:
    """Whether ``folder`` holds a checkpoint that pretraining completed (its validation
    report is written last)."""
    try:
        return "validation" in read_config(folder)
    except TiplError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=Path("data"))
    parser.add_argument("--heldout", type=Path, default=Path("data/heldout"))
    parser.add_argument("--out", type=Path, default=Path("results/objectives"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-windows", type=int, default=2000)
    args = parser.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    folders = {name: args.out / "predictors" / name for name in names}
    todo = [name for name in names if not _finished(folders[name])]
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for name in pool.map(_train, todo, [os.fspath(args.train)] * len(todo),
                             [os.fspath(folders[n]) for n in todo], [args.steps] * len(todo),
                             [args.seed] * len(todo)):
            print(f"pretrained {name}")
    torch.set_num_threads(max(1, args.workers))
    predictors: dict[str, Predictor] = {"default": load_predictor("default")}
    predictors.update({name: load_predictor(folders[name]) for name in names})
    predictors["linear"] = LinearPredictor(CONTEXT)
    runs = list(PathDataset(args.heldout))
    if not runs:
        raise SystemExit(f"no learning paths under {args.heldout}")
    groups: dict[str, list[LearningPath]] = defaultdict(list)
    for lp in runs:
        groups[lp.env_id].append(lp)
    groups = {"all": runs, **dict(sorted(groups.items()))}
    results: dict[str, Any] = {}
    for env, group in groups.items():
        source = WindowSource(group, CONTEXT, HORIZONS, CONTEXT - 1, False)
        starts = source.starts()
        stride = max(1, len(starts) // args.max_windows)
        samples = [source.get(r, s) for r, s in starts[::stride]]
        results[env] = {"runs": [lp.name for lp in group], "windows": len(samples),
                        "stats": progress_stats(predictors, samples, HORIZONS)}
    for j, h in enumerate(HORIZONS):
        print(f"\nh = {h}: medians over windows (worth = h x progress, in snapshots)")
        print(f"{'env':22} {'predictor':20} {'progress':>9} {'cosine':>7} {'length':>7} "
              f"{'error':>7} {'worth':>6}")
        for env, res in results.items():
            for name, st in res["stats"].items():
                p = st["progress_median"][j]
                print(f"{env:22} {name:20} {p:9.3f} {st['cosine_median'][j]:7.3f} "
                      f"{st['length_median'][j]:7.3f} {st['error_median'][j]:7.3f} "
                      f"{h * p:6.2f}")
    doc = {"train": os.fspath(args.train), "heldout": os.fspath(args.heldout),
           "steps": args.steps, "seed": args.seed, "horizons": list(HORIZONS),
           "variants": {name: VARIANTS[name] for name in names},
           "predictors": {name: os.fspath(folders[name]) for name in names},
           "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out / "objectives.json", json.dumps(doc, indent=2))
    print(f"\nwrote {args.out / 'objectives.json'}")


if __name__ == "__main__":
    main()
