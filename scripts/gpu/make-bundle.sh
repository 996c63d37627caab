#!/usr/bin/env bash
# Builds the offline bundle of MLX's CUDA backend for air-gapped GPU hosts: the pinned
# mlx-cuda-13 wheel, checked, cut into pieces small enough for any transfer limit, with a
# manifest of checksums and the installer. Run it where the package index is reachable.
#
#   scripts/gpu/make-bundle.sh [--out DIR] [--piece-mib N]     (defaults: dist/gpu-bundle, 60)
#
# Then move DIR's files to the GPU host (in any number of transfers) and run install-bundle.sh
# there (docs/GPU.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/scripts/mlx-pins.sh"
OUT="$ROOT/dist/gpu-bundle"
PIECE_MIB=60
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --piece-mib) PIECE_MIB="$2"; shift 2 ;;
    *) echo "make-bundle.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
(( PIECE_MIB >= 1 && PIECE_MIB <= 60 )) || { echo "make-bundle.sh: --piece-mib must be 1..60" >&2; exit 2; }

PKG=mlx-cuda-13
WHEELS="$ROOT/.deps/wheels"
mkdir -p "$WHEELS" "$OUT"
python3 -m pip download -q --no-deps --only-binary=:all: --platform "$MLX_WHEEL_PLATFORM" \
  --python-version 3.12 -d "$WHEELS" "$PKG==$MLX_VERSION"
WHEEL=$(ls "$WHEELS"/mlx_cuda_13-"$MLX_VERSION"-*.whl | head -1)
got=$(sha256sum "$WHEEL" | cut -d' ' -f1)
[[ "$got" == "${MLX_SHA256[$PKG]}" ]] || { echo "make-bundle.sh: $WHEEL: sha256 $got, expected ${MLX_SHA256[$PKG]}" >&2; exit 1; }

rm -f "$OUT"/*.part-* "$OUT/MANIFEST"
NAME=$(basename "$WHEEL")
split -b "${PIECE_MIB}M" -d -a 2 "$WHEEL" "$OUT/$NAME.part-"
{
  echo "# OminiX offline CUDA backend bundle"
  echo "package $PKG"
  echo "version $MLX_VERSION"
  echo "wheel $NAME $got"
  (cd "$OUT" && sha256sum "$NAME".part-* | awk '{print "part " $2 " " $1}')
} > "$OUT/MANIFEST"
cp "$ROOT/scripts/gpu/install-bundle.sh" "$OUT/"
ls -l "$OUT"
echo "bundle: $OUT ($(ls "$OUT"/*.part-* | wc -l) pieces of at most $PIECE_MIB MiB)"
