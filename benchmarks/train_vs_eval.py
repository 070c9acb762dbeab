"""What PPO optimises and what its evaluation sees, with and without jumps, on the same seeds.

    python benchmarks/train_vs_eval.py --env Reacher-v5 --seeds 10 --steps 24576 --workers 2 \
        --variant fixed-std:fixed_params=log_std --out results/train-vs-eval

Trains SB3 PPO (256-step rollouts, minibatches of 64: the suite's settings) on each seed with
the base optimizer, TIPL with its defaults (``tipl_sb3.attach``) and each ``--variant
NAME:KEY=VALUE,...`` (TIPL with those jump settings). Every ``--every`` env steps
it records the mean return of the newest 10 *training* episodes (the stochastic policy PPO
optimises), the mean return of ``--eval-episodes`` deterministic episodes on an evaluation env
of its own (what ``tipl train`` reports) and the policy's mean entropy on the newest rollout's
observations (nats, summed over action dimensions). It writes ``train_vs_eval.json`` (per seed and
variant, the rows; per TIPL variant and step, the paired difference TIPL - base of each with
a bootstrap 95% interval) and ``train_vs_eval.png`` under ``--out``, and prints the table.

A jump extrapolates the path of what the optimiser improves. Where that is the stochastic
policy's return and the deterministic policy's return falls meanwhile (Reacher-v5: the action
noise shrinks, the mean action wanders), the jumps can raise the first and lower the second.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tipl_opt.atomic import write_json

BASE = "base"
WINDOW = 10
"""Training episodes averaged at each row (the newest ones)."""


def one_run(env_id: str, seed: int, steps: int, every: int, eval_episodes: int,
            jump: dict[str, Any] | None) -> list[dict[str, float]]:
    """Train one seed, the base (``jump=None``) or TIPL with ``jump`` settings; rows of
    ``{env_steps, train_return, eval_return, entropy}``."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList

    import tipl_sb3

    torch.set_num_threads(1)
    evaluation = gym.make(env_id)

    def evaluate(model: Any) -> float:
        total = []
        for episode in range(eval_episodes):
            obs, _ = evaluation.reset(seed=10_000 + episode)
            done, ret = False, 0.0
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, _ = evaluation.step(action)
                ret += float(reward)
                done = terminated or truncated
            total.append(ret)
        return float(np.mean(total))

    rows: list[dict[str, float]] = []

    class Rows(BaseCallback):
        def _on_rollout_end(self) -> None:
            if self.num_timesteps // every > len(rows) - 1:
                episodes = [e["r"] for e in self.model.ep_info_buffer or ()][-WINDOW:]
                buffer = self.model.rollout_buffer  # type: ignore[attr-defined]
                obs = torch.as_tensor(buffer.observations.reshape(
                    -1, *buffer.observations.shape[2:]), device=self.model.device)
                policy: Any = self.model.policy
                with torch.no_grad():
                    entropy = policy.get_distribution(obs).entropy()
                rows.append({"env_steps": self.num_timesteps,
                             "train_return": float(np.mean(episodes)) if episodes else np.nan,
                             "eval_return": evaluate(self.model),
                             "entropy": float(entropy.float().mean())})

        def _on_step(self) -> bool:
            return True

    model = PPO("MlpPolicy", env_id, n_steps=256, batch_size=64, seed=seed, device="cpu")
    callbacks: list[BaseCallback] = [Rows()]
    if jump is not None:
        callbacks.insert(0, tipl_sb3.attach(model, config=jump))
    model.learn(steps, callback=CallbackList(callbacks))
    evaluation.close()
    return rows


Job = tuple[str, int, int, int, int, str, dict[str, Any] | None]


def _job(args: Job) -> tuple[int, str, list[dict[str, float]]]:
    env_id, seed, steps, every, episodes, variant, jump = args
    return seed, variant, one_run(env_id, seed, steps, every, episodes, jump)


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME:KEY=VALUE,...`` -> (name, jump settings); values as JSON where they parse."""
    name, _, spec = text.partition(":")
    jump: dict[str, Any] = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        try:
            jump[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            jump[key.strip()] = value.strip()
    return name, jump


def bootstrap(diffs: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean of ``diffs`` and its bootstrap 95% interval."""
    means = [rng.choice(diffs, len(diffs)).mean() for _ in range(2000)]
    return float(diffs.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(runs: dict[str, dict[int, list[dict[str, float]]]],
              variant: str) -> list[dict[str, Any]]:
    """Per row index: env steps, the base's means and ``variant`` - base of each measure."""
    rng = np.random.default_rng(0)
    seeds = sorted(set(runs[BASE]) & set(runs[variant]))
    count = min(len(runs[v][s]) for v in (BASE, variant) for s in seeds)
    table = []
    for i in range(count):
        row: dict[str, Any] = {"env_steps": runs[BASE][seeds[0]][i]["env_steps"]}
        for key in ("train_return", "eval_return", "entropy"):
            base = np.array([runs[BASE][s][i][key] for s in seeds])
            tipl = np.array([runs[variant][s][i][key] for s in seeds])
            keep = np.isfinite(base) & np.isfinite(tipl)
            row[f"base_{key}"] = float(base[keep].mean())
            mean, low, high = bootstrap(tipl[keep] - base[keep], rng)
            row[f"diff_{key}"] = {"mean": mean, "low": low, "high": high,
                                  "higher": int((tipl[keep] > base[keep]).sum()),
                                  "seeds": int(keep.sum())}
        table.append(row)
    return table


def cell(d: dict[str, Any], digits: int = 1) -> str:
    """``mean [low, high] higher/seeds`` of a paired difference."""
    return (f"{d['mean']:>+7.{digits}f} [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}] "
            f"{d['higher']:>2}/{d['seeds']}")


def plot(tables: dict[str, list[dict[str, Any]]], path: Path, env_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), sharex=True)
    for ax, key, title in zip(axes, ("train_return", "eval_return", "entropy"),
                              ("return, training episodes", "return, evaluation",
                               "policy entropy (nats)"), strict=True):
        for variant, table in tables.items():
            steps = [r["env_steps"] for r in table]
            mean = [r[f"diff_{key}"]["mean"] for r in table]
            low = [r[f"diff_{key}"]["low"] for r in table]
            high = [r[f"diff_{key}"]["high"] for r in table]
            ax.fill_between(steps, low, high, alpha=0.2)
            ax.plot(steps, mean, marker="o", ms=3, label=variant)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_title(f"{env_id}: variant - base, {title}", fontsize=9)
        ax.set_xlabel("env steps (thousands)")
        ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g}")
    axes[0].legend(fontsize=8)
    axes[0].set_ylabel("difference (95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Reacher-v5")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=24576)
    parser.add_argument("--every", type=int, default=2048)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME:KEY=VALUE,... a TIPL variant with these jump settings "
                             "(repeatable; 'tipl', the defaults, always runs)")
    parser.add_argument("--out", type=Path, default=Path("results/train-vs-eval"))
    args = parser.parse_args()
    variants: dict[str, dict[str, Any] | None] = {BASE: None, "tipl": {}}
    variants.update(parse_variant(v) for v in args.variant)
    jobs: list[Job] = [(args.env, seed, args.steps, args.every, args.eval_episodes, name, jump)
                       for seed in range(args.seeds) for name, jump in variants.items()]
    runs: dict[str, dict[int, list[dict[str, float]]]] = {v: {} for v in variants}
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers) as pool:
        for seed, variant, rows in pool.imap_unordered(_job, jobs):
            runs[variant][seed] = rows
            print(f"seed {seed} {variant}: {len(rows)} rows", flush=True)
    tables = {name: summarise(runs, name) for name in variants if name != BASE}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json({
        "env": args.env, "seeds": args.seeds, "steps": args.steps, "every": args.every,
        "eval_episodes": args.eval_episodes, "train_window": WINDOW,
        "variants": {name: jump for name, jump in variants.items() if name != BASE},
        "tables": tables, "runs": {v: {str(s): r for s, r in sorted(runs[v].items())}
                                   for v in variants}}, args.out / "train_vs_eval.json")
    plot(tables, args.out / "train_vs_eval.png", args.env)
    print(f"{'env steps':>9}  {'base train':>10}  {'TIPL - base, train':>24}  "
          f"{'base eval':>9}  {'TIPL - base, eval':>24}  {'base H':>6}  "
          f"{'TIPL - base, entropy':>24}")
    for name, table in tables.items():
        print(f"{name} - base")
        for r in table:
            print(f"{r['env_steps']:>9}  {r['base_train_return']:>10.1f}  "
                  f"{cell(r['diff_train_return']):>24}  {r['base_eval_return']:>9.1f}  "
                  f"{cell(r['diff_eval_return']):>24}  {r['base_entropy']:>6.2f}  "
                  f"{cell(r['diff_entropy'], 3):>24}")


if __name__ == "__main__":
    main()
