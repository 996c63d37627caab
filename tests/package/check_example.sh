#!/usr/bin/env bash
# Installs the build into a scratch prefix, moves it, then configures, builds and runs
# examples/generate against it from a folder outside the source tree:
#   check_example.sh BUILD_DIR EXAMPLE_SRC MODEL_DIR PROMPT MAX_TOKENS
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prefix.sh"
install_moved_prefix "$1"
build_consumer "$2" example
expect_mlx_from_prefix example/generate
example/generate "$3" "$4" "$5"
