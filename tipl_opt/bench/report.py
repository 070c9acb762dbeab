"""Turn benchmark summaries into numbers, goal checks, JSON, a markdown report and plots."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tipl_opt import __version__, atomic
from tipl_opt.bench.suites import task_label
from tipl_opt.curves import plot_curves, write_json
from tipl_opt.errors import TiplError
from tipl_opt.jumps import LIMITED_BY
from tipl_opt.machine import cpu_model
from tipl_opt.train import BASE, TrainSummary

logger = logging.getLogger(__name__)

TIPL = "tipl:default"
LINEAR = "tipl:linear"
GOALS = {
    "iqm": "IQM of TIPL / base env steps to threshold over the suite <= 0.75, its 95% interval "
           "below 1",
    "speedup": "median TIPL / base env steps to threshold <= 0.65 on at least 3 envs",
    "beats_linear": "probability that TIPL needs fewer env steps than TIPL + linear > 0.5, its "
                    "95% interval above 0.5",
    "no_harm": "on no env is TIPL's final return or mean return over training (AUC) "
               "significantly below the base's (probability of improvement's interval below "
               "0.5)",
}


def _median(summary: TrainSummary, variant: str, metric: str) -> float:
    v = summary.variants.get(variant)
    return v.metric(metric)[0] if v and v.runs else math.nan


def ratio(summary: TrainSummary, variant: str, metric: str = "steps_to_threshold") -> float:
    """Median of ``variant`` over median of base. "Never reached" counts: reached vs never is
    0 (better), never vs reached is inf (worse); NaN when both never reach it or data is
    missing."""
    a, b = _median(summary, variant, metric), _median(summary, BASE, metric)
    if math.isnan(a) or math.isnan(b) or (math.isinf(a) and math.isinf(b)):
        return math.nan
    if math.isinf(b):
        return 0.0
    if math.isinf(a):
        return math.inf
    return a / b if b > 0 else math.nan


def paired(summary: TrainSummary, variant: str, against: str = BASE) -> dict[str, int]:
    """Seed by seed (the variants share seeds): how often ``variant`` reached the threshold
    earlier / later than ``against``, and had the higher mean return over training."""
    a, b = summary.variants.get(variant), summary.variants.get(against)
    if a is None or b is None:
        return {"seeds": 0, "earlier": 0, "later": 0, "higher_auc": 0}
    mine = {r.seed: r for r in a.runs}
    theirs = {r.seed: r for r in b.runs}
    common = sorted(k for k in set(mine) & set(theirs) if k is not None)
    steps = [(a.value(mine[s], "steps_to_threshold"), b.value(theirs[s], "steps_to_threshold"))
             for s in common]
    return {"seeds": len(common),
            "earlier": sum(x < y for x, y in steps), "later": sum(x > y for x, y in steps),
            "higher_auc": sum(a.value(mine[s], "auc") > b.value(theirs[s], "auc")
                              for s in common)}


def label(summary: TrainSummary, summaries: Sequence[TrainSummary]) -> str:
    """The task's name among ``summaries``: its env id, or ``<env>-<lib>`` (``-<algo>``) where
    several libraries (algorithms) train that env (:func:`~tipl_opt.bench.suites.task_label`)."""
    cfg = summary.config
    return task_label(cfg.env, cfg.lib, cfg.algo,
                      [(s.config.env, s.config.lib, s.config.algo) for s in summaries])


def env_record(summary: TrainSummary, summaries: Sequence[TrainSummary]) -> dict[str, Any]:
    """The report's entry for ``summary``, one of ``summaries`` (which name its task)."""
    cfg = summary.config
    record = summary.to_json()
    record["env"] = cfg.env
    record["task"] = label(summary, summaries)
    record["ratios_vs_base"] = {
        name: {"steps_to_threshold": ratio(summary, name),
               "wall_time": ratio(summary, name, "wall_time")}
        for name in summary.variants if name != BASE}
    record["tipl_overhead_wall"] = ratio(summary, TIPL, "wall_time") - 1
    record["paired"] = {f"{TIPL} vs {BASE}": paired(summary, TIPL),
                        f"{TIPL} vs {LINEAR}": paired(summary, TIPL, LINEAR)}
    return record


def check_goals(summaries: Sequence[TrainSummary],
                aggregated: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate the project's goals (:data:`GOALS`) on these results; each says met or not and
    why. Results without a single run meet nothing; goals that need the aggregate statistics
    are not met without them (``aggregated``: :func:`tipl_opt.bench.aggregate.aggregate`)."""
    if not any(v.runs for s in summaries for v in s.variants.values()):
        return {name: {"goal": goal, "met": False, "detail": "no runs: nothing was measured"}
                for name, goal in GOALS.items()}
    agg = aggregated or {}
    r_tipl = {label(s, summaries): ratio(s, TIPL) for s in summaries}
    fast = [e for e, r in r_tipl.items() if r <= 0.65]
    iqm = agg.get("iqm", {}).get(TIPL, {}).get("steps")
    poi = agg.get("probability_of_improvement", {}).get(f"{TIPL} vs {LINEAR}", {}).get("steps")
    harm = []
    for s in summaries:
        for metric, p in _env_improvement(s).items():
            if p["high"] < 0.5:
                harm.append(f"{label(s, summaries)} {metric} (P={p['p']:.2f} [{p['low']:.2f}, "
                            f"{p['high']:.2f}])")
    return {
        "iqm": {"goal": GOALS["iqm"], "met": bool(iqm and iqm["iqm"] <= 0.75
                                                   and iqm["high"] < 1.0),
                "detail": (f"IQM {iqm['iqm']:.2f} [{iqm['low']:.2f}, {iqm['high']:.2f}] over "
                           f"{len(agg['envs'])} envs x {agg['runs_per_env']} seeds") if iqm
                else "no aggregate (paired runs with a threshold, rliable)"},
        "speedup": {"goal": GOALS["speedup"], "met": len(fast) >= 3,
                    "detail": f"{len(fast)} of {len(summaries)} envs at <= 0.65 ({fast})"},
        "beats_linear": {"goal": GOALS["beats_linear"],
                         "met": bool(poi and poi["p"] > 0.5 and poi["low"] > 0.5),
                         "detail": (f"P = {poi['p']:.2f} [{poi['low']:.2f}, {poi['high']:.2f}]"
                                    if poi else "no aggregate")},
        "no_harm": {"goal": GOALS["no_harm"], "met": not harm,
                    "detail": f"significantly below the base: {harm or 'nowhere'}"},
    }


def _env_improvement(summary: TrainSummary) -> dict[str, dict[str, float]]:
    try:
        from tipl_opt.bench.aggregate import env_improvement

        return env_improvement(summary, TIPL, metrics_wanted=("auc", "final"))
    except TiplError:
        return {}


def _limited_by(summary: TrainSummary) -> str:
    """``tipl:default kl 80, value_change 12; tipl:linear ...``: per variant, how many jumps
    each trust region shortened or rejected (the ``limited_by_*`` counters); empty if none."""
    parts = []
    for name, v in summary.variants.items():
        counts = {k.removeprefix(LIMITED_BY): n for k, n in v.jumps().items()
                  if k.startswith(LIMITED_BY)}
        if counts:
            parts.append(f"{name} " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    return "; ".join(parts)


def _fmt_ci(values: tuple[float, float, float], digits: int = 0) -> str:
    med, lo, hi = values
    if math.isnan(med):
        return "-"

    def f(x: float) -> str:
        return "never" if math.isinf(x) else f"{x:,.{digits}f}"

    return f"{f(med)} [{f(lo)}, {f(hi)}]"


def _settings(summaries: Sequence[TrainSummary]) -> dict[str, Any]:
    """The jump and guard settings the suite's TIPL variants ran with."""
    cfg = summaries[0].config if summaries else None
    if cfg is None:
        return {"jump": {}, "guard": True, "guard_limit": None, "value_limit": None,
                "entropy_limit": None, "value_fit_limit": None, "value_grad_limit": None}
    return {"jump": cfg.jump, "guard": cfg.guard, "guard_limit": cfg.guard_limit,
            "value_limit": cfg.value_limit, "entropy_limit": cfg.entropy_limit,
            "value_fit_limit": cfg.value_fit_limit, "value_grad_limit": cfg.value_grad_limit}


def _guard_words(settings: dict[str, Any]) -> str:
    if not settings["guard"]:
        return "no guard"
    limit, value = settings["guard_limit"], settings["value_limit"]
    return (f"guard limit {'the adapter default' if limit is None else limit}"
            + ("" if value is None else f", value-change limit {value}")
            + ("" if settings["entropy_limit"] is None
               else f", entropy-drop limit {settings['entropy_limit']}")
            + ("" if settings.get("value_fit_limit") is None
               else f", value-fit limit {settings['value_fit_limit']}")
            + ("" if settings.get("value_grad_limit") is None
               else f", value-gradient limit {settings['value_grad_limit']}"))


def _aggregate(summaries: Sequence[TrainSummary]) -> dict[str, Any]:
    try:
        from tipl_opt.bench.aggregate import aggregate

        return aggregate(summaries)
    except TiplError as exc:
        logger.warning("no aggregate statistics: %s", exc)
        return {"envs": [], "error": str(exc)}


def _aggregate_lines(agg: dict[str, Any], plots: dict[str, str]) -> list[str]:
    if not agg.get("envs"):
        return []
    lines = ["## Over the suite (rliable)", "",
             f"{len(agg['envs'])} envs x {agg['runs_per_env']} paired seeds; "
             f"{agg['normalisation']}. IQM with stratified-bootstrap 95% intervals.", "",
             "| variant | IQM env steps / base | IQM AUC (normalised) | IQM final (normalised) |",
             "|---|---|---|---|"]
    for name, m in agg["iqm"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{m[k]['iqm']:.2f} [{m[k]['low']:.2f}, {m[k]['high']:.2f}]"
            for k in ("steps", "auc", "final")) + " |")
    lines += ["", "| probability of improvement | fewer env steps | higher AUC | higher final |",
              "|---|---|---|---|"]
    for key, m in agg["probability_of_improvement"].items():
        lines.append(f"| {key} | " + " | ".join(
            f"{m[k]['p']:.2f} [{m[k]['low']:.2f}, {m[k]['high']:.2f}]"
            for k in ("steps", "auc", "final")) + " |")
    if "profile" in plots:
        lines += ["", f"![performance profile]({plots['profile']})"]
    return [*lines, ""]


def markdown(suite: str, summaries: Sequence[TrainSummary], goals: dict[str, Any],
             plots: dict[str, str], aggregated: dict[str, Any] | None = None) -> str:
    lines = [f"# tipl bench: suite `{suite}`", "",
             f"tipl-opt {__version__}, torch {torch.__version__}, {cpu_model()} with "
             f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}. Medians over seeds with "
             "bootstrap 95% intervals; env steps count training steps only (evaluation is kept "
             "apart).", ""]
    settings = _settings(summaries)
    predictor = summaries[0].config.predictor if summaries else "default"
    lines += [f"`{TIPL}` jumps with the predictor `{predictor}`"
              + (" (the embedded one)" if predictor == "default" else "") + ".", ""]
    lines += [f"Jump settings of both TIPL variants: {settings['jump'] or 'the adapter defaults'}"
              f", {_guard_words(settings)}; "
              "`linear` extrapolates from the predictor's window length to its longest horizon, "
              "so the two TIPL variants differ only in the prediction.", ""]
    for s in summaries:
        cfg = s.config
        name = label(s, summaries)
        thr = next(iter(s.variants.values())).threshold
        lines += [f"## {name} ({cfg.lib} {cfg.algo}, {cfg.steps:,} steps, {cfg.seeds} seeds)",
                  "", f"Threshold {thr} ({s.threshold_source}).", "",
                  "| variant | env steps to threshold | solved | final return | mean return "
                  "(AUC) | jumps accepted (shortened) / tried | wall s | steps vs base |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, v in s.variants.items():
            if not v.runs:
                continue
            reached = sum(math.isfinite(v.value(r, "steps_to_threshold")) for r in v.runs)
            jumps = v.jumps()
            r = ratio(s, name) if name != BASE else 1.0
            lines.append(
                f"| {name} | {_fmt_ci(v.metric('steps_to_threshold'))} | {reached}/{len(v.runs)}"
                f" | {_fmt_ci(v.metric('final_return'), 1)} | {_fmt_ci(v.metric('auc'), 1)} | "
                + (f"{jumps.get('jumps_accepted', 0)} ({jumps.get('jumps_shortened', 0)}) / "
                   f"{jumps.get('jumps_tried', 0)}"
                   if jumps else "-")
                + f" | {v.metric('wall_time')[0]:.0f} | "
                + ("-" if math.isnan(r) else f"{r:.2f}") + " |")
        limits = _limited_by(s)
        if limits:
            lines += ["", "Jumps shortened or rejected by each trust region: " + limits + "."]
        for other in (BASE, LINEAR):
            p = paired(s, TIPL, other)
            if p["seeds"]:
                lines += ["", f"Seed by seed, {TIPL} vs {other}: threshold reached earlier on "
                              f"{p['earlier']}, later on {p['later']} of {p['seeds']} seeds; "
                              f"higher mean return over training on {p['higher_auc']}."]
        if name in plots:
            lines += ["", f"![{name}]({plots[name]})"]
        if s.failures:
            lines += ["", f"Failed runs: {', '.join(sorted(s.failures))}."]
        lines.append("")
    lines += _aggregate_lines(aggregated or {}, plots)
    lines += ["## Goals", ""]
    for g in goals.values():
        lines.append(f"- {'met' if g['met'] else '**not met**'}: {g['goal']} ({g['detail']})")
    return "\n".join(lines) + "\n"


def write_report(suite: str, summaries: Sequence[TrainSummary], out: Path) -> dict[str, Any]:
    """Write ``out/bench-<suite>.json``, ``out/bench-<suite>.md`` and one PNG per env."""
    out.mkdir(parents=True, exist_ok=True)
    plots = {}
    for s in summaries:
        thr = next(iter(s.variants.values())).threshold
        name = label(s, summaries)
        png = plot_curves({k: [r.curve for r in v.runs] for k, v in s.variants.items()},
                          out / f"{suite}-{name}.png",
                          title=f"{s.config.env}: {s.config.lib} {s.config.algo}", threshold=thr)
        if png is not None:
            plots[name] = png.name
    aggregated = _aggregate(summaries)
    goals = check_goals(summaries, aggregated)
    if aggregated.get("envs"):
        from tipl_opt.bench.aggregate import plot_profile

        png = plot_profile(aggregated, out / f"{suite}-profile.png")
        if png is not None:
            plots["profile"] = png.name
    doc = {"suite": suite, "tipl_opt_version": __version__, "torch_version": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
           "machine": cpu_model(),
           **_settings(summaries),
           "envs": [env_record(s, summaries) for s in summaries], "aggregate": aggregated,
           "goals": goals, "plots": plots}
    stem = report_stem(suite, summaries, out)
    write_json(doc, out / f"{stem}.json")
    atomic.write_text(out / f"{stem}.md", markdown(suite, summaries, goals, plots, aggregated))
    doc["report"] = stem
    return doc


def _runs_in(doc: Any) -> int:
    """Runs a saved report holds (0 for anything unreadable)."""
    try:
        return sum(len(v["seeds"]) for env in doc["envs"] for v in env["variants"].values())
    except (KeyError, TypeError, AttributeError):
        return 0


def report_stem(suite: str, summaries: Sequence[TrainSummary], out: Path) -> str:
    """``bench-<suite>``, unless a report already there holds more runs than these results
    (say, the whole suite, and these are one env of it): then ``bench-<suite>-<envs>``, so a
    fuller report is never replaced by an emptier one."""
    stem = f"bench-{suite}"
    existing = out / f"{stem}.json"
    runs = sum(len(v.runs) for s in summaries for v in s.variants.values())
    if existing.exists():
        try:
            held = _runs_in(json.loads(existing.read_text()))
        except (OSError, ValueError):
            held = 0
        if held > runs:
            envs = "+".join(sorted(label(s, summaries) for s in summaries)) or "empty"
            logger.warning("%s holds %d runs, these results %d: writing %s-%s.json beside it "
                           "instead", existing, held, runs, stem, envs)
            return f"{stem}-{envs}"
    return stem
