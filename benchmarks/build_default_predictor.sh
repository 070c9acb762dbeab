#!/usr/bin/env bash
# Rebuild the predictor embedded in the package (tipl_opt/assets/default_predictor):
#   bash benchmarks/build_default_predictor.sh [DATA=data] [RUNS=12] [WIDE=4] [WORKERS=2] [STEPS=1500]
# 1. collects the data recipe: PPO on CartPole-v1, Acrobot-v1 and InvertedPendulum-v5 with both
#    libraries (RUNS runs each), SB3 DQN and Tianshou SAC (RUNS/2 each; collect_dataset.sh), and
#    its broader half (WIDE runs each; collect_wide.sh: SB3 A2C, SAC, TD3, PPO with 128 x 128
#    ReLU networks, on LunarLander-v3 and InvertedDoublePendulum-v5, Tianshou DQN), 116 runs
#    with the defaults, about 95 CPU-minutes; LunarLander-v3 needs the box2d extra;
# 2. pretrains the global-token TIPL model with the direction loss (chosen by
#    benchmarks/predictor_objectives.py and the online runs in docs/benchmarks.md) with a
#    quarter of the runs held out, recording the recipe in the checkpoint's config.json.
# Re-running resumes the collection: finished runs are skipped.
set -euo pipefail
data=${1:-data}
runs=${2:-12}
wide=${3:-4}
workers=${4:-2}
steps=${5:-1500}
here=$(dirname "$0")
bash "$here/collect_dataset.sh" "$data/ppo" "$runs" "$workers" all
bash "$here/collect_wide.sh" "$data/wide" "$wide" "$workers"
tipl pretrain --paths "$data" --out "$here/../tipl_opt/assets/default_predictor" \
  --steps "$steps" --val-fraction 0.25 --seed 0 --context 8 --horizons 1,2,4,8 --global \
  --loss direction --restart \
  --recipe "bash benchmarks/build_default_predictor.sh $data $runs $wide $workers $steps"
rm -rf "$here/../tipl_opt/assets/default_predictor/.resume"
