#!/usr/bin/env bash
# Submit the training experiment to a Ray cluster with `ray job submit`.
#
#   RAY_ADDRESS=http://head-node:8265 scripts/submit_train.sh [extra swarm-ray train args]
#   scripts/submit_train.sh --smoke          # against a local `ray start --head`
#
# The working dir (this repository: code, configs, bundled data) is uploaded; the runtime env
# carries no secrets (training needs none), only SWARM_RAY_STORAGE (see scripts/job_env.sh).
# Results and checkpoints go to runs/ray_results and the exported models to models/ under it
# (--storage-path may name an s3:// or gs:// bucket for the results instead); --smoke exports
# to runs/smoke/models there, never to models/.
#   SWARM_RAY_STORAGE=/mnt/shared/swarm-ray RAY_ADDRESS=http://head-node:8265 scripts/submit_train.sh
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/cluster_env.sh   # RAY_ADDRESS, token auth, a one-line error if unreachable
source scripts/job_env.sh       # SWARM_RAY_STORAGE (where outputs go), the runtime env
CONFIG="${TRAIN_CONFIG:-configs/train_dqn.yaml}"

exec ray job submit \
  --address "$RAY_ADDRESS" \
  --working-dir . \
  --runtime-env-json "$RUNTIME_ENV" \
  -- python -m swarm_ray train --config "$CONFIG" "$@"
