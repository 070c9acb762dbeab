"""Seed-by-seed comparison of the runs a ``tipl train --compare`` (or ``tipl bench``) kept.

    python benchmarks/paired_runs.py [--threshold 950 | --threshold idp=500 ...] runs/ip
        [runs/acrobot ...] [--suite]
        [--against results/bench-speedup.json] [--plot plots/]

A TIPL run equals the base run of its seed until its first jump, so the honest comparison is
paired: for every seed that has both, the ratio of env steps until the evaluation return first
reaches the threshold (``--threshold``: one number for every folder, or ``NAME=VALUE`` for the
folder named NAME, repeatable; else each folder's env's solved level from
:func:`tipl_opt.thresholds.threshold_for`; a run that never does counts as 1.1 x its budget),
the difference of the mean evaluation return over training (AUC, here the plain mean over the
evaluations; the bench's trapezoid AUC weighs the first and last half as much), whether the
run ends below the threshold, and (run files that record ``jump_steps``) how many accepted
jumps the run made before its base run reached the threshold: a task whose runs make none or
one cannot show what a jump is worth.
Per variant: the median ratio with a 95% bootstrap interval over seeds, how many seeds were
earlier / later with a two-sided sign test, the mean AUC difference with a normal 95%
interval, and the runs ending below the threshold against the base's. ``--suite``: over every
folder together (one env each), the IQM with its 95% stratified bootstrap interval (rliable)
of env steps to threshold normalised by the folder's median base steps (a run that never
reaches it counts as its budget), per variant present in every folder, and the probability
that each TIPL variant needs fewer of them than each other variant, as ``tipl bench`` reports
them. Reads every ``RUNS/runs/*-base.json`` and ``*-<variant>.json`` (format
``tipl-run-result``); writes ``--out`` (JSON) when given.
``--against BENCH.json`` (a ``tipl bench`` result or a ``tipl train`` ``results.json``,
repeatable) adds the stored curves of its env with the folder's env id and library to the
folder's runs
(variant ``tipl:default`` as ``tipl-default``; a run file of the same variant and seed wins), so
that a new variant trained alone with ``tipl train`` is paired with the base runs a benchmark
already made, on the same seeds and settings: the env's steps, snapshot interval,
hyperparameters and network must match the runs', else the script stops naming the
difference. A run is deterministic given its seed on one machine and torch build, so rerun one
base or TIPL seed first and check that its curve equals the stored one.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tipl_opt.curves import steps_to_threshold

Curve = list[list[float]]


def _read(curve: Curve, threshold: float) -> tuple[float, float, float, float]:
    """(env steps to threshold or inf, mean evaluation return, last evaluation return, last env
    step) of one run's ``curve`` of (env step, mean return, std)."""
    points = [(int(step), float(mean), float(std)) for step, mean, std in curve]
    return (steps_to_threshold(points, threshold), statistics.fmean(c[1] for c in curve),
            float(curve[-1][1]), float(curve[-1][0]))


def _sign_test(wins: int, losses: int) -> float:
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def _name(run: str) -> tuple[str, int] | None:
    """(variant, seed) of a run named ``<lib>-<algo>-<env>-s<seed>-<variant>``."""
    found = re.match(r"^(.+?)-s(\d+)-(.+)$", run)  # the first -s<digits>-: "tipl-search" too
    return (found.group(3), int(found.group(2))) if found else None


def _files(folder: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """(variant, seed) -> run document of ``folder/runs``."""
    runs = {}
    for file in sorted((folder / "runs").glob("*.json")):
        key = _name(file.stem)
        if key is not None:
            runs[key] = json.loads(file.read_text())
    return runs


_MATCH = (("algo", "algo"), ("total_steps", "steps"), ("every", "every"),
          ("hyperparams", "hyperparams"), ("hidden_sizes", "hidden_sizes"))


def _stored(bench: Path, docs: dict[tuple[str, int], dict[str, Any]]
            ) -> dict[tuple[str, int], Curve]:
    """The curves of ``bench``'s env entry for the env of ``docs`` (none when it has no such
    env); raises SystemExit when that entry's settings differ from the runs'."""
    specs = [d["spec"] for d in docs.values() if "spec" in d]
    if not specs:
        return {}
    spec = specs[0]
    lib = next((d["lib"] for d in docs.values() if "lib" in d), None)
    doc = json.loads(bench.read_text())
    for entry in doc.get("envs", [doc] if "variants" in doc else []):
        config = entry.get("config", {})
        if config.get("env") != spec.get("env_id") or (
                lib is not None and config.get("lib", lib) != lib):  # a suite may train an
            continue  # env with two libraries
        for ours, theirs in _MATCH:
            if ours in spec and spec[ours] != config.get(theirs):
                raise SystemExit(f"{bench}: {spec['env_id']} ran with {theirs} = "
                                 f"{config.get(theirs)!r}, the runs with {spec[ours]!r}; "
                                 "pair only runs made with the same settings")
        curves: dict[tuple[str, int], Curve] = {}
        for variant in entry.get("variants", {}).values():
            for run, curve in variant.get("curves", {}).items():
                key = _name(run)
                if key is not None:
                    curves[key] = curve
        return curves
    return {}


def _warn_other_machine(bench: Path, doc: dict[str, Any], docs: Sequence[dict[str, Any]]
                        ) -> None:
    """Say on stderr when ``bench`` was made on another CPU model than the runs (or does not
    say on which): a seed's run is then the same run only up to a few updates, and the pairs
    are pairs by seed number, no tighter than independent runs."""
    ours = {d["machine"] for d in docs if "machine" in d}
    theirs = doc.get("machine")
    if theirs is not None and ours == {theirs}:
        return
    made = f"on {theirs}" if theirs else "on a machine it does not name"
    mine = ", ".join(sorted(ours)) or "an unnamed machine"
    print(f"warning: {bench} was made {made}, these runs on {mine}; on another CPU model a "
          "seed's run leaves the stored one after a few updates, so rerun one stored seed and "
          "compare its curve before reading the pairs as paired", file=sys.stderr)


def _runs(folder: Path, against: Sequence[Path] = (),
          docs: dict[tuple[str, int], dict[str, Any]] | None = None
          ) -> dict[tuple[str, int], Curve]:
    """(variant, seed) -> curve of ``folder/runs`` (``docs``: its run documents, when already
    read), with the stored curves of ``against`` where the folder has no run of that variant
    and seed."""
    docs = _files(folder) if docs is None else docs
    runs: dict[tuple[str, int], Curve] = {}
    for bench in against:
        runs.update(_stored(bench, docs))
    runs.update({key: doc["curve"] for key, doc in docs.items()})
    return runs


def parse_thresholds(given: Sequence[str]) -> dict[str | None, float]:
    """``--threshold`` values: ``{None: value}`` for a bare number (every folder), ``{name:
    value}`` for ``NAME=VALUE`` (the folder named NAME)."""
    out: dict[str | None, float] = {}
    for item in given:
        name, _, value = item.rpartition("=")
        try:
            out[name or None] = float(value)
        except ValueError:
            raise SystemExit(f"--threshold {item!r}: expected a number or FOLDER=NUMBER, e.g. "
                             "--threshold 950 or --threshold idp=500") from None
    return out


def folder_threshold(folder: Path, given: dict[str | None, float]) -> float:
    """``given[folder.name]``, else ``given[None]`` (every folder), else the solved level of the
    env the folder's runs trained on (``given``: :func:`parse_thresholds`)."""
    value = given.get(folder.name, given.get(None))
    if value is not None:
        return value
    from tipl_opt.thresholds import threshold_for

    for doc in _files(folder).values():
        env = doc.get("spec", {}).get("env_id")
        found = threshold_for(env) if env else None
        if found is not None:
            return found[0]
    raise SystemExit(f"{folder}: no run names an env with a known threshold; pass --threshold")


def compare(folder: Path, threshold: float, resamples: int = 4000,
            against: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """One row per TIPL variant of ``folder/runs`` (and of ``against``), paired with its base
    runs by seed."""
    docs = _files(folder)
    runs = _runs(folder, against, docs)
    jump_steps = {key: doc["jump_steps"] for key, doc in docs.items()
                  if isinstance(doc.get("jump_steps"), list)}
    rows = []
    for variant in sorted({v for v, _ in runs} - {"base"}):
        ratios, auc_diffs, below, base_below = [], [], 0, 0
        jumps_before: list[int] = []
        for (v, seed), file in sorted(runs.items()):
            if v != variant or ("base", seed) not in runs:
                continue
            reach, auc, final, end = _read(file, threshold)
            b_reach, b_auc, b_final, b_end = _read(runs[("base", seed)], threshold)
            b_steps = min(b_reach, 1.1 * b_end)
            # solved at the first evaluation, before any jump: the paired runs are identical
            ratios.append(min(reach, 1.1 * end) / b_steps if b_steps > 0 else 1.0)
            auc_diffs.append(auc - b_auc)
            if (variant, seed) in jump_steps:  # run files since jump steps were recorded
                jumps_before.append(sum(s < min(b_reach, b_end)
                                        for s in jump_steps[(variant, seed)]))
            below += final < threshold
            base_below += b_final < threshold
        if not ratios:
            continue
        rng = random.Random(0)
        medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios)))
                         for _ in range(resamples))
        earlier, later = sum(r < 1 for r in ratios), sum(r > 1 for r in ratios)
        spread = (1.96 * statistics.stdev(auc_diffs) / math.sqrt(len(auc_diffs))
                  if len(auc_diffs) > 1 else math.nan)
        rows.append({"folder": str(folder), "variant": variant, "seeds": len(ratios),
                     "median_ratio": statistics.median(ratios),
                     "median_ratio_ci95": [medians[int(0.025 * resamples)],
                                           medians[int(0.975 * resamples) - 1]],
                     "earlier": earlier, "later": later,
                     "sign_test_p": _sign_test(earlier, later),
                     "auc_diff_mean": statistics.fmean(auc_diffs), "auc_diff_ci95": spread,
                     "auc_higher": sum(d > 0 for d in auc_diffs),
                     "final_below_threshold": below, "base_final_below_threshold": base_below,
                     "jumps_before_base_threshold": statistics.median(jumps_before)
                     if jumps_before else None})
    return rows


def suite(folders: list[Path], thresholds: list[float], reps: int = 2000,
          against: Sequence[Path] = ()) -> dict[str, Any]:
    """IQM over every folder's paired seeds of steps to threshold / the folder's median base
    steps (capped at the budget), with rliable's stratified bootstrap 95% interval, per variant
    that every folder has (the base included)."""
    import numpy as np
    from rliable import library, metrics

    from tipl_opt.bench.aggregate import probability_of_improvement

    columns: dict[str, list[np.ndarray]] = {}
    n = None
    per_folder = []
    loaded = [_runs(folder, against) for folder in folders]
    # the variants every folder has; a variant only some folders have (a candidate still
    # running) neither joins the suite nor limits its seeds
    common = set.intersection(*({v for v, _ in runs} for runs in loaded))
    for runs, threshold in zip(loaded, thresholds, strict=True):
        seeds = sorted(set.intersection(*({s for v2, s in runs if v2 == v} for v in common))
                       if common else set())
        per_folder.append((runs, common, seeds, threshold))
        n = len(seeds) if n is None else min(n, len(seeds))
    if "base" not in common or not n:
        raise SystemExit("--suite needs base runs and paired seeds in every folder")
    for runs, _, seeds, threshold in per_folder:
        def steps(curve: Curve, threshold: float = threshold) -> float:
            reach, _, _, end = _read(curve, threshold)
            return min(reach, end)

        seeds = seeds[:n]
        scale = statistics.median(steps(runs[("base", s)]) for s in seeds)
        for v in common:
            columns.setdefault(v, []).append(np.array([steps(runs[(v, s)]) / scale
                                                        for s in seeds]))
    scores = {v: np.stack(cols, axis=1) for v, cols in columns.items()}
    np.random.seed(0)
    point, interval = library.get_interval_estimates(
        scores, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps)
    improvement = {}
    for v in sorted(scores):
        for other in sorted(scores):
            if other == v or v == "base":
                continue
            # fewer steps is better: compare the negated scores
            improvement[f"{v} vs {other}"] = probability_of_improvement(
                -scores[v], -scores[other], reps=max(200, reps // 4))
    return {"folders": [str(f) for f in folders], "runs_per_folder": n,
            "iqm_steps": {v: {"iqm": float(point[v][0]), "low": float(interval[v][0][0]),
                              "high": float(interval[v][1][0])} for v in sorted(scores)},
            "probability_of_fewer_steps": improvement}


def plot_folder(folder: Path, threshold: float, out: Path, against: Sequence[Path] = ()
                ) -> Path | None:
    """Every variant's mean return curve over its seeds (with ``against``'s stored runs)."""
    from tipl_opt.curves import plot_curves

    by_variant: dict[str, list[Curve]] = {}
    for (variant, _), curve in sorted(_runs(folder, against).items()):
        by_variant.setdefault(variant, []).append(curve)
    return plot_curves(by_variant, out, title=folder.name, threshold=threshold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="--out folders of tipl train")
    parser.add_argument("--threshold", action="append", default=[],
                        help="return that counts as reached: a number for every folder, or "
                        "FOLDER=NUMBER for one (repeatable; default: each folder's env's "
                        "solved level)")
    parser.add_argument("--suite", action="store_true",
                        help="also the IQM of normalised steps over all folders (rliable)")
    parser.add_argument("--against", type=Path, action="append", default=[],
                        help="a tipl bench JSON or tipl train results.json whose stored curves "
                        "join the folders' runs")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path,
                        help="folder for one PNG per runs folder: every variant's mean curve")
    args = parser.parse_args()
    given = parse_thresholds(args.threshold)
    unknown = set(given) - {None} - {folder.name for folder in args.folders}
    if unknown:
        raise SystemExit("--threshold names no folder given: "
                         + ", ".join(sorted(map(str, unknown))))
    thresholds = [folder_threshold(folder, given) for folder in args.folders]
    for bench in args.against:  # once per report, not once per pass over the runs
        _warn_other_machine(bench, json.loads(bench.read_text()),
                            [d for f in args.folders for d in _files(f).values()])
    rows = [row for folder, threshold in zip(args.folders, thresholds, strict=True)
            for row in compare(folder, threshold, against=args.against)]
    if not rows:
        raise SystemExit("no paired runs (base and TIPL of the same seed) in "
                         + ", ".join(map(str, args.folders)))
    for r in rows:
        lo, hi = r["median_ratio_ci95"]
        print(f"{Path(r['folder']).name:24} {r['variant']:18} {r['seeds']:3} seeds  "
              f"steps ratio {r['median_ratio']:.3f} [{lo:.3f}, {hi:.3f}]  earlier "
              f"{r['earlier']} / later {r['later']} (sign test p = {r['sign_test_p']:.2f})  "
              f"AUC {r['auc_diff_mean']:+.1f} ± {r['auc_diff_ci95']:.1f}, higher on "
              f"{r['auc_higher']}  ending below threshold {r['final_below_threshold']} "
              f"(base {r['base_final_below_threshold']})"
              + ("" if r["jumps_before_base_threshold"] is None else
                 f"  jumps before the base reached it {r['jumps_before_base_threshold']:g}"))
    doc: dict[str, Any] = {"threshold": given.get(None), "thresholds": thresholds, "rows": rows}
    if args.suite:
        doc["suite"] = suite(args.folders, thresholds, against=args.against)
        for v, row in doc["suite"]["iqm_steps"].items():
            print(f"suite IQM of steps / base median, {v:18} {row['iqm']:.3f} "
                  f"[{row['low']:.3f}, {row['high']:.3f}] over {len(args.folders)} folders x "
                  f"{doc['suite']['runs_per_folder']} seeds")
        for key, row in doc["suite"]["probability_of_fewer_steps"].items():
            print(f"probability of fewer steps, {key:34} {row['p']:.3f} "
                  f"[{row['low']:.3f}, {row['high']:.3f}]")
    if args.plot:
        for folder, threshold in zip(args.folders, thresholds, strict=True):
            png = plot_folder(folder, threshold, args.plot / f"{folder.name}.png", args.against)
            print(f"plot: {png}" if png else "plot: matplotlib is not installed")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
