#!/usr/bin/env bash
# Installs the build into a scratch prefix, then configures, builds and runs examples/generate
# against it: check_example.sh BUILD_DIR EXAMPLE_SRC MODEL_DIR PROMPT MAX_TOKENS
set -euo pipefail
BUILD_DIR="$1"
SRC="$2"
WORK="$BUILD_DIR/example-check"
rm -rf "$WORK"
cmake --install "$BUILD_DIR" --prefix "$WORK/prefix" >/dev/null
cmake -S "$SRC" -B "$WORK/example" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$WORK/prefix" >/dev/null
cmake --build "$WORK/example" >/dev/null
"$WORK/example/generate" "$3" "$4" "$5"
