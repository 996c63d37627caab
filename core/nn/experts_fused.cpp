// The MoE expert path at decode as two CUDA kernels over MLX's affine-quantized expert weights
// (weight [E, out, in*bits/32] uint32, scales/biases [E, out, in/group_size]):
//   gate_up: h[p] = silu(gate_e(x)) * up_e(x) for each (token, expert) pair p, e its expert;
//   down:    y[t] = sum over the token's pairs of weight_p * down_e(h[p]).
// With few pairs MLX runs one gather_qmm per projection (a tile-padded GEMM once there are 8
// pairs), then SwiGLU and the weighted sum as separate kernels; these read each routed expert's
// rows once (quant_cuda.h: 16 bytes a lane, float32 sums) and leave nothing in between but h.
// `down` treats a token's k experts as one dot product over k * I values, so its lanes read all
// k experts' rows at once instead of one expert after the other.
#include "experts_fused.h"

#include "quant_cuda.h"

#include <mlx/backend/cuda/cuda.h>
#include <mlx/fast.h>
#include <mlx/ops.h>

#include <string>
#include <utility>
#include <vector>

namespace ominix::nn::detail {
namespace {

// One warp per R rows of gate and up (the same rows of both), lanes striding over the row's
// 16-byte chunks, U chunks a lane loaded ahead; grid.y is the pair. x (the pair's token row) is
// read through the cache by every warp. g and u are rounded to T as gather_qmm's outputs are, then
// SwiGLU as nn::gated_joint.
constexpr const char* kGateUp = R"(
  using namespace ominix_q;
  using L = Row<K, BITS, GS>;
  const int lane = threadIdx.x & 31;
  const int row0 = first_row<R>();
  if (row0 >= I) return;
  const int pair = blockIdx.y;
  const size_t e = indices[pair];
  const T* xr = x + (size_t)(pair / TOPK) * K;
  float acc[2 * R];
#pragma unroll
  for (int r = 0; r < 2 * R; ++r) acc[r] = 0.0f;
  for (int base = 0; base < L::CHUNKS; base += 32 * U) {
    Chunk gate[U][R], up[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = base + u * 32 + lane;
      if (c >= L::CHUNKS) continue;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const size_t row = e * I + min(row0 + r, I - 1);
        gate[u][r] = load_chunk<K, BITS, GS>(gate_weight, gate_scales, gate_biases, row, c);
        up[u][r] = load_chunk<K, BITS, GS>(up_weight, up_scales, up_biases, row, c);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = base + u * 32 + lane;
      if (c >= L::CHUNKS) continue;
      float xs[L::VPC];
      const float s = load_x<T, BITS>(xr + (size_t)c * L::VPC, 1.0f, xs);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        acc[r] += chunk_dot<BITS>(gate[u][r], xs, s);
        acc[R + r] += chunk_dot<BITS>(up[u][r], xs, s);
      }
    }
  }
  warp_sum<2 * R>(acc);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (lane != r || row0 + r >= I) continue;
    const float gv = static_cast<float>(static_cast<T>(acc[r]));
    const float uv = static_cast<float>(static_cast<T>(acc[R + r]));
    const float s = static_cast<float>(static_cast<T>(1.0f / (1.0f + expf(-gv))));
    const float a = static_cast<float>(static_cast<T>(gv * s));
    h[(size_t)pair * I + row0 + r] = static_cast<T>(a * uv);
  }
)";

// One warp per R output rows of one token (grid.y). The token's TOPK experts are one dot product
// over TOPK * I values: lanes stride over all their chunks at once (U loaded ahead), each chunk's
// activations h[pair] scaled by the pair's route weight. Lane k holds pair k's expert and weight
// and hands them out by shuffle. The weighted sum is float32, rounded once (as combine_experts
// rounds it; each expert's output is not rounded on the way, unlike gather_qmm's).
constexpr const char* kDown = R"(
  using namespace ominix_q;
  using L = Row<I, BITS, GS>;
  constexpr int CHUNKS = TOPK * L::CHUNKS;  // over all k experts' rows
  const int lane = threadIdx.x & 31;
  const int row0 = first_row<R>();
  if (row0 >= D) return;
  const int token = blockIdx.y;
  const int mine = token * TOPK + min(lane, TOPK - 1);
  const uint32_t my_expert = indices[mine];
  const float my_weight = weights[mine];
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  for (int base = 0; base < CHUNKS; base += 32 * U) {
    Chunk w[U][R];
    float wk[U];
    int slot[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = base + u * 32 + lane;
      slot[u] = min(c / L::CHUNKS, TOPK - 1);
      const size_t e = __shfl_sync(0xffffffffu, my_expert, slot[u]);
      wk[u] = __shfl_sync(0xffffffffu, my_weight, slot[u]);
      if (c >= CHUNKS) continue;
      const int cc = c - slot[u] * L::CHUNKS;
#pragma unroll
      for (int r = 0; r < R; ++r)
        w[u][r] = load_chunk<I, BITS, GS>(down_weight, down_scales, down_biases,
                                          e * D + min(row0 + r, D - 1), cc);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = base + u * 32 + lane;
      if (c >= CHUNKS) continue;
      const int cc = c - slot[u] * L::CHUNKS;
      float xs[L::VPC];
      const float s = load_x<T, BITS>(h + ((size_t)token * TOPK + slot[u]) * I + (size_t)cc * L::VPC,
                                      wk[u], xs);
#pragma unroll
      for (int r = 0; r < R; ++r) acc[r] += chunk_dot<BITS>(w[u][r], xs, s);
    }
  }
  warp_sum<R>(acc);
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (lane == r && row0 + r < D) y[(size_t)token * D + row0 + r] = static_cast<T>(acc[r]);
)";

const mx::fast::CustomKernelFunction& gate_up_kernel() {
  static const auto k = mx::fast::cuda_kernel("ominix_moe_gate_up",
                                              {"x", "gate_weight", "gate_scales", "gate_biases",
                                               "up_weight", "up_scales", "up_biases", "indices"},
                                              {"h"}, kGateUp, kQuantCudaHeader);
  return k;
}

const mx::fast::CustomKernelFunction& down_kernel() {
  static const auto k = mx::fast::cuda_kernel(
      "ominix_moe_down", {"h", "down_weight", "down_scales", "down_biases", "indices", "weights"},
      {"y"}, kDown, kQuantCudaHeader);
  return k;
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

  const auto& tune = quant_tuning();
  using TemplateArgs = std::vector<std::pair<std::string, mx::fast::TemplateArg>>;
  const TemplateArgs gate_up_args{{"T", dt},
                                  {"K", K},
                                  {"I", I},
                                  {"BITS", spec.bits},
                                  {"GS", spec.group_size},
                                  {"TOPK", k},
                                  {"R", tune.gate_up_rows},
                                  {"U", tune.gate_up_unroll}};
  const TemplateArgs down_args{{"T", dt},
                               {"I", I},
                               {"D", D},
                               {"BITS", spec.bits},
                               {"GS", spec.group_size},
                               {"TOPK", k},
                               {"R", tune.down_rows},
                               {"U", tune.down_unroll}};
  const auto& gu = glu.gate_proj;
  const auto& up = glu.up_proj;
  const int block = tune.block;
  auto h = gate_up_kernel()({mx::reshape(x, {tokens, K}), gu.weight, *gu.scales, *gu.biases,
                             up.weight, *up.scales, *up.biases, routes.indices},
                            {{tokens * k, I}}, {dt},
                            {grid_x(I, tune.gate_up_rows, block), tokens * k, 1}, {block, 1, 1},
                            gate_up_args, std::nullopt, false, {})[0];
  const auto& dn = glu.down_proj;
  return down_kernel()({h, dn.weight, *dn.scales, *dn.biases, routes.indices, routes.weights},
                       {x.shape()}, {dt}, {grid_x(D, tune.down_rows, block), tokens, 1},
                       {block, 1, 1}, down_args, std::nullopt, false, {})[0];
}

}  // namespace ominix::nn::detail
