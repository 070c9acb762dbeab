"""How large the critic's gradient is beside the actor's in SB3 PPO, and what that does to the
actor's step under PPO's one gradient-norm clip, with and without jumps, on the same seeds.

    python benchmarks/critic_gradient.py --env Reacher-v5 --seeds 4 --steps 24576 --workers 2 \
        --variant value-grad:value_grad_limit=1 --out results/critic-gradient

SB3's PPO adds the critic's loss to the actor's and clips the norm of the whole gradient to
``max_grad_norm`` (0.5) before each minibatch step. Where the critic's gradient is much the
larger, the clip scales the actor's gradient by ``0.5 / |g|`` with ``|g|`` set by the critic,
so how well the critic fits decides how far the actor's updates go.

Trains SB3 PPO (256-step rollouts, minibatches of 64: the suite's settings) on each seed with
the base optimizer, TIPL with its defaults (``tipl_sb3.attach_setup``) and each ``--variant
NAME:KEY=VALUE,...`` (keys that are :class:`~tipl_opt.adapters.TIPLSetup` fields set the setup,
such as ``value_grad_limit``; the others are jump settings). At every minibatch it records the
norms of the actor's, the critic body's and the value head's gradients before the clip (by
wrapping ``torch.nn.utils.clip_grad_norm_``, which PPO calls once per minibatch) and the clip
factor ``min(1, max_grad_norm / |g|)``; per ``--every`` env steps, their medians (the clip
factor's and the clipped actor gradient's means) and the value head's weight norm. It writes
``critic_gradient.json`` (per seed and variant, the rows; per variant and row, the medians over
seeds) and ``critic_gradient.png`` under ``--out``, and prints the table.
"""

from __future__ import annotations

import argparse
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tipl_opt.atomic import write_json

BASE = "base"
MEASURES = ("clip", "actor_step", "actor", "body", "head", "head_norm")
"""Per row: the clip factor, the clipped actor gradient's norm (its mean), the actor's, critic
body's and value head's gradient norms before the clip (medians), the value head's weight
norm."""


def _part(name: str) -> str:
    """Which part of SB3's ActorCriticPolicy a parameter belongs to."""
    if name.startswith("value_net."):
        return "head"
    if name.startswith("mlp_extractor.value_net.") or name.startswith("vf_features_extractor."):
        return "body"
    return "actor"


def one_run(env_id: str, seed: int, steps: int, every: int,
            setup: dict[str, Any] | None) -> list[dict[str, float]]:
    """Train one seed, the base (``setup=None``) or TIPL with ``setup``; one row per ``every``
    env steps."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from tipl_opt.adapters import TIPLSetup
    from tipl_sb3.attachment import attach_setup

    torch.set_num_threads(1)
    model = PPO("MlpPolicy", env_id, n_steps=256, batch_size=64, seed=seed, device="cpu")
    named = [(_part(n), p) for n, p in model.policy.named_parameters()]
    pending: list[dict[str, float]] = []
    original = torch.nn.utils.clip_grad_norm_

    def recording_clip(parameters: Any, max_norm: float, *args: Any, **kwargs: Any) -> Any:
        squares = {"actor": 0.0, "body": 0.0, "head": 0.0}
        for part, p in named:
            if p.grad is not None:
                squares[part] += float(p.grad.detach().pow(2).sum())
        total = sum(squares.values()) ** 0.5
        clip = min(1.0, float(max_norm) / max(total, 1e-12))
        pending.append({**{k: v ** 0.5 for k, v in squares.items()}, "clip": clip,
                        "actor_step": clip * squares["actor"] ** 0.5})
        return original(parameters, max_norm, *args, **kwargs)

    rows: list[dict[str, float]] = []

    def emit(env_steps: int) -> None:
        """A row over the minibatches since the last, once ``every`` more env steps are in."""
        if env_steps < (len(rows) + 1) * every or not pending:
            return
        row = {"env_steps": float(env_steps),
               "head_norm": float(model.policy.value_net.weight.detach().norm())}
        for key in ("clip", "actor_step"):
            row[key] = float(np.mean([m[key] for m in pending]))
        for key in ("actor", "body", "head"):
            row[key] = float(np.median([m[key] for m in pending]))
        rows.append(row)
        pending.clear()

    class Rows(BaseCallback):
        def _on_rollout_start(self) -> None:  # the update on the last rollout is done
            emit(self.num_timesteps)

        def _on_step(self) -> bool:
            return True

    callbacks: list[BaseCallback] = [Rows()]
    if setup is not None:
        callbacks.insert(0, attach_setup(model, TIPLSetup.model_validate(setup)))
    torch.nn.utils.clip_grad_norm_ = recording_clip
    try:
        model.learn(steps, callback=callbacks)
    finally:
        torch.nn.utils.clip_grad_norm_ = original
    emit(model.num_timesteps)  # the update on the last rollout
    return rows


Job = tuple[str, int, int, int, str, dict[str, Any] | None]


def _job(args: Job) -> tuple[int, str, list[dict[str, float]]]:
    env_id, seed, steps, every, variant, setup = args
    return seed, variant, one_run(env_id, seed, steps, every, setup)


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME:KEY=VALUE,...`` -> (name, TIPLSetup fields), jump settings under ``jump``."""
    import json

    from tipl_opt.adapters import TIPLSetup

    name, _, spec = text.partition(":")
    setup: dict[str, Any] = {"jump": {}}
    for item in filter(None, spec.split(",")):
        key, _, raw = item.partition("=")
        key = key.strip()
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw.strip()
        if key in TIPLSetup.model_fields and key != "jump":
            setup[key] = value
        else:
            setup["jump"][key] = value
    return name, setup


def summarise(runs: dict[int, list[dict[str, float]]]) -> list[dict[str, float]]:
    """Per row index, each measure's median over the seeds (one seed whose critic blows up
    would otherwise stand for all)."""
    count = min(len(rows) for rows in runs.values())
    return [{"env_steps": runs[min(runs)][i]["env_steps"],
             **{key: float(np.median([rows[i][key] for rows in runs.values()]))
                for key in MEASURES}} for i in range(count)]


def plot(tables: dict[str, list[dict[str, float]]], path: Path, env_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), sharex=True)
    panels = (("clip", "clip factor (median of seeds)", True),
              ("body", "critic body's gradient norm", True),
              ("head_norm", "value head's weight norm", False))
    for ax, (key, title, log) in zip(axes, panels, strict=True):
        for variant, table in tables.items():
            ax.plot([r["env_steps"] for r in table], [r[key] for r in table], marker="o",
                    ms=3, label=variant)
        if log:
            ax.set_yscale("log")
        ax.set_title(f"{env_id}: {title}", fontsize=9)
        ax.set_xlabel("env steps (thousands)")
        ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Reacher-v5")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=24576)
    parser.add_argument("--every", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME:KEY=VALUE,... a TIPL variant (TIPLSetup fields or jump "
                             "settings; repeatable; 'tipl', the defaults, always runs)")
    parser.add_argument("--out", type=Path, default=Path("results/critic-gradient"))
    args = parser.parse_args()
    variants: dict[str, dict[str, Any] | None] = {BASE: None, "tipl": {}}
    variants.update(parse_variant(v) for v in args.variant)
    jobs: list[Job] = [(args.env, seed, args.steps, args.every, name, setup)
                       for seed in range(args.seeds) for name, setup in variants.items()]
    runs: dict[str, dict[int, list[dict[str, float]]]] = {v: {} for v in variants}
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers) as pool:
        for seed, variant, rows in pool.imap_unordered(_job, jobs):
            runs[variant][seed] = rows
            print(f"seed {seed} {variant}: {len(rows)} rows", flush=True)
    tables = {name: summarise(runs[name]) for name in variants}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json({"env": args.env, "seeds": args.seeds, "steps": args.steps, "every": args.every,
                "variants": {name: setup for name, setup in variants.items() if name != BASE},
                "tables": tables,
                "runs": {v: {str(s): r for s, r in sorted(runs[v].items())} for v in variants}},
               args.out / "critic_gradient.json")
    plot(tables, args.out / "critic_gradient.png", args.env)
    print(f"{'variant':>12} {'env steps':>9} {'clip':>6} {'actor step':>10} {'|g| actor':>9} "
          f"{'|g| body':>9} {'|g| head':>9} {'|w| head':>8}")
    for name, table in tables.items():
        for r in table:
            print(f"{name:>12} {r['env_steps']:>9.0f} {r['clip']:>6.3f} {r['actor_step']:>10.3f} "
                  f"{r['actor']:>9.3f} {r['body']:>9.2f} {r['head']:>9.2f} {r['head_norm']:>8.2f}")


if __name__ == "__main__":
    main()
