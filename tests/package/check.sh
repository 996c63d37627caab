#!/usr/bin/env bash
# Installs the build into a scratch prefix, moves it, then configures, builds and runs
# tests/package against it from a folder outside the source tree: check.sh BUILD_DIR
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$SRC/prefix.sh"
install_moved_prefix "$1"
build_consumer "$SRC" consumer
expect_mlx_from_prefix consumer/consumer
consumer/consumer
