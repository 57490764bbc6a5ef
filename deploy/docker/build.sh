#!/usr/bin/env bash
# Build and tag both raynas images, from the repository root:
#   deploy/docker/build.sh [registry]     (default registry: ghcr.io/raynas)
# Tags: <registry>/raynas:<raynas version>-py311-<cpu|gpu>
set -euo pipefail
cd "$(dirname "$0")/../.."
REGISTRY="${1:-ghcr.io/raynas}"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)"
for VARIANT in gpu cpu; do
  docker build -f deploy/docker/Dockerfile --build-arg VARIANT="$VARIANT" \
    -t "$REGISTRY/raynas:$VERSION-py311-$VARIANT" .
done
