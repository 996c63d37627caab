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

#include "cuda_source.h"
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
// read through the cache by every warp. SwiGLU as silu_mul (quant_cuda.h).
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
    h[(size_t)pair * I + row0 + r] = silu_mul<T>(acc[r], acc[R + r]);
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

// Tensor-core versions for 4-bit weights and bfloat16/float16 activations (quant_cuda.h). A block
// of S warps owns 16 rows (gate and up: the same 16 rows of both) and splits the row's chunks
// between its warps, 4 * CPQ chunks a step (mma_steps). The warps' sums meet in shared memory. The
// activations' per-chunk sums, which the epilogue needs, are made once per block into shared memory
// first.
constexpr const char* kGateUpMma = R"(
  using namespace ominix_q;
  constexpr int CHUNKS = K / 32;
  __shared__ __align__(16) T xr[K / 32 * XPITCH];  // the pair's token row
  __shared__ float xsum[CHUNKS];
  __shared__ float part[S][2][16];
  const int pair = blockIdx.y;
  for (int c = threadIdx.x; c < CHUNKS; c += blockDim.x)
    xsum[c] = chunk_sum(x + (size_t)(pair / TOPK) * K + c * 32, xr + c * XPITCH);
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2;
  const size_t e = indices[pair];
  const int tile = blockIdx.x * 16;
  struct Src : Dense<T, 2, K, GS> {  // matrix 0 gate, 1 up: rows g, g + 8 of expert e's tile
    const T* x;
    __device__ const T* act(int ch) const { return x + ch * XPITCH; }
  };
  const Src src{{{gate_weight, up_weight}, {gate_scales, up_scales}, {gate_biases, up_biases},
                 {e * I + min(tile + g, I - 1), e * I + min(tile + g + 8, I - 1)}}, xr};
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // gate rows g, g + 8; up rows g, g + 8
  mma_steps<T, 2, GS, CPQ, CHAINS, S, CHUNKS>(src, xsum, acc);
  tile_sum<S, 2>(acc, part);
  if (warp == 0 && lane < 16 && tile + lane < I)
    h[(size_t)pair * I + tile + lane] = silu_mul<T>(acc[0], acc[1]);
)";

// The token's TOPK experts as one dot product over TOPK * I values (as kDown); each chunk's term
// is scaled by its pair's route weight in the epilogue, so h stays as it is for the mma.
constexpr const char* kDownMma = R"(
  using namespace ominix_q;
  constexpr int CH = I / 32, CHUNKS = TOPK * CH;
  __shared__ float xsum[CHUNKS];
  __shared__ float part[S][1][16];
  __shared__ size_t slot_row[TOPK];  // first row of each slot's expert in [E * D] rows
  __shared__ float route[TOPK];
  const int token = blockIdx.y;
  const T* hr = h + (size_t)token * TOPK * I;
  for (int c = threadIdx.x; c < CHUNKS; c += blockDim.x) xsum[c] = chunk_sum(hr + c * 32);
  if (threadIdx.x < TOPK) {
    slot_row[threadIdx.x] = (size_t)indices[token * TOPK + threadIdx.x] * D;
    route[threadIdx.x] = weights[token * TOPK + threadIdx.x];
  }
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2;
  const int tile = blockIdx.x * 16;
  // Chunk ch of the k * I values is chunk ch % CH of expert slot ch / CH: the weights of expert
  // indices[slot] ([E * D, I / 8]), scaled by the pair's route weight.
  struct Src : Dense<T, 1, I, GS> {
    const T* h;
    const size_t* slot_row;
    const float* route;
    int tile_rows[2];
    __device__ At at(int ch) const {
      const int slot = ch / CH;
      const size_t base = slot_row[slot];
      return {{base + tile_rows[0], base + tile_rows[1]}, ch - slot * CH, route[slot]};
    }
    __device__ const T* act(int ch) const { return h + ch * 32; }
  };
  const Src src{{{down_weight}, {down_scales}, {down_biases}, {0, 0}}, hr, slot_row, route,
                {min(tile + g, D - 1), min(tile + g + 8, D - 1)}};
  float acc[2] = {0.0f, 0.0f};
  mma_steps<T, 1, GS, CPQ, CHAINS, S, CHUNKS>(src, xsum, acc);
  tile_sum<S, 1>(acc, part);
  if (warp == 0 && lane < 16 && tile + lane < D)
    y[(size_t)token * D + tile + lane] = static_cast<T>(acc[0]);
)";

const mx::fast::CustomKernelFunction& gate_up_kernel() {
  static const auto k = cuda_kernel("ominix_moe_gate_up",
                                    {"x", "gate_weight", "gate_scales", "gate_biases", "up_weight",
                                     "up_scales", "up_biases", "indices"},
                                    {"h"}, kGateUp, quant_cores_header());
  return k;
}

const mx::fast::CustomKernelFunction& down_kernel() {
  static const auto k = cuda_kernel(
      "ominix_moe_down", {"h", "down_weight", "down_scales", "down_biases", "indices", "weights"},
      {"y"}, kDown, quant_cores_header());
  return k;
}

const mx::fast::CustomKernelFunction& gate_up_mma_kernel() {
  static const auto k = cuda_kernel("ominix_moe_gate_up_mma",
                                    {"x", "gate_weight", "gate_scales", "gate_biases", "up_weight",
                                     "up_scales", "up_biases", "indices"},
                                    {"h"}, kGateUpMma, quant_mma_header());
  return k;
}

const mx::fast::CustomKernelFunction& down_mma_kernel() {
  static const auto k =
      cuda_kernel("ominix_moe_down_mma",
                  {"h", "down_weight", "down_scales", "down_biases", "indices", "weights"}, {"y"},
                  kDownMma, quant_mma_header());
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
  const auto& gu = glu.gate_proj;
  const auto& up = glu.up_proj;
  const auto& dn = glu.down_proj;
  using TemplateArgs = std::vector<std::pair<std::string, mx::fast::TemplateArg>>;
  // x is staged in shared memory (K values) and the activation sums of a row's chunks too (K / 32
  // and k * I / 32 floats); the weights are read 16 bytes at a time without an alignment check.
  if (tune.mma && spec.bits == 4 && dt != mx::float32 && K <= 8192 && k * I <= 8192 * 4 &&
      aligned16(gu.weight) && aligned16(up.weight) && aligned16(dn.weight)) {
    const int sg = tune.gate_up_split, sd = tune.down_split;
    const TemplateArgs gate_up_args{{"T", dt},
                                    {"K", K},
                                    {"I", I},
                                    {"GS", spec.group_size},
                                    {"TOPK", k},
                                    {"S", sg},
                                    {"CPQ", mma_chunks(tune.gate_up_chunks, spec.group_size)},
                                    {"CHAINS", mma_chains(tune.gate_up_chains)}};
    const TemplateArgs down_args{{"T", dt},
                                 {"I", I},
                                 {"D", D},
                                 {"GS", spec.group_size},
                                 {"TOPK", k},
                                 {"S", sd},
                                 {"CPQ", mma_chunks(tune.down_chunks, spec.group_size)},
                                 {"CHAINS", mma_chains(tune.down_chains)}};
    auto h = gate_up_mma_kernel()(
        {x, gu.weight, *gu.scales, *gu.biases, up.weight, *up.scales, *up.biases, routes.indices},
        {{tokens * k, I}}, {dt}, {(I + 15) / 16 * 32 * sg, tokens * k, 1}, {32 * sg, 1, 1},
        gate_up_args, std::nullopt, false, {})[0];
    return down_mma_kernel()({h, dn.weight, *dn.scales, *dn.biases, routes.indices, routes.weights},
                             {x.shape()}, {dt}, {(D + 15) / 16 * 32 * sd, tokens, 1},
                             {32 * sd, 1, 1}, down_args, std::nullopt, false, {})[0];
  }
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
  const int block = tune.block;
  auto h = gate_up_kernel()(
      {x, gu.weight, *gu.scales, *gu.biases, up.weight, *up.scales, *up.biases, routes.indices},
      {{tokens * k, I}}, {dt}, {grid_x(I, tune.gate_up_rows, block), tokens * k, 1}, {block, 1, 1},
      gate_up_args, std::nullopt, false, {})[0];
  return down_kernel()({h, dn.weight, *dn.scales, *dn.biases, routes.indices, routes.weights},
                       {x.shape()}, {dt}, {grid_x(D, tune.down_rows, block), tokens, 1},
                       {block, 1, 1}, down_args, std::nullopt, false, {})[0];
}

}  // namespace ominix::nn::detail
