"""Tianshou PPO on CartPole with TIPL jumps at the rollout boundaries.

    python examples/tianshou_ppo.py --steps 20000

``TIPLOptimizerFactory`` wraps Tianshou's own Adam factory, so PPO trains with a TIPLOptimizer
around the Adam it would have used. The trainer's ``training_fn`` runs right after each update
and before the next rollout: there the optimizer records a snapshot and, once its window is
full, jumps, guarded by the policy's KL divergence on the last rollout's observations.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm import PPO
from tianshou.algorithm.modelfree.reinforce import DiscreteActorPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, CollectStats, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OnPolicyTrainerParams
from tianshou.utils.net.common import Net
from tianshou.utils.net.discrete import DiscreteActor, DiscreteCritic

from tipl_opt.guard import KLGuard
from tipl_opt.predictors import default_predictor_path
from tipl_tianshou import RolloutCollector, TIPLOptimizerFactory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--rollout", type=int, default=256, help="env steps per rollout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    env = gym.make("CartPole-v1")
    assert isinstance(env.action_space, gym.spaces.Discrete)
    obs_shape, n_actions = env.observation_space.shape or (4,), int(env.action_space.n)
    actor = DiscreteActor(preprocess_net=Net(state_shape=obs_shape, hidden_sizes=(64, 64)),
                          action_shape=n_actions)
    critic = DiscreteCritic(preprocess_net=Net(state_shape=obs_shape, hidden_sizes=(64, 64)))
    policy = DiscreteActorPolicy(actor=actor, dist_fn=torch.distributions.Categorical,
                                 deterministic_eval=True, action_space=env.action_space)

    predictor = "default" if default_predictor_path() is not None else "linear"
    factory = TIPLOptimizerFactory(AdamOptimizerFactory(lr=1e-3), predictor,
                                   config={"mode": "manual", "snapshot_every": 1})
    algorithm = PPO(policy=policy, critic=critic, optim=factory, max_grad_norm=0.5)
    tipl = factory.optimizers[0]  # the TIPLOptimizer PPO steps
    guard = KLGuard(lambda obs: policy.dist_fn(actor(obs)[0]), torch.empty(0), limit=0.02)

    train_envs = DummyVectorEnv([lambda: gym.make("CartPole-v1")])
    train_envs.seed(args.seed)
    collector = RolloutCollector(algorithm, train_envs, VectorReplayBuffer(args.rollout, 1))

    def training_fn(epoch: int, env_step: int) -> None:
        guard.observations = collector.last_observations  # the last rollout, as the policy saw it
        tipl.maybe_jump(guard)

    rollouts = max(1, round(args.steps / args.rollout))
    algorithm.run_training(OnPolicyTrainerParams(
        training_collector=collector, test_collector=None, logger=None, max_epochs=1,
        epoch_num_steps=rollouts * args.rollout, collection_step_num_env_steps=args.rollout,
        batch_size=64, update_step_num_repetitions=10, training_fn=training_fn,
        verbose=False, show_progress=False))

    test_envs = DummyVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(5)])
    test_envs.seed(args.seed + 1000)
    evaluator: Collector[CollectStats] = Collector(algorithm, test_envs)
    stats = evaluator.collect(n_episode=10, reset_before_collect=True)
    print(f"predictor {predictor}: final eval return {stats.returns.mean():.1f} "
          f"+- {stats.returns.std():.1f} after {rollouts * args.rollout} steps")
    print(f"jumps: {tipl.counters}")
    train_envs.close()
    test_envs.close()
    env.close()


if __name__ == "__main__":
    main()
