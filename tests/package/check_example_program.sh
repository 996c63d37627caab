#!/usr/bin/env bash
# Installs the build into a scratch prefix, then configures and builds an example project against
# it and runs one of its programs: check_example_program.sh BUILD_DIR EXAMPLE_SRC PROGRAM [ARGS...]
set -euo pipefail
BUILD_DIR="$1"
SRC="$2"
PROGRAM="$3"
shift 3
WORK="$BUILD_DIR/example-check-$(basename "$SRC")"
rm -rf "$WORK"
cmake --install "$BUILD_DIR" --prefix "$WORK/prefix" >/dev/null
cmake -S "$SRC" -B "$WORK/example" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$WORK/prefix" >/dev/null
cmake --build "$WORK/example" >/dev/null
"$WORK/example/$PROGRAM" "$@"
