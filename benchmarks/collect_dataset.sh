#!/usr/bin/env bash
# The data recipe of the predictor benchmark and of the embedded default predictor:
# PPO learning paths on CartPole-v1, Acrobot-v1 and InvertedPendulum-v5 with both libraries,
# then (with a fourth argument "all") off-policy paths: SB3 DQN on CartPole-v1 and Tianshou SAC
# on Pendulum-v1, RUNS/2 runs each, under OUT/../offpolicy.
#   bash benchmarks/collect_dataset.sh [OUT=data/ppo] [RUNS=16] [WORKERS=2] [ppo|all]
# Re-running resumes: finished runs are skipped.
set -euo pipefail
out=${1:-data/ppo}
runs=${2:-16}
workers=${3:-2}
here=$(dirname "$0")
for env in CartPole-v1 Acrobot-v1 InvertedPendulum-v5; do
  for lib in sb3 tianshou; do
    tipl collect --config "$here/recipes/ppo-$lib.toml" --env "$env" --runs "$runs" \
      --seed 0 --workers "$workers" --out "$out/$env"
  done
done
if [ "${4:-ppo}" = all ]; then
  off="$(dirname "$out")/offpolicy"
  tipl collect --config "$here/recipes/dqn-sb3.toml" --env CartPole-v1 --runs $((runs / 2)) \
    --seed 0 --workers "$workers" --out "$off/CartPole-v1"
  tipl collect --config "$here/recipes/sac-tianshou.toml" --env Pendulum-v1 --runs $((runs / 2)) \
    --seed 0 --workers "$workers" --out "$off/Pendulum-v1"
  tipl paths check "$off"
fi
tipl paths check "$out"
