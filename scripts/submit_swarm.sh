#!/usr/bin/env bash
# Submit the swarm (`swarm-ray run`) to a Ray cluster with `ray job submit`.
#
#   RAY_ADDRESS=http://head-node:8265 scripts/submit_swarm.sh [--config configs/paper.yaml]
#   scripts/submit_swarm.sh --cycles 600       # against a local `ray start --head`
#
# The working dir (code, configs, the model registry, the bundled data) is uploaded. The runtime
# env carries no secrets: for Binance, set BINANCE_API_KEY / BINANCE_API_SECRET (and
# GROQ_API_KEY for LLM sentiment) in the environment of the cluster's nodes themselves (e.g. the
# `ray start` environment or your orchestrator's secret store), never here. One coordinator
# actor per symbol (hosting the four agents) is spread over the nodes; all share the Serve app.
# Journals and the paper account go under SWARM_RAY_STORAGE (see scripts/job_env.sh): a shared
# file system on multi-node clusters, so a coordinator restarted elsewhere finds its journal and
# `swarm-ray explain/kill-switch --config ...` with the same SWARM_RAY_STORAGE finds them too.
#   SWARM_RAY_STORAGE=/mnt/shared/swarm-ray RAY_ADDRESS=http://head-node:8265 scripts/submit_swarm.sh
# Watch it with `swarm-ray status --address auto` on the head node, or the Ray dashboard;
# stop it with `swarm-ray stop [--emergency]` or `ray job stop <id>`.
set -euo pipefail

cd "$(dirname "$0")/.."
CONFIG="${SWARM_CONFIG:-configs/paper.yaml}"
python -m swarm_ray run --config "$CONFIG" --check "$@" >/dev/null  # a bad config fails here
source scripts/cluster_env.sh   # RAY_ADDRESS, token auth, a one-line error if unreachable
source scripts/job_env.sh       # SWARM_RAY_STORAGE (where outputs go), the runtime env

exec ray job submit \
  --address "$RAY_ADDRESS" \
  --working-dir . \
  --runtime-env-json "$RUNTIME_ENV" \
  -- python -m swarm_ray run --config "$CONFIG" "$@"
