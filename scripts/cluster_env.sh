# Sourced by the submit scripts: the cluster's dashboard address, Ray 2.60 token auth, and one
# clear line (not a traceback) when the cluster cannot be used. Source it yourself before Ray's
# own CLI (`serve run`, `ray job submit`) against a token-auth cluster:
#   source scripts/cluster_env.sh
#
# Ray's CLI uses a token only when RAY_AUTH_MODE=token; like Ray does for a local cluster, this
# turns it on when RAY_AUTH_MODE is unset and a token is available (RAY_AUTH_TOKEN,
# RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token). The token itself is never printed or uploaded.
RAY_ADDRESS="${RAY_ADDRESS:-http://127.0.0.1:8265}"
export RAY_ADDRESS
if [ -z "${RAY_AUTH_MODE:-}" ] && { [ -n "${RAY_AUTH_TOKEN:-}" ] \
    || [ -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]; }; then
  export RAY_AUTH_MODE=token
fi
python -m swarm_ray.runtime.connect --dashboard "$RAY_ADDRESS" || return 1 2>/dev/null || exit 1
