#!/bin/sh
# Copy the image's model registry into the one under the storage root, one model version at a
# time: a version already there (trained, or copied before) is never overwritten or mixed with
# the image's files. Each version is copied to a temporary folder and renamed into place, so a
# pod starting at the same time never sees half a version. Run by the head pod's init container
# in deploy/kuberay/*.yaml.
#
#   SWARM_RAY_STORAGE=/mnt/swarm-ray deploy/seed_registry.sh [SOURCE_REGISTRY]
set -eu

src="${1:-$(dirname "$0")/../models}"
dst="${SWARM_RAY_STORAGE:?set SWARM_RAY_STORAGE to the storage root}/models"
mkdir -p "$dst"
for version in "$src"/*/*/; do
  [ -d "$version" ] || continue
  version="${version%/}"
  model="$(basename "$(dirname "$version")")"
  name="$(basename "$version")"
  [ -e "$dst/$model/$name" ] && continue
  mkdir -p "$dst/$model"
  tmp="$(mktemp -d "$dst/$model/.seed-$name.XXXXXX")"
  cp -R "$version/." "$tmp/"
  if mv -T "$tmp" "$dst/$model/$name" 2>/dev/null; then
    echo "seeded $model/$name"
  else
    rm -rf "$tmp"  # another pod put this version in place first
  fi
done
