"""Does a bend fitted to the window point better than the straight line? An offline probe.

    python benchmarks/direction_curvature.py runs/idp-paths-256/paths runs/ip-paths-256/paths

On the base learning paths of each folder (``tipl train --predictor none --save-paths --every
256``: a snapshot at every rollout, the spacing TIPL jumps at online; the first 10 runs), at
every window of every run (or ``--max-windows`` of them, spread evenly over the runs, when
there are more), with the real move
``true = w(t+h) - w(t)`` over ``--horizon`` h snapshots, four per-weight least-squares fits to
the window, each evaluated h snapshots after its last one:

* ``line-8``: a straight line over 8 snapshots (``linear``, the default's own direction);
* ``line-4``: a straight line over the last 4;
* ``bend-8``: a quadratic over 8;
* ``half``: the mean of ``line-8``'s and ``bend-8``'s predictions.

Prints, per folder and fit, the median cosine of the move with ``true``, its error
|move - true|^2 / |true|^2 at full length (1: as far off as not moving), and the error at the
best length along it (what a perfect length could make of that direction).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from tipl_opt.paths import LearningPath
from tipl_opt.paths.reader import path_files

FITS = {"line-8": (1, 8), "line-4": (1, 4), "bend-8": (2, 8)}
"""Fit name -> (polynomial degree, snapshots); ``half`` averages ``line-8`` and ``bend-8``."""


def extrapolate(window: np.ndarray[Any, Any], degree: int, horizon: int) -> np.ndarray[Any, Any]:
    """Per-weight least-squares polynomial of ``degree`` over ``window`` (T x P), evaluated
    ``horizon`` snapshots after its last: the predicted weights, shape (P,)."""
    t = np.arange(len(window), dtype=np.float64)
    coef, *_ = np.linalg.lstsq(np.vander(t, degree + 1), window, rcond=None)
    at = np.vander(np.array([len(window) - 1 + horizon], dtype=np.float64), degree + 1)
    return (at @ coef)[0]


def probe(folder: Path, horizon: int, max_windows: int) -> dict[str, tuple[float, float, float]]:
    """Fit name -> (median cosine, median error, median error at the best length)."""
    runs = [LearningPath(f) for f in path_files(folder)[:10]]
    context = max(n for _, n in FITS.values())
    counts = [max(0, lp.num_snapshots - context - horizon + 1) for lp in runs]
    if sum(counts) == 0:
        raise ValueError(f"{folder}: no run has the {context + horizon} snapshots a window and "
                         f"its {horizon}-snapshot future need")
    share = min(1.0, max_windows / sum(counts))
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for lp, count in zip(runs, counts, strict=True):
        if count == 0:
            continue
        weights = lp.weights.astype(np.float64)
        picks = np.unique(np.linspace(0, count - 1, max(1, round(count * share))).round())
        for s in picks.astype(int):
            window = weights[s:s + context]
            last = window[-1]
            true = weights[s + context - 1 + horizon] - last
            norm = float(np.linalg.norm(true))
            if norm == 0.0:
                continue
            preds = {name: extrapolate(window[-n:], degree, horizon)
                     for name, (degree, n) in FITS.items()}
            preds["half"] = 0.5 * (preds["line-8"] + preds["bend-8"])
            for name, pred in preds.items():
                move = pred - last
                cos = float(move @ true) / (float(np.linalg.norm(move)) * norm + 1e-30)
                err = float(np.sum((move - true) ** 2)) / norm**2
                best = max(0.0, float(move @ true) / (float(move @ move) + 1e-30))
                err_best = float(np.sum((best * move - true) ** 2)) / norm**2
                rows.setdefault(name, []).append((cos, err, err_best))
    medians = {name: np.median(np.array(v), axis=0) for name, v in rows.items()}
    return {name: (float(m[0]), float(m[1]), float(m[2])) for name, m in medians.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--max-windows", type=int, default=5000)
    args = parser.parse_args()
    print(f"{'folder':<32} {'fit':<7} {'cosine':>7} {'error':>7} {'error at best length':>21}")
    for folder in args.folders:
        for name, (cos, err, err_best) in probe(folder, args.horizon, args.max_windows).items():
            print(f"{folder!s:<32} {name:<7} {cos:>7.3f} {err:>7.2f} {err_best:>21.3f}")


if __name__ == "__main__":
    main()
