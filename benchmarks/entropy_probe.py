"""How fast a PPO policy becomes certain, with and without jumps: its entropy along a run.

    python benchmarks/entropy_probe.py --env Acrobot-v1 --seed 4 --steps 8000 --out results/entropy

Trains SB3 PPO (the ``speedup`` suite's settings: 256-step rollouts, minibatches of 64) three
times on the same seed: the base optimizer, TIPL with the entropy check off
(``entropy_limit=10``) and TIPL with its default check. At every rollout end it records the
policy's mean entropy on a fixed batch of observations (from a random policy's episodes, the
same for every variant) and the mean return of the training episodes that finished in that
rollout (``null`` when none did); it writes ``entropy.json`` and ``entropy.png`` (entropy
and training return against env steps, jumps marked) under ``--out``.

A KL trust region cannot see a jump that only sharpens what the policy already prefers; this
probe shows what such jumps do to exploration.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from tipl_opt.adapters.attachment import ENTROPY_LIMIT
from tipl_opt.adapters.base import TIPLSetup, TrainSpec
from tipl_opt.atomic import write_json

VARIANTS: dict[str, float | None] = {"base": None, "tipl, no entropy check": 10.0,
                                     f"tipl (entropy check {ENTROPY_LIMIT})": ENTROPY_LIMIT}
"""Variant name -> entropy limit of its TIPL setup (``None``: no TIPL)."""


def fixed_observations(env_id: str, count: int = 500) -> torch.Tensor:
    """``count`` observations ``[count, *obs]`` from a random policy's episodes (seed 0)."""
    env = gym.make(env_id)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    rows = []
    for _ in range(4 * count):
        rows.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return torch.as_tensor(np.array(rows[::4]), dtype=torch.float32)


class _Probe(BaseCallback):
    """Entropy on ``observations`` at each rollout end, returns of finished episodes."""

    def __init__(self, observations: torch.Tensor) -> None:
        super().__init__()
        self.observations = observations
        self.rows: list[dict[str, float | None]] = []
        self.returns: list[float] = []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "episode" in info:
                self.returns.append(float(info["episode"]["r"]))
        return True

    def _on_rollout_end(self) -> None:
        policy: Any = self.model.policy
        with torch.no_grad():
            entropy = float(policy.get_distribution(self.observations)
                            .distribution.entropy().mean())
        ret = float(np.mean(self.returns)) if self.returns else None
        self.rows.append({"env_steps": self.num_timesteps, "entropy": entropy,
                          "train_return": ret})
        self.returns = []


def run(env_id: str, seed: int, steps: int, limit: float | None,
        observations: torch.Tensor) -> dict[str, Any]:
    """One variant's rows and the env steps of its accepted jumps."""
    from tipl_sb3.attachment import attach_setup
    from tipl_sb3.build import build_model

    spec = TrainSpec(algo="ppo", env_id=env_id, seed=seed, total_steps=steps, every=steps,
                     eval_episodes=0, hyperparams={"n_steps": 256, "batch_size": 64})
    model = build_model(spec)
    probe = _Probe(observations)
    jumps: list[int] = []
    callbacks: list[BaseCallback] = [probe]
    if limit is not None:
        tipl = attach_setup(model, TIPLSetup(entropy_limit=limit))
        for opt in tipl.optimizers.values():
            opt.register_jump_hook(
                lambda _o, report: jumps.append(model.num_timesteps) if report.accepted else None)
        callbacks.append(tipl)
    model.learn(total_timesteps=steps, callback=CallbackList(callbacks))
    model.get_env().close()
    return {"rows": probe.rows, "jumps": jumps}


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for name, result in doc["variants"].items():
        x = [r["env_steps"] for r in result["rows"]]
        line, = top.plot(x, [r["entropy"] for r in result["rows"]], label=name)
        finished = [r for r in result["rows"] if r["train_return"] is not None]
        bottom.plot([r["env_steps"] for r in finished], [r["train_return"] for r in finished],
                    ".-", color=line.get_color())
        if result["jumps"]:
            top.plot(result["jumps"], [top.get_ylim()[0]] * len(result["jumps"]), "|",
                     color=line.get_color(), alpha=0.6)
    top.set_ylabel("policy entropy (nats)")
    bottom.set_ylabel("training episode return")
    bottom.set_xlabel("environment steps")
    top.set_title(f"SB3 PPO on {doc['env']}, seed {doc['seed']}")
    top.legend(fontsize=8)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Acrobot-v1")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--out", type=Path, default=Path("results/entropy"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    observations = fixed_observations(args.env)
    doc: dict[str, Any] = {"env": args.env, "seed": args.seed, "steps": args.steps,
                           "observations": len(observations), "variants": {}}
    for name, limit in VARIANTS.items():
        result = run(args.env, args.seed, args.steps, limit, observations)
        doc["variants"][name] = result
        last = result["rows"][-1]
        print(f"{name:32s} entropy {result['rows'][0]['entropy']:.3f} -> {last['entropy']:.3f}"
              f"  last training return {last['train_return']}  jumps {len(result['jumps'])}")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(doc, args.out / "entropy.json")
    plot(doc, args.out / "entropy.png")
    print(f"wrote {args.out / 'entropy.json'} and {args.out / 'entropy.png'}")


if __name__ == "__main__":
    main()
