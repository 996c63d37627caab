// The MoE expert path at decode as two CUDA kernels over MLX's affine-quantized expert weights
// (weight [E, out, in*bits/32] uint32, scales/biases [E, out, in/group_size]):
//   gate_up: h[p] = silu(gate_e(x)) * up_e(x) for each (token, expert) pair p, e its expert;
//   down:    y[t] = sum over the token's pairs of weight_p * down_e(h[p]).
// With few pairs MLX runs one gather_qmm per projection (a tile-padded GEMM once there are 8
// pairs), then SwiGLU and the weighted sum as separate kernels; these read each routed expert's
// rows once, 16 bytes per lane, several rows per warp, and leave nothing in between but h.
#include "experts_fused.h"

#include <mlx/backend/cuda/cuda.h>
#include <mlx/fast.h>
#include <mlx/ops.h>

#include <string>
#include <utility>
#include <vector>

namespace ominix::nn::detail {
namespace {

// Device helpers shared by both kernels.
constexpr const char* kHeader = R"(
namespace ominix_experts {

// 16 bytes from p: one vector load where p is 16-byte aligned, bytewise otherwise (a view at an
// odd offset); the branch is the same for every thread of a launch.
__device__ __forceinline__ uint4 load16(const void* p) {
  if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) return __ldg(reinterpret_cast<const uint4*>(p));
  uint4 v;
  const unsigned char* b = reinterpret_cast<const unsigned char*>(p);
  unsigned char* d = reinterpret_cast<unsigned char*>(&v);
  for (int i = 0; i < 16; ++i) d[i] = b[i];
  return v;
}

// Chunk c of row x (VPC values) into xv as float; returns their sum.
template <typename T, int VPC>
__device__ __forceinline__ float load_x(const T* x, int c, float* xv) {
  constexpr int N = VPC * sizeof(T) / 16;
  constexpr int PER = 16 / sizeof(T);
  uint4 raw[N];
#pragma unroll
  for (int i = 0; i < N; ++i) raw[i] = load16(x + (size_t)c * VPC + i * PER);
  const T* t = reinterpret_cast<const T*>(raw);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < VPC; ++i) {
    xv[i] = static_cast<float>(t[i]);
    s += xv[i];
  }
  return s;
}

// sum_i q_i * x_i over one 16-byte chunk of BITS-bit values. MLX's packing: element i sits in
// word i / (32/BITS) at bit BITS * (i % (32/BITS)).
template <int BITS>
__device__ __forceinline__ float dot_chunk(const uint4 w, const float* xv) {
  constexpr int PER = 32 / BITS;
  constexpr uint32_t MASK = (1u << BITS) - 1u;
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
  float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int n = 0; n < PER; ++n)
      d[j] += static_cast<float>((words[j] >> (BITS * n)) & MASK) * xv[j * PER + n];
  return (d[0] + d[1]) + (d[2] + d[3]);
}

template <int N>
__device__ __forceinline__ void warp_sum(float* a) {
#pragma unroll
  for (int r = 0; r < N; ++r)
    for (int o = 16; o > 0; o >>= 1) a[r] += __shfl_xor_sync(0xffffffffu, a[r], o);
}

}  // namespace ominix_experts
)";

// One warp per ROWS rows of gate and up (the same rows of both), lanes striding over the row's
// 16-byte chunks; grid.y is the pair. x (the pair's token row) is read through the cache by every
// warp. g and u are rounded to T as gather_qmm's outputs are, then SwiGLU as nn::gated_joint.
constexpr const char* kGateUp = R"(
  using namespace ominix_experts;
  constexpr int VPC = 128 / BITS;  // values per 16-byte chunk
  constexpr int CHUNKS = K / VPC;
  constexpr int WPR = K * BITS / 32;  // uint32 words per row
  constexpr int GPR = K / GS;         // groups per row
  const int lane = threadIdx.x & 31;
  const int row0 = ((blockIdx.x * blockDim.x + threadIdx.x) >> 5) * ROWS;
  if (row0 >= I) return;
  const int pair = blockIdx.y;
  const size_t e = indices[pair];
  const T* xr = x + (size_t)(pair / TOPK) * K;
  float acc[2 * ROWS];
#pragma unroll
  for (int r = 0; r < 2 * ROWS; ++r) acc[r] = 0.0f;
#pragma unroll 2
  for (int c = lane; c < CHUNKS; c += 32) {
    float xv[VPC];
    const float xs = load_x<T, VPC>(xr, c, xv);
    const int g = c * VPC / GS;
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const size_t row = e * I + min(row0 + r, I - 1);
      const uint4 wg = load16(gate_weight + row * WPR + c * 4);
      const uint4 wu = load16(up_weight + row * WPR + c * 4);
      acc[r] += static_cast<float>(gate_scales[row * GPR + g]) * dot_chunk<BITS>(wg, xv) +
                static_cast<float>(gate_biases[row * GPR + g]) * xs;
      acc[ROWS + r] += static_cast<float>(up_scales[row * GPR + g]) * dot_chunk<BITS>(wu, xv) +
                       static_cast<float>(up_biases[row * GPR + g]) * xs;
    }
  }
  warp_sum<2 * ROWS>(acc);
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    if (row0 + r >= I) break;
    const float gv = static_cast<float>(static_cast<T>(acc[r]));
    const float uv = static_cast<float>(static_cast<T>(acc[ROWS + r]));
    const float s = static_cast<float>(static_cast<T>(1.0f / (1.0f + expf(-gv))));
    const float a = static_cast<float>(static_cast<T>(gv * s));
    h[(size_t)pair * I + row0 + r] = static_cast<T>(a * uv);
  }
)";

// One warp per ROWS output rows of one token (grid.y), over the token's TOPK pairs in order: each
// expert's dot rounded to T (gather_qmm's output), times the route weight, summed in float and
// rounded once (nn::combine_experts).
constexpr const char* kDown = R"(
  using namespace ominix_experts;
  constexpr int VPC = 128 / BITS;
  constexpr int CHUNKS = I / VPC;
  constexpr int WPR = I * BITS / 32;
  constexpr int GPR = I / GS;
  const int lane = threadIdx.x & 31;
  const int row0 = ((blockIdx.x * blockDim.x + threadIdx.x) >> 5) * ROWS;
  if (row0 >= D) return;
  const int token = blockIdx.y;
  float out[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) out[r] = 0.0f;
  for (int k = 0; k < TOPK; ++k) {
    const int pair = token * TOPK + k;
    const size_t e = indices[pair];
    const T* hr = h + (size_t)pair * I;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = 0.0f;
#pragma unroll 2
    for (int c = lane; c < CHUNKS; c += 32) {
      float xv[VPC];
      const float xs = load_x<T, VPC>(hr, c, xv);
      const int g = c * VPC / GS;
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        const size_t row = e * D + min(row0 + r, D - 1);
        const uint4 w = load16(down_weight + row * WPR + c * 4);
        acc[r] += static_cast<float>(down_scales[row * GPR + g]) * dot_chunk<BITS>(w, xv) +
                  static_cast<float>(down_biases[row * GPR + g]) * xs;
      }
    }
    warp_sum<ROWS>(acc);
    const float wk = weights[pair];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) out[r] += static_cast<float>(static_cast<T>(acc[r])) * wk;
  }
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
    if (row0 + r < D) y[(size_t)token * D + row0 + r] = static_cast<T>(out[r]);
)";

const mx::fast::CustomKernelFunction& gate_up_kernel() {
  static const auto k = mx::fast::cuda_kernel("ominix_moe_gate_up",
                                              {"x", "gate_weight", "gate_scales", "gate_biases",
                                               "up_weight", "up_scales", "up_biases", "indices"},
                                              {"h"}, kGateUp, kHeader);
  return k;
}

const mx::fast::CustomKernelFunction& down_kernel() {
  static const auto k = mx::fast::cuda_kernel(
      "ominix_moe_down", {"h", "down_weight", "down_scales", "down_biases", "indices", "weights"},
      {"y"}, kDown, kHeader);
  return k;
}

constexpr int kBlock = 128;     // threads per block: four warps
constexpr int kRowsGateUp = 2;  // rows of gate and of up per warp: four 16-byte loads per chunk
constexpr int kRowsDown = 4;    // rows of down per warp, sharing each chunk of h

// Threads along x for `rows` rows at `per_warp` rows a warp, in whole blocks.
int grid_x(int rows, int per_warp) {
  const int warps = (rows + per_warp - 1) / per_warp;
  return (warps * 32 + kBlock - 1) / kBlock * kBlock;
}

bool quantized_like(const SwitchLinear& l, const io::QuantSpec& spec, mx::Dtype dt) {
  return l.spec && l.scales && l.biases && l.spec->mode == io::QuantMode::affine &&
         l.spec->bits == spec.bits && l.spec->group_size == spec.group_size &&
         l.weight.dtype() == mx::uint32 && l.scales->dtype() == dt && l.biases->dtype() == dt;
}

}  // namespace

std::optional<mx::array> fused_experts(const SwitchGLU& glu, const mx::array& x,
                                       const Routes& routes) {
  const auto& o = glu.options;
  if (o.activation != Activation::silu || !use_fused_moe(o.path) || !mx::cu::is_available() ||
      !glu.gate_proj.spec)
    return std::nullopt;
  const auto dt = x.dtype();
  const auto& spec = *glu.gate_proj.spec;
  if (dt != mx::float32 && dt != mx::float16 && dt != mx::bfloat16) return std::nullopt;
  if ((spec.bits != 4 && spec.bits != 8) ||
      (spec.group_size != 32 && spec.group_size != 64 && spec.group_size != 128))
    return std::nullopt;
  if (!quantized_like(glu.gate_proj, spec, dt) || !quantized_like(glu.up_proj, spec, dt) ||
      !quantized_like(glu.down_proj, spec, dt))
    return std::nullopt;
  if (x.ndim() != 3 || routes.indices.ndim() != 3 || routes.indices.dtype() != mx::uint32 ||
      routes.weights.dtype() != mx::float32 || routes.weights.shape() != routes.indices.shape() ||
      routes.indices.shape(0) != x.shape(0) || routes.indices.shape(1) != x.shape(1))
    return std::nullopt;
  const int k = routes.indices.shape(2);
  const int tokens = x.shape(0) * x.shape(1);
  // Past this many pairs each expert's rows are read by several pairs: the sorted gather_qmm
  // (one read per expert) wins.
  if (tokens * k >= o.sort_threshold || tokens == 0) return std::nullopt;
  const int K = x.shape(2), I = glu.gate_proj.scales->shape(1), D = glu.down_proj.scales->shape(1);
  if (K % 32 != 0 || I % 32 != 0 || D != K || glu.up_proj.scales->shape(1) != I)
    return std::nullopt;

  using TemplateArgs = std::vector<std::pair<std::string, mx::fast::TemplateArg>>;
  const TemplateArgs gate_up_args{{"T", dt},
                                  {"K", K},
                                  {"I", I},
                                  {"BITS", spec.bits},
                                  {"GS", spec.group_size},
                                  {"TOPK", k},
                                  {"ROWS", kRowsGateUp}};
  const TemplateArgs down_args{
      {"T", dt},   {"I", I},           {"D", D}, {"BITS", spec.bits}, {"GS", spec.group_size},
      {"TOPK", k}, {"ROWS", kRowsDown}};
  const auto& gu = glu.gate_proj;
  const auto& up = glu.up_proj;
  auto h = gate_up_kernel()({mx::reshape(x, {tokens, K}), gu.weight, *gu.scales, *gu.biases,
                             up.weight, *up.scales, *up.biases, routes.indices},
                            {{tokens * k, I}}, {dt}, {grid_x(I, kRowsGateUp), tokens * k, 1},
                            {kBlock, 1, 1}, gate_up_args, std::nullopt, false, {})[0];
  const auto& dn = glu.down_proj;
  return down_kernel()({h, dn.weight, *dn.scales, *dn.biases, routes.indices, routes.weights},
                       {x.shape()}, {dt}, {grid_x(D, kRowsDown), tokens, 1}, {kBlock, 1, 1},
                       down_args, std::nullopt, false, {})[0];
}

}  // namespace ominix::nn::detail
