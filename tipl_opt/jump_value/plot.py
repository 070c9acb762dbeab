"""The plot of a jump-value report."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tipl_opt import atomic
from tipl_opt.jump_value.plan import NO_MOVE

logger = logging.getLogger(__name__)


def plot_report(report: dict[str, Any], out: str | os.PathLike[str]) -> Path | None:
    """One column per env and algorithm, horizon on the x axis. Top: the mean return gain of
    each predictor's jump over the weights at t, with its bootstrap interval, and the real gain
    of training on (black). Bottom: the share of means, clipped to [-3, 3]. ``None`` if
    matplotlib is not installed or nothing was measured."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plot")
        return None
    aggs = report["aggregates"]
    groups = sorted({(a["library"], a["algorithm"], a["env_id"]) for a in aggs})
    if not groups:
        logger.warning("no window was measured (see the report's errors): no plot")
        return None
    labels = [p["label"] for p in report["predictors"]]
    horizons = report["settings"]["horizons"]
    fig, axes = plt.subplots(2, len(groups), figsize=(4.2 * len(groups), 6.6), squeeze=False,
                             sharex=True)
    for col, group in enumerate(groups):
        gain_ax, share_ax = axes[0][col], axes[1][col]
        mine = [a for a in aggs if (a["library"], a["algorithm"], a["env_id"]) == group]
        real = sorted({(a["horizon"], a["mean_gain_real"]) for a in mine
                       if a["predictor"] == NO_MOVE})
        gain_ax.plot([h for h, _ in real], [g for _, g in real], color="black", marker="s",
                     label="real (training on)")
        for i, label in enumerate(labels):
            rows = sorted((a for a in mine if a["predictor"] == label),
                          key=lambda a: a["horizon"])
            hs = [a["horizon"] * (1 + 0.04 * (i - len(labels) / 2)) for a in rows]
            for ax, key in ((gain_ax, "mean_gain_pred"), (share_ax, "share_of_means")):
                ys = [a[key] if a[key] is not None else math.nan for a in rows]
                cis = [a[f"{key}_ci95"] or [y, y] for y, a in zip(ys, rows, strict=True)]
                if ax is share_ax:
                    ys = list(np.clip(ys, -3, 3))
                    cis = [list(np.clip(ci, -3, 3)) for ci in cis]
                err = [[max(y - lo, 0) for y, (lo, _) in zip(ys, cis, strict=True)],
                       [max(hi - y, 0) for y, (_, hi) in zip(ys, cis, strict=True)]]
                ax.errorbar(hs, ys, yerr=err, marker="o", capsize=3, label=label,
                            linestyle="--" if label == NO_MOVE else "-")
        share_ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        for ax in (gain_ax, share_ax):
            ax.axhline(0.0, color="grey", linewidth=0.8)
            ax.set_xscale("log", base=2)
            ax.set_xticks(horizons, [str(h) for h in horizons])
        share_ax.set_ylim(-3.2, 3.2)
        gain_ax.set_title(" ".join(group), fontsize=10)
        share_ax.set_xlabel("horizon (snapshot intervals)")
    axes[0][0].set_ylabel("mean return gain over the weights at t")
    axes[1][0].set_ylabel("share of the real improvement")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    try:
        return atomic.atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)
