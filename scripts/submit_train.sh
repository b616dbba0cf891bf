#!/usr/bin/env bash
# Submit the training experiment to a Ray cluster with `ray job submit`.
#
#   RAY_ADDRESS=http://head-node:8265 scripts/submit_train.sh [extra swarm-ray train args]
#   scripts/submit_train.sh --smoke          # against a local `ray start --head`
#
# The working dir (this repository: code, configs, bundled data) is uploaded; the runtime env
# carries no secrets (training needs none). Results and checkpoints go to the cluster's
# storage (--storage-path, e.g. a shared filesystem or s3:// bucket, for multi-node clusters);
# the exported registry is written on the driver's node under models/ unless --models-dir says
# otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/cluster_env.sh   # RAY_ADDRESS, token auth, a one-line error if unreachable
CONFIG="${TRAIN_CONFIG:-configs/train_dqn.yaml}"

exec ray job submit \
  --address "$RAY_ADDRESS" \
  --working-dir . \
  --runtime-env-json '{"excludes": [".venv", ".git", "runs", "**/__pycache__"], "env_vars": {"PYTHONUNBUFFERED": "1"}}' \
  -- python -m swarm_ray train --config "$CONFIG" "$@"
