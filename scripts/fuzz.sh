#!/usr/bin/env bash
# The fuzz command: builds the libFuzzer targets with clang into build-fuzz (every library
# instrumented for coverage, ASan and UBSan) and runs each for a time budget, one after another,
# through ctest (label `fuzz`; not part of scripts/test.sh). See docs/fuzzing.md.
#   scripts/fuzz.sh                      # every target, 60 s each
#   scripts/fuzz.sh --seconds 180        # every target, 180 s each
#   scripts/fuzz.sh --seconds 120 fuzz_gguf fuzz_safetensors
#   scripts/fuzz.sh --build-only
# Env: OMINIX_FUZZ_BUILD_DIR (default build-fuzz), MLX_ROOT (default: the one of build/),
#      CXX (default clang++), JOBS (default nproc).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${OMINIX_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_EACH=60
BUILD_ONLY=0
TARGETS=()
while (($#)); do
  case "$1" in
    --seconds) SECONDS_EACH="$2"; shift 2 ;;
    --seconds=*) SECONDS_EACH="${1#*=}"; shift ;;
    --build-only) BUILD_ONLY=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds takes a whole number" >&2; exit 2; }

if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  MLX_ROOT="${MLX_ROOT:-}"
  if [[ -z "$MLX_ROOT" && -f "$ROOT/build/CMakeCache.txt" ]]; then
    MLX_ROOT=$(sed -n 's/^MLX_ROOT:PATH=//p' "$ROOT/build/CMakeCache.txt")
  fi
  [[ -n "$MLX_ROOT" ]] || { echo "fuzz.sh: set MLX_ROOT (or run scripts/setup.sh first)" >&2; exit 1; }
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOMINIX_BUILD_FUZZERS=ON -DOMINIX_BUILD_TESTS=OFF \
    -DOMINIX_BUILD_APPS=OFF -DMLX_ROOT="$MLX_ROOT"
fi
if ((${#TARGETS[@]})); then
  cmake --build "$BUILD_DIR" --parallel "${JOBS:-$(nproc)}" --target "${TARGETS[@]}"
else
  cmake --build "$BUILD_DIR" --parallel "${JOBS:-$(nproc)}" --target fuzzers
fi
((BUILD_ONLY)) && exit 0

REGEX=""
if ((${#TARGETS[@]})); then
  REGEX="^($(IFS='|'; echo "${TARGETS[*]}"))\$"
fi
OMINIX_FUZZ_SECONDS="$SECONDS_EACH" ctest --test-dir "$BUILD_DIR" -L fuzz --output-on-failure \
  ${REGEX:+-R "$REGEX"} -V
