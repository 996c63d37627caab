#!/usr/bin/env bash
# The installed CLI runs from a moved prefix, and the installed CMake package names nothing in the
# trees OminiX was built from:
#   check_cli.sh BUILD_DIR SOURCE_DIR MODEL DEFAULT_MODEL_NAME
# MODEL is a small model (a .gguf of the default model's family) that stands in for the default
# model: put at PREFIX/share/ominix/models/DEFAULT_MODEL_NAME, `generate` without --model and
# without $OMINIX_MODEL must pick it (and not the default model compiled in from the build tree).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prefix.sh"
BUILD_DIR="$(cd "$1" && pwd -P)"
SOURCE_DIR="$(cd "$2" && pwd -P)"
MODEL="$3"
DEFAULT_NAME="$4"
install_moved_prefix "$BUILD_DIR"
unset OMINIX_MODEL
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== the installed CMake package refers to nothing in the source or build tree"
if grep -rlF -e "$SOURCE_DIR" -e "$BUILD_DIR" "$PREFIX/lib/cmake"; then
  fail "the files above name $SOURCE_DIR or $BUILD_DIR"
fi

echo "== bin/ominix --version and info run from the moved prefix"
"$PREFIX/bin/ominix" --version
expect_mlx_from_prefix "$PREFIX/bin/ominix"
"$PREFIX/bin/ominix" info

echo "== generate with --model, then with \$OMINIX_MODEL"
gen=(generate --prompt-ids 1,2,3 --max-tokens 4 --ignore-eos --format json)
by_flag="$("$PREFIX/bin/ominix" "${gen[@]}" --model "$MODEL")"
echo "$by_flag"
ids() { grep -o '"ids":\[[0-9,]*\]' <<<"$1" || fail "no ids in: $1"; }
[[ "$(ids "$by_flag")" =~ ^\"ids\":\[[0-9]+,[0-9]+,[0-9]+,[0-9]+\]$ ]] || fail "expected 4 ids"
by_env="$(OMINIX_MODEL="$MODEL" "$PREFIX/bin/ominix" "${gen[@]}")"
[[ "$(ids "$by_env")" == "$(ids "$by_flag")" ]] || fail "OMINIX_MODEL gave $by_env"

echo "== the default model from PREFIX/share/ominix/models/$DEFAULT_NAME"
mkdir -p "$PREFIX/share/ominix/models"
cp "$MODEL" "$PREFIX/share/ominix/models/$DEFAULT_NAME"
by_default="$("$PREFIX/bin/ominix" "${gen[@]}")"
[[ "$(ids "$by_default")" == "$(ids "$by_flag")" ]] ||
  fail "without --model, generate did not use PREFIX/share/ominix/models/$DEFAULT_NAME: $by_default"

echo "== cmake --install --component default_model copies the build's default model there"
built="$(sed -n 's/^OMINIX_DEFAULT_MODEL:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")"
if [[ -f "$built" ]]; then
  cmake --install "$BUILD_DIR" --prefix "$WORK/with-model" --component default_model >/dev/null
  copied="$WORK/with-model/share/ominix/models/$DEFAULT_NAME"
  [[ -f "$copied" && $(stat -c %s "$copied") == $(stat -c %s "$built") ]] || fail "no copy of $built at $copied"
  [[ ! -e "$WORK/with-model/bin" ]] || fail "the default_model component installed more than the model"
else
  echo "(the build's default model $built is missing: not checked)"
fi
echo "installed package OK"
