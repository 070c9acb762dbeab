#!/usr/bin/env bash
# The data recipe of the predictor benchmark and of the embedded default predictor:
# PPO learning paths on CartPole-v1, Acrobot-v1 and InvertedPendulum-v5 with both libraries.
#   bash benchmarks/collect_dataset.sh [OUT=data/ppo] [RUNS=16] [WORKERS=2]
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
tipl paths check "$out"
