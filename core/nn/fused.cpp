#include "ominix/nn/fused.h"
#include "cuda_source.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
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

constexpr std::int32_t kNoData[1] = {0};  // the data of empty int32 arrays made on the host

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

// One block per (token, head) with D/2 threads, thread i holding elements i and i + D/2 of the
// head. Queries and keys: RMSNorm over the head (rounded to T where fast::rms_norm rounds), then
// RoPE over the first R dims as fast::rope computes it (theta = position / freqs[j] in float;
// pairs (j, j + R/2), or (2j, 2j+1) when TRADITIONAL), the rest passed through; values are
// copied. Output is head-major. D/2 is a multiple of 32, so the block is whole warps.
constexpr const char* kQkvHeads = R"(
  constexpr int HALF = D / 2;
  const int position0 = position_shape[1];
  const int i = threadIdx.x;
  const int row = blockIdx.x;   // b * L + l
  const int head = blockIdx.y;  // query heads, then key heads, then value heads
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
  __shared__ float head_values[D];
  head_values[i] = x1;
  head_values[i + HALF] = x2;
  __syncthreads();
  T* dst = is_q ? queries + (((size_t)b * H + head) * L + l) * D
                : keys + (((size_t)b * KV + (head - H)) * L + l) * D;
  for (int e = i; e < D; e += HALF) {
    float v = head_values[e];
    if (e < R) {
      const bool first = TRADITIONAL ? (e % 2 == 0) : (e < R / 2);
      const int j = TRADITIONAL ? e / 2 : (first ? e : e - R / 2);
      const int partner = TRADITIONAL ? (e ^ 1) : (first ? e + R / 2 : e - R / 2);
      const float p = head_values[partner];
      const float inv_freq = 1.0 / freqs[j];
      const float theta = static_cast<float>(position0 + l) * inv_freq;
      const float c = cos(theta), s = sin(theta);
      v = first ? v * c - p * s : p * s + v * c;
    }
    dst[e] = static_cast<T>(v);
  }
)";

// One block per row, each thread holding PER chunks of VEC = 16 / sizeof(T) elements in
// registers: h = x + r (rounded to T, as mx::add), then RMSNorm of h as fast::rms_norm. x, r and
// the weight are loaded together up front, so the row costs one trip to memory and one block
// reduction.
constexpr const char* kAddRmsNorm = R"(
  constexpr int VEC = 16 / sizeof(T);
  constexpr int CHUNKS = D / VEC;
  const size_t row = blockIdx.x;
  const int t = threadIdx.x;
  float hv[PER][VEC];
  uint4 wv[PER];
  float ss = 0.0f;
#pragma unroll
  for (int p = 0; p < PER; ++p) {
    const int c = t + p * BLOCK;
    if (c >= CHUNKS) break;
    const uint4 xa = ominix_load16(x + row * D + c * VEC);
    const uint4 ra = ominix_load16(r + row * D + c * VEC);
    wv[p] = ominix_load16(weight + c * VEC);
    const T* xt = reinterpret_cast<const T*>(&xa);
    const T* rt = reinterpret_cast<const T*>(&ra);
    uint4 out;
    T* ot = reinterpret_cast<T*>(&out);
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      ot[i] = static_cast<T>(static_cast<float>(xt[i]) + static_cast<float>(rt[i]));
      hv[p][i] = static_cast<float>(ot[i]);
      ss += hv[p][i] * hv[p][i];
    }
    *reinterpret_cast<uint4*>(sum + row * D + c * VEC) = out;
  }
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((t & 31) == 0) partial[t >> 5] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < BLOCK / 32; ++w) total += partial[w];
  const float scale = rsqrtf(total / D + EPS);
#pragma unroll
  for (int p = 0; p < PER; ++p) {
    const int c = t + p * BLOCK;
    if (c >= CHUNKS) break;
    const T* wt = reinterpret_cast<const T*>(&wv[p]);
    uint4 out;
    T* ot = reinterpret_cast<T*>(&out);
#pragma unroll
    for (int i = 0; i < VEC; ++i) ot[i] = wt[i] * static_cast<T>(hv[p][i] * scale);
    *reinterpret_cast<uint4*>(normed + row * D + c * VEC) = out;
  }
)";

// 16 bytes from p: one vector load where p is 16-byte aligned, bytewise otherwise (an input that is
// a view at an odd offset); the branch is the same for every thread of a launch.
constexpr const char* kLoad16 = R"(
__device__ __forceinline__ uint4 ominix_load16(const void* p) {
  if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) return *reinterpret_cast<const uint4*>(p);
  uint4 v;
  const unsigned char* b = reinterpret_cast<const unsigned char*>(p);
  unsigned char* d = reinterpret_cast<unsigned char*>(&v);
  for (int i = 0; i < 16; ++i) d[i] = b[i];
  return v;
}
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
// host-written array the GPU reads remotely on every launch. Looked up on every layer of every
// step: keyed by the kernel's body (a string literal) and epsilon, with nothing allocated unless
// the kernel is new.
const mx::fast::CustomKernelFunction& kernel_with_eps(const char* name,
                                                      std::initializer_list<const char*> inputs,
                                                      std::initializer_list<const char*> outputs,
                                                      const char* body, float eps,
                                                      const char* header = "") {
  static std::mutex mutex;
  static std::map<std::pair<const char*, float>, mx::fast::CustomKernelFunction> kernels;
  std::lock_guard lock(mutex);
  auto it = kernels.find({body, eps});
  if (it == kernels.end()) {
    auto source = fmt::format("  constexpr float EPS = {:.9e}f;\n", eps) + body;
    it = kernels
             .emplace(std::make_pair(body, eps),
                      detail::cuda_kernel(name, {inputs.begin(), inputs.end()},
                                          {outputs.begin(), outputs.end()}, source, header))
             .first;
  }
  return it->second;
}

const mx::fast::CustomKernelFunction& qkv_heads_kernel(float eps) {
  return kernel_with_eps("ominix_qkv_heads", {"qkv", "q_weight", "k_weight", "freqs", "position"},
                         {"queries", "keys", "values"}, kQkvHeads, eps);
}
const mx::fast::CustomKernelFunction& add_rms_norm_kernel(float eps) {
  return kernel_with_eps("ominix_add_rms_norm", {"x", "r", "weight"}, {"sum", "normed"},
                         kAddRmsNorm, eps, kLoad16);
}
const mx::fast::CustomKernelFunction& swiglu_kernel() {
  static const auto k = detail::cuda_kernel("ominix_swiglu", {"gate_up"}, {"out"}, kSwiGLU);
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
  if (o.tables) {
    queries = apply_rotary(queries, *o.tables);
    keys = apply_rotary(keys, *o.tables);
  } else if (o.rope) {
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
      joint && !o.tables && use_cuda_kernels() && x.ndim() == 3 && float_type(joint->dtype()) &&
      Dh > 0 && Dh % 64 == 0 && Dh <= 512 && outs[1] == o.n_kv_heads * Dh && outs[2] == outs[1] &&
      (norm || (!o.q_norm && !o.k_norm)) && rope && rope->dims() % 2 == 0 && rope->dims() <= Dh &&
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
       // input would be a host-written value the GPU reads across the bus in every layer. Made
       // from (no) host data, it is no node of the graph (mx::zeros would be two: Full, Broadcast).
       *rope->fixed_freqs(), mx::array(kNoData, {0, o.offset}, mx::int32)},
      {{B, H, L, Dh}, {B, KV, L, Dh}, {B, KV, L, Dh}}, {dt, dt, dt},
      {B * L * (Dh / 2), H + 2 * KV, 1}, {Dh / 2, 1, 1},
      {{"T", dt},
       {"H", H},
       {"KV", KV},
       {"D", Dh},
       {"R", rope->dims()},
       {"TRADITIONAL", rope->traditional()},
       {"NORM", norm}},
      std::nullopt, false, {});
  return {out[0], out[1], out[2]};
}

AddNorm add_rms_norm(const mx::array& x, const mx::array& r, const RMSNorm& norm) {
  const int D = x.ndim() ? x.shape(-1) : 0;
  if (!use_cuda_kernels() || x.shape() != r.shape() || x.dtype() != r.dtype() ||
      !float_type(x.dtype()) || norm.weight.dtype() != x.dtype() || D % 32 != 0 || D == 0 ||
      D * mx::size_of(x.dtype()) > 128 * 1024 ||  // at most 8 chunks a thread in registers
      norm.weight.shape() != mx::Shape{D}) {
    auto h = mx::add(x, r);
    return {h, norm(h)};
  }
  // Chunks of 16 bytes, whole warps of threads, at most 1024 a block: PER chunks a thread.
  const int chunks = D * static_cast<int>(mx::size_of(x.dtype())) / 16;
  const int threads = std::min((chunks + 31) / 32 * 32, 1024);
  const int per = (chunks + threads - 1) / threads;
  const int rows = static_cast<int>(x.size() / D);
  auto out = add_rms_norm_kernel(norm.eps)(
      {x, r, norm.weight}, {x.shape(), x.shape()}, {x.dtype(), x.dtype()}, {rows * threads, 1, 1},
      {threads, 1, 1}, {{"T", x.dtype()}, {"D", D}, {"BLOCK", threads}, {"PER", per}}, std::nullopt,
      false, {});
  return {out[0], out[1]};
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
