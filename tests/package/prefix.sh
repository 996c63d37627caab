# Sourced by the package checks. install_moved_prefix BUILD_DIR installs the build into a scratch
# prefix and then moves that prefix elsewhere: an install must run and build from wherever it is
# put. Everything happens in a scratch folder outside the source tree (WORK, removed at exit
# unless OMINIX_KEEP_WORK is set), which becomes the current directory. Sets WORK and PREFIX.
install_moved_prefix() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/ominix-package.XXXXXX")"
  [[ -n "${OMINIX_KEEP_WORK:-}" ]] || trap 'rm -rf "$WORK"' EXIT
  cmake --install "$1" --prefix "$WORK/installed" >/dev/null
  mv "$WORK/installed" "$WORK/moved"
  PREFIX="$WORK/moved"
  cd "$WORK"
}

# build_consumer SRC DIR: configures and builds the CMake project SRC in DIR against PREFIX.
build_consumer() {
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$PREFIX" >/dev/null
  cmake --build "$2" >/dev/null
}

# expect_mlx_from_prefix BINARY: the binary loads libmlx.so from the moved prefix (the installed
# package's CMake config found MLX relative to itself), not from the tree OminiX was built in.
expect_mlx_from_prefix() {
  command -v ldd >/dev/null || return 0
  local mlx
  mlx="$(ldd "$1" | sed -n 's/^[[:space:]]*libmlx[^ ]* => \([^ ]*\).*/\1/p')"
  if [[ "$mlx" != "$PREFIX"/* ]]; then
    echo "$1 loads libmlx.so from '$mlx', not from the installed prefix $PREFIX" >&2
    return 1
  fi
}
