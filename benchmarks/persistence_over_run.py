"""How far the path keeps its direction as a run goes, against where TIPL's jumps gain or lose.

    python benchmarks/persistence_over_run.py \\
        --task idp=runs/idp-paths/paths:docs/results/many-jumps/idp \\
        --task pusher=runs/pusher-paths/paths:docs/results/many-jumps/pusher \\
        --variant default --variant je1 --bin 10000 --out results/persistence

Each task's base runs are saved as learning paths at the online spacing (``tipl train
--predictor none --save-paths --every 256``: a snapshot at every 256-step rollout). Every path
is fed, snapshot by snapshot, through the optimizer's own
:class:`~tipl_opt.persistence.PersistenceMeter` (a window of 8, cosines 8 snapshots on), so
what is printed is exactly what the online check (``--jump min_persistence=L``) would have
seen on that run: per bin of env steps, the median cosine over runs and windows, the same for
each parameter role's own weights (actor, critic: what ``persistence_scope=role`` measures),
and the share of snapshots at which the check, with its median over ``--windows`` cosines,
would hold a jump at level ``--level``; and each role's median over its first ``--first``
cosines in every run (what ``persistence_mode=once`` decides on; ``first`` in the JSON). With
``:RUN_FOLDER`` after a task's paths, the mean return difference of each ``--variant``
(``tipl-VARIANT`` run files) against the paired base runs there, per bin (mean and 2 standard
errors over seeds): where the jumps gained or lost.
Prints a table per task; writes ``persistence.json`` and ``persistence.png``.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tipl_opt import atomic
from tipl_opt.history import WeightHistory
from tipl_opt.paths import LearningPath
from tipl_opt.persistence import PersistenceMeter, RolePersistence

CONTEXT = 8


def parse_task(spec: str) -> tuple[str, Path, Path | None]:
    """``NAME=PATHS[:RUN_FOLDER]`` -> (name, paths, run folder)."""
    name, sep, rest = spec.partition("=")
    parts = rest.split(":")
    if not sep or not name or not parts[0] or len(parts) > 2:
        raise SystemExit(f"--task {spec!r}: expected NAME=PATHS[:RUN_FOLDER]")
    return name, Path(parts[0]), Path(parts[1]) if len(parts) == 2 else None


def role_masks(path: LearningPath) -> dict[str, torch.Tensor]:
    """Parameter role -> flat bool [P], True at that role's weights."""
    roles = np.concatenate([[spec.role] * spec.numel for spec in path.specs])
    return {role: torch.as_tensor(roles == role) for role in dict.fromkeys(roles.tolist())}


def meter_trace(path: LearningPath, windows: int, first: int
                ) -> tuple[list[tuple[int, float | None, float | None, dict[str, float | None]]],
                           dict[str, float | None]]:
    """(env steps, the cosine that became known there or None, the meter's value, each
    parameter role's new cosine, as ``persistence_scope="role"`` measures it) per snapshot of
    ``path``; and each role's median over its first ``first`` cosines, what the check with
    ``persistence_mode="once"`` decides on for that run (``None`` if the path is too short)."""
    weights = torch.as_tensor(np.array(path.weights), dtype=torch.float32)
    env_steps = np.asarray(path.env_steps)
    history = WeightHistory(CONTEXT, weights.shape[1])
    meter = PersistenceMeter(CONTEXT, windows)
    masks = role_masks(path)
    by_role = RolePersistence(masks, CONTEXT, windows)
    once = RolePersistence(masks, CONTEXT, first, once=True)
    trace = []
    for i, point in enumerate(weights):
        history.push(point, float(i))
        cosine = meter.observe(*history.window())
        once.observe(*history.window())
        trace.append((int(env_steps[i]), cosine, meter.value, by_role.observe(*history.window())))
    return trace, once.values


def return_differences(folder: Path, variant: str) -> tuple[list[int], np.ndarray] | None:
    """Env steps and [seeds, evaluations] return of ``tipl-VARIANT`` minus the paired base."""
    rows, steps = [], []
    for base_file in sorted(glob.glob(str(folder / "runs" / "*-base.json"))):
        other = Path(base_file.replace("-base.json", f"-tipl-{variant}.json"))
        if not other.exists():
            continue
        base = json.loads(Path(base_file).read_text())["curve"]
        tipl = json.loads(other.read_text())["curve"]
        n = min(len(base), len(tipl))
        rows.append([tipl[i][1] - base[i][1] for i in range(n)])
        steps = [int(base[i][0]) for i in range(n)]
    if not rows:
        return None
    n = min(len(r) for r in rows)
    return steps[:n], np.array([r[:n] for r in rows])


def measure(paths: Path, folder: Path | None, variants: list[str], bin_size: int,
            windows: int, level: float, first: int) -> dict[str, Any]:
    files = sorted(paths.glob("*.safetensors"))
    if not files:
        raise SystemExit(f"{paths}: no learning paths")
    cosines: dict[int, list[float]] = {}
    role_cosines: dict[str, dict[int, list[float]]] = {}
    held: dict[int, list[bool]] = {}
    decided: dict[str, list[float | None]] = {}
    for file in files:
        trace, first_values = meter_trace(LearningPath(file), windows, first)
        for role, value in first_values.items():
            decided.setdefault(role, []).append(value)
        for at, cosine, value, roles in trace:
            b = at // bin_size
            if cosine is not None:
                cosines.setdefault(b, []).append(cosine)
            for role, found in roles.items():
                if found is not None:
                    role_cosines.setdefault(role, {}).setdefault(b, []).append(found)
            if value is not None:
                held.setdefault(b, []).append(value < level)
    found_by_variant: dict[str, tuple[list[int], np.ndarray]] = {}
    for variant in variants if folder is not None else []:
        found = return_differences(folder, variant) if folder is not None else None
        if found is not None:
            found_by_variant[variant] = found
    bins = sorted(set(cosines) | set(held) | {s // bin_size for evals, _ in
                                               found_by_variant.values() for s in evals})
    out: dict[str, Any] = {
        "runs": len(files), "bins": [b * bin_size for b in bins],
        "cosine": [statistics.median(cosines[b]) if b in cosines else None for b in bins],
        "held": [float(np.mean(held[b])) if b in held else None for b in bins],
        "by_role": {role: [statistics.median(found[b]) if b in found else None for b in bins]
                    for role, found in role_cosines.items()},
        "first": decided, "returns": {}}
    for variant, (steps, diff) in found_by_variant.items():
        per_bin: list[list[float] | None] = []
        for b in bins:
            cols = [i for i, s in enumerate(steps) if s // bin_size == b]
            if not cols:
                per_bin.append(None)
                continue
            seed_means = diff[:, cols].mean(axis=1)
            err = 2 * seed_means.std(ddof=1) / np.sqrt(len(seed_means))
            per_bin.append([float(seed_means.mean()), float(err)])
        out["returns"][variant] = {"seeds": int(diff.shape[0]), "per_bin": per_bin}
    return out


def plot(doc: dict[str, Any], out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    tasks = doc["tasks"]
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.2 * len(tasks), 6.4), squeeze=False,
                             sharex="col")
    for col, (name, task) in enumerate(tasks.items()):
        x = [s / 1000 for s in task["bins"]]
        top, bottom = axes[0][col], axes[1][col]
        for key, style, label in (("cosine", "o-", "cosine (median)"),
                                  ("held", "s--", f"share held at {doc['level']}")):
            pts = [(xi, v) for xi, v in zip(x, task[key], strict=True) if v is not None]
            top.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
        for role, values in task.get("by_role", {}).items():
            pts = [(xi, v) for xi, v in zip(x, values, strict=True) if v is not None]
            top.plot([p[0] for p in pts], [p[1] for p in pts], ":", marker=".",
                     label=f"{role} alone")
        top.axhline(doc["level"], color="grey", lw=0.8)
        top.set_title(name)
        top.set_ylim(-0.2, 1.05)
        for variant, found in task["returns"].items():
            pts = [(xi, v) for xi, v in zip(x, found["per_bin"], strict=True) if v is not None]
            if pts:
                bottom.errorbar([p[0] for p in pts], [p[1][0] for p in pts],
                                yerr=[p[1][1] for p in pts], marker="o", capsize=3,
                                label=f"tipl-{variant} - base")
        bottom.axhline(0, color="grey", lw=0.8)
        bottom.set_xlabel("env steps (thousands)")
        if task["returns"]:
            bottom.legend(fontsize=8)
    axes[0][0].set_ylabel("path persistence")
    axes[1][0].set_ylabel("return difference")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    target = out / "persistence.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", required=True,
                        help="NAME=PATHS[:RUN_FOLDER]")
    parser.add_argument("--variant", action="append", default=[],
                        help="tipl-VARIANT run files to compare with the base (repeatable)")
    parser.add_argument("--bin", type=int, default=10000, help="env steps per bin")
    parser.add_argument("--windows", type=int, default=32,
                        help="cosines the check takes the median of")
    parser.add_argument("--level", type=float, default=0.2,
                        help="persistence below which the check holds a jump")
    parser.add_argument("--first", type=int, default=16,
                        help="cosines the once-deciding check (persistence_mode=once) takes")
    parser.add_argument("--out", type=Path, default=Path("results/persistence"))
    args = parser.parse_args()
    doc: dict[str, Any] = {"windows": args.windows, "level": args.level, "bin": args.bin,
                           "first": args.first, "context": CONTEXT, "tasks": {}}
    for spec in args.task:
        name, paths, folder = parse_task(spec)
        task = measure(paths, folder, args.variant, args.bin, args.windows, args.level,
                       args.first)
        doc["tasks"][name] = task
        print(f"{name} ({task['runs']} runs)")
        header = ("  env steps  cosine  held" + "".join(f"  {r[:6]:>6}" for r in task["by_role"])
                  + "".join(f"  {v:>16}" for v in task["returns"]))
        print(header)
        for i, b in enumerate(task["bins"]):
            cos, held = task["cosine"][i], task["held"][i]
            cells = [f"{b:>10,}", f"{cos:6.2f}" if cos is not None else "     -",
                     f"{held:5.2f}" if held is not None else "    -"]
            cells += [f"{v[i]:6.2f}" if v[i] is not None else "     -"
                      for v in task["by_role"].values()]
            for found in task["returns"].values():
                v = found["per_bin"][i]
                cells.append(f"{v[0]:+8.1f} ± {v[1]:5.1f}" if v is not None else " " * 16)
            print("  " + "  ".join(cells))
        for role, values in task["first"].items():
            known = [v for v in values if v is not None]
            if known:
                below = sum(v < args.level for v in known)
                print(f"  first {args.first} windows, {role}: "
                      + " ".join(f"{v:+.2f}" for v in known)
                      + f" ({below} of {len(known)} runs below {args.level})")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(doc, args.out / "persistence.json")
    image = plot(doc, args.out)
    print(f"wrote {args.out / 'persistence.json'}" + (f" and {image}" if image else ""))


if __name__ == "__main__":
    main()
