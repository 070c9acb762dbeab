"""Stable-Baselines3 PPO on CartPole with TIPL jumps at the rollout boundaries.

    python examples/sb3_ppo.py --steps 20000

SB3 builds its own optimizer (Adam, eps=1e-5); ``tipl_sb3.attach`` wraps it, and the callback
it returns snapshots the weights at every rollout start and jumps when its window is full,
guarded by the policy's KL divergence on recent observations.
"""

from __future__ import annotations

import argparse

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import tipl_sb3
from tipl_opt.predictors import default_predictor_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    env = make_vec_env("CartPole-v1", n_envs=8, seed=args.seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98,
                gae_lambda=0.8, learning_rate=1e-3, seed=args.seed, device="cpu")
    predictor = "default" if default_predictor_path() is not None else "linear"
    callback = tipl_sb3.attach(model, predictor)
    model.learn(total_timesteps=args.steps, callback=callback)

    mean, std = evaluate_policy(model, make_vec_env("CartPole-v1", seed=args.seed + 1000),
                                n_eval_episodes=10, deterministic=True)
    print(f"predictor {predictor}: final eval return {mean:.1f} +- {std:.1f} "
          f"after {model.num_timesteps} steps")
    print(f"jumps: {callback.counters()['policy']}")


if __name__ == "__main__":
    main()
