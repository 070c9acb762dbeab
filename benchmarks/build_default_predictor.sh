#!/usr/bin/env bash
# Rebuild the predictor embedded in the package (tipl_opt/assets/default_predictor):
#   bash benchmarks/build_default_predictor.sh [DATA=data] [RUNS=16] [WORKERS=2] [STEPS=1500]
# 1. collects the data recipe (PPO on three envs with both libraries, SB3 DQN and Tianshou SAC);
# 2. pretrains the global-token TIPL model (the variant chosen by benchmarks/predictor_error.py)
#    with a quarter of the runs held out, recording the recipe in the checkpoint's config.json.
set -euo pipefail
data=${1:-data}
runs=${2:-16}
workers=${3:-2}
steps=${4:-1500}
here=$(dirname "$0")
bash "$here/collect_dataset.sh" "$data/ppo" "$runs" "$workers" all
tipl pretrain --paths "$data" --out "$here/../tipl_opt/assets/default_predictor" \
  --steps "$steps" --val-fraction 0.25 --seed 0 --context 8 --horizons 1,2,4,8 --global \
  --restart --recipe "bash benchmarks/build_default_predictor.sh $data $runs $workers $steps"
rm -rf "$here/../tipl_opt/assets/default_predictor/.resume"
