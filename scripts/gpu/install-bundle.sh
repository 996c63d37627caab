#!/usr/bin/env bash
# Installs the offline CUDA backend bundle made by make-bundle.sh on a GPU host without network.
# Checks every piece and the reassembled wheel against the MANIFEST, unpacks MLX, and links the
# CUDA libraries it needs from the nvidia-* Python wheels already installed on the host (those
# that PyTorch brings: cuBLAS, cuDNN, cuFFT, cuSOLVER, NVRTC, NCCL, the CUDA runtime).
#
#   install-bundle.sh PIECES_DIR [--prefix DIR] [--nvidia-dir DIR]
#
# PIECES_DIR holds MANIFEST and the *.part-NN files. --prefix defaults to
# <repo>/.deps/mlx-cuda-13-<version> when run from a checkout, else ./mlx-cuda. --nvidia-dir is the
# `nvidia` folder of a site-packages (found through python3 when not given). Prints the MLX_ROOT
# to pass to scripts/setup.sh --mlx-root.
set -euo pipefail
die() { echo "install-bundle.sh: $*" >&2; exit 1; }

[[ $# -ge 1 ]] || die "usage: install-bundle.sh PIECES_DIR [--prefix DIR] [--nvidia-dir DIR]"
PIECES="$(cd "$1" && pwd)"; shift
PREFIX=""
NVIDIA=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --nvidia-dir) NVIDIA="$2"; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
MANIFEST="$PIECES/MANIFEST"
[[ -f "$MANIFEST" ]] || die "$MANIFEST is missing"
VERSION=$(awk '$1=="version"{print $2}' "$MANIFEST")
read -r _ WHEEL_NAME WHEEL_SHA < <(grep '^wheel ' "$MANIFEST")
if [[ -z "$PREFIX" ]]; then
  REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." 2>/dev/null && pwd)"
  if [[ -f "$REPO/scripts/setup.sh" ]]; then PREFIX="$REPO/.deps/mlx-cuda-13-$VERSION"; else PREFIX="$PWD/mlx-cuda"; fi
fi

# 1. Every piece present and intact, then the whole wheel.
parts=()
while read -r _ name sha; do
  [[ -f "$PIECES/$name" ]] || die "piece $name is missing from $PIECES"
  [[ "$(sha256sum "$PIECES/$name" | cut -d' ' -f1)" == "$sha" ]] || die "piece $name is corrupt (sha256 differs from MANIFEST)"
  parts+=("$PIECES/$name")
done < <(grep '^part ' "$MANIFEST")
(( ${#parts[@]} )) || die "MANIFEST lists no pieces"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat "${parts[@]}" > "$WORK/$WHEEL_NAME"
[[ "$(sha256sum "$WORK/$WHEEL_NAME" | cut -d' ' -f1)" == "$WHEEL_SHA" ]] || die "reassembled wheel does not match MANIFEST"

# 2. Unpack (a wheel is a zip; python3 reads it where unzip is absent).
rm -rf "$PREFIX.partial"
mkdir -p "$PREFIX.partial"
if command -v unzip >/dev/null; then
  unzip -q "$WORK/$WHEEL_NAME" -d "$PREFIX.partial"
else
  python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$WORK/$WHEEL_NAME" "$PREFIX.partial"
fi

# 3. The CUDA libraries: libmlx.so looks in $ORIGIN/../../nvidia/<lib>/lib.
if [[ -z "$NVIDIA" ]]; then
  for py in python3 /opt/*/.venv/bin/python3 /usr/local/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    NVIDIA=$("$py" -c "import nvidia, os; print(list(nvidia.__path__)[0])" 2>/dev/null) && [[ -d "$NVIDIA" ]] && break
    NVIDIA=""
  done
fi
[[ -n "$NVIDIA" && -d "$NVIDIA" ]] || die "no nvidia-* CUDA wheels found; pass --nvidia-dir SITE_PACKAGES/nvidia"
missing=()
for lib in libcublasLt.so.13 libcudnn.so.9 libcufft.so.12 libcusolver.so.12 libnvrtc.so.13 libnccl.so.2; do
  find -L "$NVIDIA" -name "$lib" -print -quit | grep -q . || missing+=("$lib")
done
(( ${#missing[@]} == 0 )) || die "$NVIDIA lacks ${missing[*]} (install the matching nvidia-* wheels)"
ln -sfn "$NVIDIA" "$PREFIX.partial/nvidia"
rm -rf "$PREFIX"
mv "$PREFIX.partial" "$PREFIX"
touch "$PREFIX/.complete"
echo "MLX CUDA backend $VERSION installed in $PREFIX (CUDA libraries from $NVIDIA)"
echo "MLX_ROOT=$PREFIX/mlx"
