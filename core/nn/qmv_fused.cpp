// y = x W^T over MLX's affine-quantized weights for a few rows of x, as one CUDA kernel. MLX 0.32's
// CUDA qmv moved 10.6 MB in 9 µs (a third of the copy bandwidth) in the Qwen3-30B-A3B profile;
// this kernel is laid out as the MoE expert kernels are (quant_cuda.h): a warp per R output rows,
// lanes striding over 16-byte chunks of the rows, U chunks a lane loaded ahead, float32 sums.
#include "qmv_fused.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <mlx/backend/cuda/cuda.h>
#include <mlx/fast.h>
#include <mlx/ops.h>

#include "cuda_source.h"
#include "ominix/nn/fused.h"
#include "quant_cuda.h"

namespace ominix::nn::detail {

const QuantTuning& quant_tuning() {
  static const QuantTuning tuning = [] {
    QuantTuning t;
    const char* v = std::getenv("OMINIX_QUANT_TUNE");
    if (!v) return t;
    const std::pair<const char*, int*> fields[] = {{"qmv_rows", &t.qmv_rows},
                                                   {"qmv_unroll", &t.qmv_unroll},
                                                   {"gate_up_rows", &t.gate_up_rows},
                                                   {"gate_up_unroll", &t.gate_up_unroll},
                                                   {"down_rows", &t.down_rows},
                                                   {"down_unroll", &t.down_unroll},
                                                   {"block", &t.block},
                                                   {"mma", &t.mma},
                                                   {"qmv_split", &t.qmv_split},
                                                   {"qmv_split_small", &t.qmv_split_small},
                                                   {"gate_up_split", &t.gate_up_split},
                                                   {"down_split", &t.down_split},
                                                   {"qmv_min", &t.qmv_min},
                                                   {"qmv_chunks", &t.qmv_chunks},
                                                   {"gate_up_chunks", &t.gate_up_chunks},
                                                   {"down_chunks", &t.down_chunks},
                                                   {"qmv_chains", &t.qmv_chains},
                                                   {"gate_up_chains", &t.gate_up_chains},
                                                   {"down_chains", &t.down_chains}};
    std::string s(v);
    std::size_t at = 0;
    while (at < s.size()) {
      auto end = s.find(',', at);
      if (end == std::string::npos) end = s.size();
      const auto item = s.substr(at, end - at);
      const auto eq = item.find('=');
      for (const auto& [name, field] : fields)
        if (eq != std::string::npos && item.compare(0, eq, name) == 0 && std::strlen(name) == eq) {
          const int n = std::atoi(item.c_str() + eq + 1);
          const bool ok = std::strcmp(name, "block") == 0 ? n >= 32 && n <= 1024 && n % 32 == 0
                          : std::strcmp(name, "mma") == 0 ? n == 0 || n == 1
                                                          : n >= 1 && n <= 32;
          if (ok) *field = n;
        }
      at = end + 1;
    }
    return t;
  }();
  return tuning;
}

namespace {

// Rows of x up to which the kernel runs: each row dequantizes the weights again (from registers),
// so past 4 rows MLX's kernels win (bench/kernels: at 8 rows of GLM-4-9B's gate_up ours took 3.5x
// MLX's time, at 4 rows half of it).
constexpr int kMaxRows = 4;

// Weights (out x in) from which the kernels run: QuantTuning::qmv_min, 4096 x 4096 by default.
// Smaller matrices give the CUDA-core kernel too few warps to hide the memory latency, as it does
// not split the rows' K across warps: with it, Qwen3-30B-A3B's attention projections (2048 x 4096,
// 5120 x 2048) made decode 7% slower than MLX's qmv (H100, bench/llm --qmv-ab), while 4096 x 4096
// and up won.

constexpr const char* kQmv = R"(
  using namespace ominix_q;
  using L = Row<K, BITS, GS>;
  const int lane = threadIdx.x & 31;
  const int row0 = first_row<R>();
  if (row0 >= N) return;
  float acc[M * R];
#pragma unroll
  for (int i = 0; i < M * R; ++i) acc[i] = 0.0f;
  for (int base = 0; base < L::CHUNKS; base += 32 * U) {
    Chunk w[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = base + u * 32 + lane;
      if (c >= L::CHUNKS) continue;
#pragma unroll
      for (int r = 0; r < R; ++r)
        w[u][r] = load_chunk<K, BITS, GS>(weight, scales, biases, min(row0 + r, N - 1), c);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = base + u * 32 + lane;
      if (c >= L::CHUNKS) continue;
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float xs[L::VPC];
        const float s = load_x<T, BITS>(x + (size_t)m * K + (size_t)c * L::VPC, 1.0f, xs);
#pragma unroll
        for (int r = 0; r < R; ++r) acc[m * R + r] += chunk_dot<BITS>(w[u][r], xs, s);
      }
    }
  }
  warp_sum<M * R>(acc);
#pragma unroll
  for (int i = 0; i < M * R; ++i)
    if (lane == i % 32 && row0 + i % R < N)
      y[(size_t)(i / R) * N + row0 + i % R] = static_cast<T>(acc[i]);
)";

// One row of x against 4-bit weights and bfloat16/float16 x on the tensor cores (quant_cuda.h),
// laid out as the MoE down kernel: a block of S warps per 16 output rows, the row's chunks split
// between the warps; x and its chunk sums are staged in shared memory first.
constexpr const char* kQmvMma = R"(
  using namespace ominix_q;
  constexpr int CHUNKS = K / 32;
  __shared__ __align__(16) T xr[K / 32 * XPITCH];
  __shared__ float xsum[CHUNKS];
  __shared__ float part[S][1][16];
  for (int c = threadIdx.x; c < CHUNKS; c += blockDim.x) xsum[c] = chunk_sum(x + c * 32, xr + c * XPITCH);
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2;
  const int tile = blockIdx.x * 16;
  struct Src : Dense<T, 1, K, GS> {  // rows g, g + 8 of the tile
    const T* x;
    __device__ const T* act(int ch) const { return x + ch * XPITCH; }
  };
  const Src src{{{weight}, {scales}, {biases}, {(size_t)min(tile + g, N - 1), (size_t)min(tile + g + 8, N - 1)}}, xr};
  float acc[2] = {0.0f, 0.0f};
  mma_steps<T, 1, GS, CPQ, CHAINS, S, CHUNKS>(src, xsum, acc);
  tile_sum<S, 1>(acc, part);
  if (warp == 0 && lane < 16 && tile + lane < N) y[tile + lane] = static_cast<T>(acc[0]);
)";

const mx::fast::CustomKernelFunction& qmv_mma_kernel() {
  static const auto k = cuda_kernel("ominix_qmv_mma", {"x", "weight", "scales", "biases"}, {"y"},
                                    kQmvMma, quant_mma_header());
  return k;
}

const mx::fast::CustomKernelFunction& qmv_kernel() {
  static const auto k = cuda_kernel("ominix_qmv", {"x", "weight", "scales", "biases"}, {"y"}, kQmv,
                                    quant_cores_header());
  return k;
}

bool enabled_by_env() {
  static const bool on = [] {
    const char* v = std::getenv("OMINIX_QMV_FUSED");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

}  // namespace

std::optional<mx::array> fused_qmv(const QuantizedLinear& l, const mx::array& x) {
  if (!fused_kernels_enabled() || !enabled_by_env() || mx::default_device() != mx::Device::gpu ||
      !mx::cu::is_available())
    return std::nullopt;
  const auto dt = x.dtype();
  const auto& spec = l.spec;
  if (dt != mx::float32 && dt != mx::float16 && dt != mx::bfloat16) return std::nullopt;
  if (spec.mode != io::QuantMode::affine || (spec.bits != 4 && spec.bits != 8) ||
      (spec.group_size != 32 && spec.group_size != 64 && spec.group_size != 128))
    return std::nullopt;
  if (!l.biases || l.weight.ndim() != 2 || l.weight.dtype() != mx::uint32 ||
      l.scales.dtype() != dt || l.biases->dtype() != dt || x.ndim() < 1)
    return std::nullopt;
  const int N = l.scales.shape(0), K = x.shape(-1);
  if (K % spec.group_size != 0 || l.scales.shape(1) != K / spec.group_size ||
      l.weight.shape(1) != K * spec.bits / 32)
    return std::nullopt;
  const int M = K > 0 ? int(x.size() / K) : 0;
  const auto& tune = quant_tuning();
  if (M < 1 || M > kMaxRows || double(N) * K < tune.qmv_min * double(1 << 20)) return std::nullopt;

  auto out_shape = x.shape();
  out_shape.back() = N;
  // x and its chunk sums are staged in shared memory (K values); the weights are read 16 bytes at
  // a time without an alignment check.
  if (tune.mma && M == 1 && spec.bits == 4 && dt != mx::float32 && K <= 8192 &&
      aligned16(l.weight)) {
    const int S = N < 1024 * 16 ? tune.qmv_split_small : tune.qmv_split;
    return qmv_mma_kernel()({x, l.weight, l.scales, *l.biases}, {out_shape}, {dt},
                            {(N + 15) / 16 * 32 * S, 1, 1}, {32 * S, 1, 1},
                            {{"T", dt},
                             {"K", K},
                             {"N", N},
                             {"GS", spec.group_size},
                             {"S", S},
                             {"CPQ", mma_chunks(tune.qmv_chunks, spec.group_size)},
                             {"CHAINS", mma_chains(tune.qmv_chains)}},
                            std::nullopt, false, {})[0];
  }
  const int R = tune.qmv_rows, block = tune.block;
  const std::vector<std::pair<std::string, mx::fast::TemplateArg>> args{{"T", dt},
                                                                        {"K", K},
                                                                        {"N", N},
                                                                        {"M", M},
                                                                        {"BITS", spec.bits},
                                                                        {"GS", spec.group_size},
                                                                        {"R", R},
                                                                        {"U", tune.qmv_unroll}};
  return qmv_kernel()({x, l.weight, l.scales, *l.biases}, {out_shape}, {dt},
                      {grid_x(N, R, block), 1, 1}, {block, 1, 1}, args, std::nullopt, false, {})[0];
}

}  // namespace ominix::nn::detail
