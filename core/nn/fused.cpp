#include "ominix/nn/fused.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <mlx/backend/cuda/cuda.h>
#include <mlx/fast.h>
#include <mlx/ops.h>

namespace ominix::nn {

namespace {

std::atomic<int>& fused_flag() {
  static std::atomic<int> flag = [] {
    const char* v = std::getenv("OMINIX_FUSED_KERNELS");
    return (v && std::string(v) == "0") ? 0 : 1;
  }();
  return flag;
}

// The custom kernels run where MLX runs on CUDA; everywhere else the plain ops do.
bool use_cuda_kernels() {
  return fused_flag().load() && mx::default_device() == mx::Device::gpu && mx::cu::is_available();
}

bool float_type(mx::Dtype t) {
  return t == mx::float32 || t == mx::float16 || t == mx::bfloat16;
}

// One block per (token, head), thread i holding the RoPE pair (i, i + D/2) of that head. Queries
// and keys: RMSNorm over the head (rounded to T where fast::rms_norm rounds), then the rotation
// as fast::rope computes it (theta = position / freqs[i], in float); values are copied. Output
// is head-major. D/2 is a multiple of 32, so the block is whole warps.
constexpr const char* kQkvHeads = R"(
  constexpr int HALF = D / 2;
  const int position0 = position_shape[1];
  const int i = threadIdx.x;
  const int row = blockIdx.x;  // b * L + l
  const int head = blockIdx.y; // query heads, then key heads, then value heads
  const int L = qkv_shape[1];
  const int b = row / L, l = row - b * L;
  const T* src = qkv + ((size_t)row * (H + 2 * KV) + head) * D;
  if (head >= H + KV) {
    T* dst = values + (((size_t)b * KV + (head - H - KV)) * L + l) * D;
    dst[i] = src[i];
    dst[i + HALF] = src[i + HALF];
    return;
  }
  const bool is_q = head < H;
  float x1 = static_cast<float>(src[i]);
  float x2 = static_cast<float>(src[i + HALF]);
  if (NORM) {
    __shared__ float partial[HALF / 32];
    float ss = x1 * x1 + x2 * x2;
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((i & 31) == 0) partial[i >> 5] = ss;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < HALF / 32; ++w) total += partial[w];
    const float r = rsqrtf(total / D + EPS);
    const T* w = is_q ? q_weight : k_weight;
    x1 = static_cast<float>(w[i] * static_cast<T>(x1 * r));
    x2 = static_cast<float>(w[i + HALF] * static_cast<T>(x2 * r));
  }
  const float inv_freq = 1.0 / freqs[i];
  const float theta = static_cast<float>(position0 + l) * inv_freq;
  const float c = cos(theta), s = sin(theta);
  T* dst = is_q ? queries + (((size_t)b * H + head) * L + l) * D
                : keys + (((size_t)b * KV + (head - H)) * L + l) * D;
  dst[i] = static_cast<T>(x1 * c - x2 * s);
  dst[i + HALF] = static_cast<T>(x1 * s + x2 * c);
)";

// One block per row: h = x + r (rounded to T, as mx::add), then RMSNorm of h as fast::rms_norm.
// Each thread reads back only the elements it wrote. The block is whole warps.
constexpr const char* kAddRmsNorm = R"(
  const size_t row = blockIdx.x;
  const T* xr = x + row * D;
  const T* rr = r + row * D;
  T* hr = sum + row * D;
  T* nr = normed + row * D;
  float ss = 0.0f;
  for (int j = threadIdx.x; j < D; j += blockDim.x) {
    const T v = static_cast<T>(static_cast<float>(xr[j]) + static_cast<float>(rr[j]));
    hr[j] = v;
    const float f = static_cast<float>(v);
    ss += f * f;
  }
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < (int)(blockDim.x / 32); ++w) total += partial[w];
  const float scale = rsqrtf(total / D + EPS);
  for (int j = threadIdx.x; j < D; j += blockDim.x)
    nr[j] = weight[j] * static_cast<T>(static_cast<float>(hr[j]) * scale);
)";

// silu(gate) * up over a joint [..., 2I] row, each op rounded to T as the compiled plain path.
constexpr const char* kSwiGLU = R"(
  const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  size_t rows = 1;
  for (int d = 0; d < gate_up_ndim - 1; ++d) rows *= gate_up_shape[d];
  if (idx >= rows * I) return;
  const size_t row = idx / I, j = idx - row * I;
  const float g = static_cast<float>(gate_up[row * 2 * I + j]);
  const float u = static_cast<float>(gate_up[row * 2 * I + I + j]);
  const float s = static_cast<float>(static_cast<T>(1.0f / (1.0f + expf(-g))));
  const float a = static_cast<float>(static_cast<T>(g * s));
  out[idx] = static_cast<T>(a * u);
)";

// A kernel per epsilon, baked into its source as EPS: a scalar input would be a small
// host-written array the GPU reads remotely on every launch.
const mx::fast::CustomKernelFunction& kernel_with_eps(const char* name,
                                                      const std::vector<std::string>& inputs,
                                                      const std::vector<std::string>& outputs,
                                                      const char* body, float eps) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, float>, mx::fast::CustomKernelFunction> kernels;
  std::lock_guard lock(mutex);
  auto key = std::make_pair(std::string(name), eps);
  auto it = kernels.find(key);
  if (it == kernels.end()) {
    auto source = fmt::format("  constexpr float EPS = {:.9e}f;\n", eps) + body;
    it = kernels.emplace(key, mx::fast::cuda_kernel(name, inputs, outputs, source)).first;
  }
  return it->second;
}

const mx::fast::CustomKernelFunction& qkv_heads_kernel(float eps) {
  return kernel_with_eps("ominix_qkv_heads", {"qkv", "q_weight", "k_weight", "freqs", "position"},
                         {"queries", "keys", "values"}, kQkvHeads, eps);
}
const mx::fast::CustomKernelFunction& add_rms_norm_kernel(float eps) {
  return kernel_with_eps("ominix_add_rms_norm", {"x", "r", "weight"}, {"sum", "normed"},
                         kAddRmsNorm, eps);
}
// y = x W^T for a single row x [K] and W [N, K] in bf16/fp16: one block of 128 threads per
// output row, thread t reading the row's 16-byte chunks t, t+128, ... all issued before any is
// used, so that every SM has enough loads in flight to stream W at the memory bandwidth (one
// warp per row, as MLX's GEMV, under-fills the card when rows are long and few). Pointers that
// are not 16-byte aligned take a plain element loop.
constexpr const char* kGemvHeader = R"(
template <typename T> struct ominix_vec2;
template <> struct ominix_vec2<__nv_bfloat16> { using type = __nv_bfloat162; };
template <> struct ominix_vec2<__half> { using type = __half2; };
__device__ inline float2 ominix_to_float2(__nv_bfloat162 v) { return __bfloat1622float2(v); }
__device__ inline float2 ominix_to_float2(__half2 v) { return __half22float2(v); }
template <typename T2>
__device__ inline float ominix_dot8(const uint4& w, const uint4& x) {
  const T2* wp = reinterpret_cast<const T2*>(&w);
  const T2* xp = reinterpret_cast<const T2*>(&x);
  float acc = 0.0f;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 a = ominix_to_float2(wp[j]), b = ominix_to_float2(xp[j]);
    acc += a.x * b.x + a.y * b.y;
  }
  return acc;
}
)";
constexpr const char* kGemv = R"(
  using T2 = typename ominix_vec2<T>::type;
  constexpr int THREADS = 128;
  constexpr int CHUNKS = K / 8;                          // 16-byte chunks in a row
  constexpr int ITER = (CHUNKS + THREADS - 1) / THREADS;  // per thread
  const int t = threadIdx.x;
  const int row = blockIdx.x;
  const T* wrow = weight + (size_t)row * K;
  float acc = 0.0f;
  if ((((size_t)wrow) & 15) == 0 && (((size_t)x) & 15) == 0) {
    const uint4* w = reinterpret_cast<const uint4*>(wrow);
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    uint4 wr[ITER];
#pragma unroll
    for (int i = 0; i < ITER; ++i)
      if (i * THREADS + t < CHUNKS) wr[i] = w[i * THREADS + t];
#pragma unroll
    for (int i = 0; i < ITER; ++i)
      if (i * THREADS + t < CHUNKS) acc += ominix_dot8<T2>(wr[i], xv[i * THREADS + t]);
  } else {
    for (int k = t; k < K; k += THREADS)
      acc += static_cast<float>(wrow[k]) * static_cast<float>(x[k]);
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  __shared__ float partial[THREADS / 32];
  if ((t & 31) == 0) partial[t >> 5] = acc;
  __syncthreads();
  if (t == 0) {
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < THREADS / 32; ++i) sum += partial[i];
    y[row] = static_cast<T>(sum);
  }
)";

const mx::fast::CustomKernelFunction& gemv_kernel() {
  static const auto k =
      mx::fast::cuda_kernel("ominix_gemv", {"x", "weight"}, {"y"}, kGemv, kGemvHeader);
  return k;
}

const mx::fast::CustomKernelFunction& swiglu_kernel() {
  static const auto k = mx::fast::cuda_kernel("ominix_swiglu", {"gate_up"}, {"out"}, kSwiGLU);
  return k;
}

// The reference path: split, per-head norm, head-major, RoPE — as the models wrote it.
Heads qkv_heads_plain(std::vector<mx::array> qkv, const QkvHeadsOptions& o) {
  const int B = qkv[0].shape(0), L = qkv[0].shape(1);
  auto queries = mx::reshape(qkv[0], {B, L, o.n_heads, -1});  // [B,L,H*Dh] -> [B,L,H,Dh]
  auto keys = mx::reshape(qkv[1], {B, L, o.n_kv_heads, -1});
  auto values = mx::reshape(qkv[2], {B, L, o.n_kv_heads, -1});
  if (o.q_norm) queries = (*o.q_norm)(queries);
  if (o.k_norm) keys = (*o.k_norm)(keys);
  queries = mx::transpose(queries, {0, 2, 1, 3});  // -> [B,H,L,Dh]
  keys = mx::transpose(keys, {0, 2, 1, 3});
  values = mx::transpose(values, {0, 2, 1, 3});
  if (o.rope) {
    queries = (*o.rope)(queries, o.offset);
    keys = (*o.rope)(keys, o.offset);
  }
  return {queries, keys, values};
}

}  // namespace

bool fused_kernels_enabled() {
  return fused_flag().load() != 0;
}
void set_fused_kernels(bool enabled) {
  fused_flag().store(enabled ? 1 : 0);
}

Heads qkv_heads(const FusedLinear& qkv_proj, const mx::array& x, const QkvHeadsOptions& o) {
  auto joint = qkv_proj.joint(x);
  const auto& outs = qkv_proj.out_features();
  const int Dh = outs.size() == 3 && o.n_heads > 0 ? outs[0] / o.n_heads : 0;
  const bool norm = o.q_norm && o.k_norm;
  const auto* rope = o.rope;
  const bool fusable =
      joint && use_cuda_kernels() && x.ndim() == 3 && float_type(joint->dtype()) && Dh > 0 &&
      Dh % 64 == 0 && Dh <= 512 && outs[1] == o.n_kv_heads * Dh && outs[2] == outs[1] &&
      (norm || (!o.q_norm && !o.k_norm)) && rope && rope->dims() == Dh && !rope->traditional() &&
      rope->attention_scaling() == 1.0f && rope->fixed_freqs() &&
      (!norm || (o.q_norm->weight.dtype() == joint->dtype() &&
                 o.k_norm->weight.dtype() == joint->dtype() && o.q_norm->eps == o.k_norm->eps));
  if (!fusable) {
    if (!joint) return qkv_heads_plain(qkv_proj(x), o);
    return qkv_heads_plain(mx::split(*joint, {outs[0], outs[0] + outs[1]}, -1), o);
  }
  const int B = x.shape(0), L = x.shape(1), H = o.n_heads, KV = o.n_kv_heads;
  const auto dt = joint->dtype();
  auto out = qkv_heads_kernel(norm ? o.q_norm->eps : 0.0f)(
      {*joint, norm ? o.q_norm->weight : *joint, norm ? o.k_norm->weight : *joint,
       // The position rides in the shape of an empty array, passed by value at launch: a scalar
       // input would be a host-written value the GPU reads across the bus in every layer.
       *rope->fixed_freqs(), mx::zeros({0, o.offset}, mx::int32)},
      {{B, H, L, Dh}, {B, KV, L, Dh}, {B, KV, L, Dh}}, {dt, dt, dt},
      {B * L * (Dh / 2), H + 2 * KV, 1}, {Dh / 2, 1, 1},
      {{"T", dt}, {"H", H}, {"KV", KV}, {"D", Dh}, {"NORM", norm}}, std::nullopt, false, {});
  return {out[0], out[1], out[2]};
}

AddNorm add_rms_norm(const mx::array& x, const mx::array& r, const RMSNorm& norm) {
  const int D = x.ndim() ? x.shape(-1) : 0;
  if (!use_cuda_kernels() || x.shape() != r.shape() || x.dtype() != r.dtype() ||
      !float_type(x.dtype()) || norm.weight.dtype() != x.dtype() || D % 32 != 0 || D == 0 ||
      norm.weight.shape() != mx::Shape{D}) {
    auto h = mx::add(x, r);
    return {h, norm(h)};
  }
  const int rows = static_cast<int>(x.size() / D);
  const int threads = std::min(D, 1024);
  auto out = add_rms_norm_kernel(norm.eps)(
      {x, r, norm.weight}, {x.shape(), x.shape()}, {x.dtype(), x.dtype()}, {rows * threads, 1, 1},
      {threads, 1, 1}, {{"T", x.dtype()}, {"D", D}}, std::nullopt, false, {});
  return {out[0], out[1]};
}

std::optional<mx::array> decode_gemv(const mx::array& x, const mx::array& weight) {
  // OMINIX_DECODE_GEMV=0 leaves every matmul to MLX (A/B runs of this kernel alone).
  static const bool enabled = [] {
    const char* v = std::getenv("OMINIX_DECODE_GEMV");
    return !(v && std::string(v) == "0");
  }();
  if (!enabled || !use_cuda_kernels() || weight.ndim() != 2 || x.ndim() < 1) return std::nullopt;
  const int N = weight.shape(0), K = weight.shape(1);
  const auto dt = weight.dtype();
  if ((dt != mx::bfloat16 && dt != mx::float16) || x.dtype() != dt || x.shape(-1) != K ||
      x.size() != static_cast<std::size_t>(K) || K % 256 != 0)
    return std::nullopt;
  auto shape = x.shape();
  shape.back() = N;
  constexpr int threads = 128;  // as the kernel's THREADS
  return gemv_kernel()({x, weight}, {shape}, {dt}, {N * threads, 1, 1}, {threads, 1, 1},
                       {{"T", dt}, {"N", N}, {"K", K}}, std::nullopt, false, {})[0];
}

mx::array gated_joint(Activation act, const mx::array& gate_up) {
  const int I = gate_up.shape(-1) / 2;
  if (act != Activation::silu || !use_cuda_kernels() || !float_type(gate_up.dtype())) {
    auto parts = mx::split(gate_up, 2, -1);
    return gated(act, parts[0], parts[1]);
  }
  auto shape = gate_up.shape();
  shape.back() = I;
  const auto n = static_cast<std::size_t>(gate_up.size() / 2);
  const int threads = 256;
  const int grid = static_cast<int>((n + threads - 1) / threads) * threads;
  return swiglu_kernel()({gate_up}, {shape}, {gate_up.dtype()}, {grid, 1, 1}, {threads, 1, 1},
                         {{"T", gate_up.dtype()}, {"I", I}}, std::nullopt, false, {})[0];
}

}  // namespace ominix::nn
