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
# actor per symbol is spread over the nodes; all share the four agent actors and the Serve app.
# Journals live under journal_dir on the node that runs each coordinator: point it at shared
# storage on multi-node clusters so a coordinator restarted elsewhere finds its journal.
# Watch it with `swarm-ray status --address auto` on the head node, or the Ray dashboard;
# stop it with `swarm-ray stop [--emergency]` or `ray job stop <id>`.
set -euo pipefail

cd "$(dirname "$0")/.."
CONFIG="${SWARM_CONFIG:-configs/paper.yaml}"
python -m swarm_ray run --config "$CONFIG" --check "$@" >/dev/null  # a bad config fails here
source scripts/cluster_env.sh   # RAY_ADDRESS, token auth, a one-line error if unreachable

exec ray job submit \
  --address "$RAY_ADDRESS" \
  --working-dir . \
  --runtime-env-json '{"excludes": [".venv", ".git", "runs", "**/__pycache__"], "env_vars": {"PYTHONUNBUFFERED": "1"}}' \
  -- python -m swarm_ray run --config "$CONFIG" "$@"
