# The pinned MLX backend wheels (sourced by scripts/setup.sh and scripts/gpu/*.sh).
MLX_VERSION="0.32.4"
MLX_WHEEL_PLATFORM="manylinux_2_35_x86_64"
declare -A MLX_SHA256=(
  [mlx-cpu]="0e0a24fa2ce8b6b94d2e6a90604e8813aa8e29fcb918bb2aa01cfb6d133d8cee"
  [mlx-cuda-13]="94cb48fba73e5ee39467e51c35c51c691123359ca17bafd1a24cf92ad6732bee"
)
