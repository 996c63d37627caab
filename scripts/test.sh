#!/usr/bin/env bash
# The test command: every test of the Release build (scripts/setup.sh made it), then the unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer. GPU tests skip without a GPU.
#   scripts/test.sh            # both
#   scripts/test.sh --no-asan  # Release build only
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${OMINIX_BUILD_DIR:-$ROOT/build}"
ASAN=1
[[ "${1:-}" == "--no-asan" ]] && ASAN=0
JOBS="$(nproc)"

[[ -f "$BUILD_DIR/CMakeCache.txt" ]] || { echo "test.sh: run scripts/setup.sh first" >&2; exit 1; }
cmake --build "$BUILD_DIR" --parallel "$JOBS"
ctest --test-dir "$BUILD_DIR" --output-on-failure --parallel "$JOBS" --timeout 900

if ((ASAN)); then
  MLX_ROOT=$(sed -n 's/^MLX_ROOT:PATH=//p' "$BUILD_DIR/CMakeCache.txt")
  ASAN_DIR="$BUILD_DIR-asan"
  if [[ ! -f "$ASAN_DIR/CMakeCache.txt" ]]; then
    # -O1 without debug info: the sanitizers' checks stay, the build costs least.
    cmake -S "$ROOT" -B "$ASAN_DIR" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1" -DMLX_ROOT="$MLX_ROOT" \
      -DOMINIX_SANITIZE=address,undefined -DOMINIX_BUILD_APPS=OFF
  fi
  cmake --build "$ASAN_DIR" --parallel "$JOBS"
  # MLX itself is not instrumented; leaks in its global state at exit are not ours.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$ASAN_DIR" --output-on-failure --parallel "$JOBS" --timeout 900 -L unit
fi
