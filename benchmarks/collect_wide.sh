#!/usr/bin/env bash
# The broader half of the data recipe: algorithms, architectures and envs beyond
# collect_dataset.sh, RUNS runs each (seeds from 0), under OUT/<algo>-<lib>[-variant]/<env>:
# SB3 A2C on CartPole-v1; SB3 PPO with a 128 x 128 ReLU network on Acrobot-v1 and
# InvertedPendulum-v5; SB3 PPO on LunarLander-v3 (Box2D: pip install -e ".[box2d]") and on
# InvertedDoublePendulum-v5 (MuJoCo); SB3 SAC and TD3 on Pendulum-v1; Tianshou DQN on
# CartPole-v1. Hopper-v5 stays out: it is the held-out env of collect_heldout.sh.
#   bash benchmarks/collect_wide.sh [OUT=data/wide] [RUNS=4] [WORKERS=2]
# Re-running resumes: finished runs are skipped.
set -euo pipefail
out=${1:-data/wide}
runs=${2:-4}
workers=${3:-2}
here=$(dirname "$0")
export OMP_NUM_THREADS=1
collect() {  # recipe env
  tipl collect --config "$here/recipes/$1.toml" --env "$2" --runs "$runs" --seed 0 \
    --workers "$workers" --out "$out/$1/$2"
}
collect a2c-sb3 CartPole-v1
collect ppo-sb3-relu128 Acrobot-v1
collect ppo-sb3-relu128 InvertedPendulum-v5
collect sac-sb3 Pendulum-v1
collect td3-sb3 Pendulum-v1
collect dqn-tianshou CartPole-v1
collect ppo-sb3 InvertedDoublePendulum-v5
collect ppo-sb3-lunar LunarLander-v3
tipl paths check "$out"
