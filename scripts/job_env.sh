# Sourced by the submit scripts, after cluster_env.sh: where the job writes, and the runtime env
# of `ray job submit`.
#
# SWARM_RAY_STORAGE is the storage root of the job's outputs: journals, the paper account, the
# model registry, training results (docs/cluster-and-dashboard.md, "Where outputs go"). A job's
# working dir is a temporary copy of this folder that Ray deletes with the job, so the job needs
# it; it goes to the job in the runtime env's env_vars (a path, not a secret). Unset, against a
# cluster on this machine it defaults to this repository (where a local run writes); against
# another machine, set it to a folder of the cluster: a shared file system mounted at the same
# path on every node when there are several, e.g. /mnt/shared/swarm-ray. Training results can
# also go to an object store, with --storage-path s3://bucket/results.
if [ -z "${SWARM_RAY_STORAGE:-}" ]; then
  case "$RAY_ADDRESS" in
    *://127.0.0.1:* | *://localhost:* | 127.0.0.1:* | localhost:*) SWARM_RAY_STORAGE="$PWD" ;;
    *)
      echo "error: set SWARM_RAY_STORAGE to the folder on the cluster where the job writes its" \
        "outputs (a shared file system for several nodes); see docs/cluster-and-dashboard.md" >&2
      return 1 2>/dev/null || exit 1
      ;;
  esac
fi
export SWARM_RAY_STORAGE
RUNTIME_ENV="$(python -c 'import json, os; print(json.dumps({
    "excludes": [".venv", ".git", "runs", "**/__pycache__"],
    "env_vars": {"PYTHONUNBUFFERED": "1", "SWARM_RAY_STORAGE": os.environ["SWARM_RAY_STORAGE"]},
}))')"
