#!/usr/bin/env bash
# Held-out learning paths for `tipl jumps`: the default predictor's own recipes
# (benchmarks/recipes/) with seeds it never saw (from 1000), plus SB3 PPO on Hopper-v5, an env
# it was never trained on. About 20 CPU-minutes on one worker.
#   bash benchmarks/collect_heldout.sh [OUT=data/heldout] [WORKERS=1]
# Re-running resumes: finished runs are skipped.
set -euo pipefail
out=${1:-data/heldout}
workers=${2:-1}
here=$(dirname "$0")
export OMP_NUM_THREADS=1
tipl collect --config "$here/recipes/ppo-sb3.toml" --env CartPole-v1 --runs 4 --seed 1000 \
  --workers "$workers" --out "$out/CartPole-v1"
tipl collect --config "$here/recipes/ppo-sb3.toml" --env InvertedPendulum-v5 --runs 4 \
  --seed 1000 --workers "$workers" --out "$out/InvertedPendulum-v5"
tipl collect --config "$here/recipes/sac-tianshou.toml" --env Pendulum-v1 --runs 2 --seed 1000 \
  --workers "$workers" --out "$out/Pendulum-v1"
tipl collect --config "$here/recipes/ppo-sb3.toml" --env Hopper-v5 --runs 2 --seed 1000 \
  --workers "$workers" --out "$out/Hopper-v5"
tipl paths check "$out"
