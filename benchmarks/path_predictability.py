"""How predictable each task's learning path is from its own window, against what TIPL gains online.

    python benchmarks/path_predictability.py \\
        --task idp=runs/idp-paths-256/paths:docs/results/many-jumps/paired-idp-40.json \\
        --task reacher=runs/reacher-paths-256/paths:docs/results/many-jumps/paired-reacher.json \\
        --out results/predictability

For each task, on its base runs' learning paths (``tipl train --predictor none --save-paths
--every 256``: a snapshot at every rollout, the spacing TIPL jumps at online), every window of
the predictor's context and every horizon h: the cosine between the predicted move and the real
one, and the share of the real move covered along it (``progress``), for the predictor and for
``linear`` (as ``benchmarks/jump_progress.py`` measures them). ``linear``'s cosine needs no
predictor: it says how far the path keeps its direction, which bounds what a jump from the
window can find. Each task's paired online result is read from a ``paired_runs.py --out`` JSON
(the row whose folder ends with the task's name, or ``FOLDER`` given after a second colon;
without one the task is measured offline only).
Prints a table; writes ``predictability.json`` and ``predictability.png`` (online steps ratio
against the cosine at the longest horizon). ``--stride N`` keeps every N-th stored snapshot: the
path as TIPL sees it with ``--jump snapshot_every=N``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tipl_opt import atomic
from tipl_opt.paths import LearningPath, PathDataset
from tipl_opt.predictors import TIPLPredictor, load_predictor
from tipl_opt.pretrain.metrics import progress_on_runs


def parse_task(spec: str) -> tuple[str, Path, Path | None, str]:
    """``NAME=PATHS[:PAIRED_JSON[:FOLDER]]`` -> (name, paths, paired JSON, folder suffix)."""
    name, sep, rest = spec.partition("=")
    parts = rest.split(":")
    if not sep or not name or not parts[0] or len(parts) > 3:
        raise SystemExit(f"--task {spec!r}: expected NAME=PATHS[:PAIRED_JSON[:FOLDER]]")
    paired = Path(parts[1]) if len(parts) > 1 else None
    return name, Path(parts[0]), paired, parts[2] if len(parts) == 3 else name


def online_rows(paired: Path, folder: str) -> dict[str, dict[str, Any]]:
    """The paired-runs rows of ``folder`` in ``paired``, by variant."""
    rows = json.loads(paired.read_text())["rows"]
    found = {r["variant"]: r for r in rows if r["folder"].rstrip("/").endswith(folder)}
    if not found:
        raise SystemExit(f"{paired}: no row for a folder ending with {folder!r}")
    return found


class Strided:
    """A learning path seen through every ``stride``-th snapshot (what a window reads of it)."""

    def __init__(self, path: LearningPath, stride: int) -> None:
        self.path, self.stride, self.specs = path, stride, path.specs
        self.num_snapshots = (path.num_snapshots - 1) // stride + 1
        self.env_steps: np.ndarray[Any, Any] = path.env_steps[::stride]

    def window(self, start: int, length: int) -> torch.Tensor:
        return self.path.window(start * self.stride, length, self.stride)


def measure(paths: Path, predictor: TIPLPredictor, max_windows: int,
            stride: int = 1) -> dict[str, Any]:
    runs: list[Any] = list(PathDataset(paths))
    if stride > 1:
        runs = [Strided(lp, stride) for lp in runs]
    if not runs:
        raise SystemExit(f"{paths}: no learning paths")
    windows, stats = progress_on_runs(predictor, runs, max_windows)
    return {"runs": len(runs), "windows": windows, "stats": stats}


def plot(doc: dict[str, Any], out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not any(task["online"] for task in doc["tasks"].values()):
        return None  # offline only: nothing to plot against
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for variant, key, color in (("tipl-default", "tipl", "tab:orange"),
                                ("tipl-linear", "linear", "tab:green")):
        labelled = False
        for name, task in doc["tasks"].items():
            row = task["online"].get(variant)
            if row is None:
                continue
            x = task["stats"][key]["cosine_median"][-1]
            lo, hi = row["median_ratio_ci95"]
            y = row["median_ratio"]
            ax.errorbar(x, y, yerr=[[y - lo], [hi - y]], fmt="o", color=color, capsize=3,
                        label=None if labelled else variant)
            labelled = True
            if key == "tipl":
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, -12),
                            fontsize=8)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    h = doc["horizons"][-1]
    ax.set_xlabel(f"median cosine of the predicted {h}-snapshot move with the real one")
    ax.set_ylabel("env steps to threshold, paired / base")
    ax.set_title("Online gain against how predictable the learning path is")
    ax.legend(loc="lower left")
    fig.tight_layout()
    png = out / "predictability.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", required=True,
                        help="NAME=PATHS[:PAIRED_JSON[:FOLDER]] (repeatable)")
    parser.add_argument("--predictor", default="default")
    parser.add_argument("--max-windows", type=int, default=2000)
    parser.add_argument("--stride", type=int, default=1,
                        help="keep every N-th stored snapshot (TIPL's snapshot_every=N)")
    parser.add_argument("--out", type=Path, default=Path("results/predictability"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    predictor = load_predictor(args.predictor)
    if not isinstance(predictor, TIPLPredictor):
        raise SystemExit(f"{args.predictor} is not a TIPL checkpoint")
    horizons = list(predictor.config.horizons)
    doc: dict[str, Any] = {"predictor": args.predictor, "horizons": horizons,
                           "stride": args.stride, "tasks": {}}
    print(f"{'task':14} {'runs':>4} {'windows':>7}   cosine h={horizons[-1]} tipl / linear   "
          f"progress tipl / linear   online ratio tipl / linear")
    for spec in args.task:
        name, paths, paired, folder = parse_task(spec)
        task = measure(paths, predictor, args.max_windows, args.stride)
        task.update(paths=str(paths), paired=str(paired) if paired else None,
                    online=online_rows(paired, folder) if paired else {})
        doc["tasks"][name] = task
        st, on = task["stats"], task["online"]
        ratios = " / ".join(f"{on[v]['median_ratio']:.2f}" if v in on else "-"
                            for v in ("tipl-default", "tipl-linear"))
        print(f"{name:14} {task['runs']:>4} {task['windows']:>7}   "
              f"{st['tipl']['cosine_median'][-1]:>8.2f} / {st['linear']['cosine_median'][-1]:.2f}"
              f"   {st['tipl']['progress_median'][-1]:>12.2f} / "
              f"{st['linear']['progress_median'][-1]:.2f}   {ratios:>17}")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out / "predictability.json", json.dumps(doc, indent=2))
    png = plot(doc, args.out)
    print(f"wrote {args.out / 'predictability.json'}" + (f" and {png}" if png else ""))


if __name__ == "__main__":
    main()
