#!/usr/bin/env bash
# Installs the build into a scratch prefix, moves it, then configures and builds an example
# project against it from a folder outside the source tree and runs one of its programs:
#   check_example_program.sh BUILD_DIR EXAMPLE_SRC PROGRAM [ARGS...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prefix.sh"
BUILD_DIR="$1"
SRC="$2"
PROGRAM="$3"
shift 3
install_moved_prefix "$BUILD_DIR"
build_consumer "$SRC" example
expect_mlx_from_prefix "example/$PROGRAM"
"example/$PROGRAM" "$@"
