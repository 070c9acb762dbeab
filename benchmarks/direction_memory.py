"""How much of the coming move a longer memory of the path foretells; what ``trend`` makes of it.

    python benchmarks/direction_memory.py \\
        --task idp=runs/idp-paths-256/paths --task reacher=runs/reacher-paths-256/paths \\
        --out results/direction

On each task's base learning paths (``tipl train --predictor none --save-paths --every 256``: a
snapshot at every rollout, the spacing TIPL jumps at online), at every snapshot t that has at
least the inner predictor's context behind it and ``--horizon`` h snapshots ahead, with the real
move ``true = w(t+h) - w(t)``:

* the cosine between ``true`` and the least-squares slope over the last L snapshots, for each L
  of ``--memory`` (as many as there are when fewer): how well a longer memory of the path points
  to where it goes next;
* for the inner predictor (``--predictor``, default: the embedded default), ``linear`` (over
  the inner predictor's context), ``trend`` (the inner predictor's move plus the part of the
  calibrated trend over up to ``--history`` snapshots that it lacks,
  :class:`~tipl_opt.predictors.TrendPredictor`) and ``whole`` (plus the whole trend,
  ``orthogonal=False``):
  ``progress`` <move, true> / |true|^2, ``cosine`` and ``error`` |move - true|^2 / |true|^2
  (1: as far off as not moving), as :mod:`tipl_opt.pretrain.metrics` defines them.

Medians over every such snapshot of every run, for all of them and split into ``early`` (fewer
than ``--history`` snapshots behind: the first jumps of a run) and ``late``. Prints a table;
writes ``direction.json``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import torch

from tipl_opt import atomic
from tipl_opt.paths import PathDataset
from tipl_opt.predictors import LinearPredictor, Predictor, TrendPredictor, load_predictor
from tipl_opt.predictors.trend import slope
from tipl_opt.pretrain.metrics import move_measures

PERIODS = ("all", "early", "late")
MEASURES = ("progress", "cosine", "error")


def slope_cosine(window: torch.Tensor, true: torch.Tensor) -> float:
    """Cosine between the least-squares slope of ``window`` [L, P] (float64) and ``true``."""
    direction = slope(window, torch.arange(window.shape[0], dtype=window.dtype))
    denom = float(direction.norm()) * float(true.norm())
    return float(direction @ true) / denom if denom > 0 else 0.0


def measure(paths: Path, inner: Predictor, history: int, horizon: int,
            memory: list[int]) -> dict[str, Any]:
    runs = list(PathDataset(paths))
    if not runs:
        raise SystemExit(f"{paths}: no learning paths")
    predictors: dict[str, Predictor] = {
        "inner": inner, "linear": LinearPredictor(max(inner.context, 2)),
        "trend": TrendPredictor(inner, history=history),
        "whole": TrendPredictor(inner, history=history, orthogonal=False)}
    rows: dict[str, dict[str, list[float]]] = {}

    def add(key: str, value: float, period: str) -> None:
        for p in ("all", period):
            rows.setdefault(f"{key}:{p}", {}).setdefault("v", []).append(value)

    for lp in runs:
        weights = torch.from_numpy(lp.weights[:].astype("float32"))
        for t in range(inner.context - 1, weights.shape[0] - horizon):
            period = "early" if t + 1 < history else "late"
            window = weights[max(0, t + 1 - history): t + 1]
            last = window[-1].double()
            true = weights[t + horizon].double() - last
            if not float(true.norm()):
                continue
            for length in memory:
                add(f"slope{length}", slope_cosine(window[-length:].double(), true), period)
            for name, predictor in predictors.items():
                w = window if isinstance(predictor, TrendPredictor) else window[
                    -predictor.context:]
                move = predictor.predict(w, None, lp.specs, horizon).double() - last
                measures = move_measures(move, true) or {}
                for key in MEASURES:
                    add(f"{name}.{key}", measures[key], period)
    medians = {key: statistics.median(v["v"]) for key, v in rows.items()}
    counts = {p: len(rows.get(f"inner.error:{p}", {}).get("v", [])) for p in PERIODS}
    return {"runs": len(runs), "windows": counts, "medians": medians}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", action="append", required=True,
                        help="NAME=PATHS: a folder of base learning paths (repeatable)")
    parser.add_argument("--predictor", default="default", help="the inner predictor")
    parser.add_argument("--history", type=int, default=32,
                        help="snapshots trend's memory holds (default 32)")
    parser.add_argument("--horizon", type=int, default=8, help="snapshots ahead (default 8)")
    parser.add_argument("--memory", type=int, nargs="+", default=[8, 16, 32],
                        help="slope lengths whose cosine is measured (default 8 16 32)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    inner = load_predictor(args.predictor)
    doc: dict[str, Any] = {"predictor": args.predictor, "history": args.history,
                           "horizon": args.horizon, "memory": args.memory, "tasks": {}}
    for spec in args.task:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise SystemExit(f"--task {spec!r}: expected NAME=PATHS")
        doc["tasks"][name] = measure(Path(folder), inner, args.history, args.horizon,
                                     args.memory)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(doc, args.out / "direction.json")
    slopes = [f"slope{n}" for n in args.memory]
    print(f"median over windows, horizon {args.horizon} snapshots; i = {args.predictor}, trend "
          f"= i + what it lacks of the calibrated trend over up to {args.history}, whole = i + "
          "all of it")
    print(f"{'task':10s} {'period':6s} {'windows':>7s}  "
          + "  ".join(f"{s:>7s}" for s in slopes)
          + "  " + "  ".join(f"{m + ' i/lin/trend/whole':>28s}" for m in MEASURES))
    for name, task in doc["tasks"].items():
        med = task["medians"]
        for period in PERIODS:
            if not task["windows"][period]:
                continue
            cells = [f"{med[f'{s}:{period}']:7.3f}" for s in slopes]
            cells += ["/".join(f"{med[f'{p}.{m}:{period}']:.3f}"
                               for p in ("inner", "linear", "trend", "whole")).rjust(28)
                      for m in MEASURES]
            print(f"{name:10s} {period:6s} {task['windows'][period]:7d}  " + "  ".join(cells))
    print(f"wrote {args.out / 'direction.json'}")


if __name__ == "__main__":
    main()
