// MoE router and combine: one custom kernel each on CUDA and Metal, plain MLX ops elsewhere.
// ref: transformers 5.24.0 modeling_qwen3_moe.py (Qwen3MoeTopKRouter), modeling_mixtral.py
// (MixtralTopKRouter), modeling_glm4_moe.py (Glm4MoeTopkRouter,
// Glm4MoeMoE.route_tokens_to_experts); the kernel conventions are MLX 0.32's mx::fast::cuda_kernel
// / metal_kernel (the body below is the kernel's body; inputs, outputs, `<input>_shape`/`_ndim` and
// the template constants are in scope; the grid counts threads).
//
// Kernel layout: the router gives each row (token) one warp / SIMD group of 32 lanes; lane l holds
// experts l, l + 32, ... (E <= 1024) and k rounds of a butterfly arg-max pick the experts, best
// first, ties to the lower index. The combine gives each output element one thread.
#include "ominix/nn/moe.h"
#include "cuda_source.h"
#include "quant_cuda.h"

#include <mlx/backend/cuda/cuda.h>
#include <mlx/backend/metal/metal.h>
#include <mlx/fast.h>
#include <mlx/ops.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "ominix/base/error.h"

namespace ominix::nn {
namespace {

constexpr int kWarp = 32;
constexpr int kMaxExperts = 32 * kWarp;  // 32 experts per lane: one bit each in `taken`
constexpr int kMaxTopK = 32;
constexpr int kGateBlock = 1024;     // threads of the gate-and-route kernel, one block a row
constexpr int kMaxGateRows = 16;     // more rows: the matmul (all SMs) and the router kernel
constexpr int kMaxGateWidth = 8192;  // D floats of x in shared memory

// Kernel helpers, one set per backend, so the bodies below read the same on both.
constexpr const char* kCudaHeader = R"(
__device__ __forceinline__ float moe_f(float x) { return x; }
__device__ __forceinline__ float moe_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float moe_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void moe_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void moe_store(__half* p, float v) { *p = __float2half(v); }
__device__ __forceinline__ void moe_store(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }
// As MLX's Sigmoid, so the choice scores equal mx::sigmoid's bit for bit.
__device__ __forceinline__ float moe_sigmoid(float x) {
  const float y = 1.0f / (1.0f + expf(fabsf(x)));
  return x < 0.0f ? y : 1.0f - y;
}
#define MOE_SHFL_XOR(v, m) __shfl_xor_sync(0xffffffffu, (v), (m))
#define MOE_EXP(x) expf(x)
#define MOE_INF __int_as_float(0x7f800000)
#define MOE_BITS_TO_FLOAT(b) __int_as_float(b)
)";

constexpr const char* kCudaPrologue =
    "  const unsigned int moe_tid = blockIdx.x * blockDim.x + threadIdx.x;\n";

constexpr const char* kMetalHeader = R"(
#define moe_f(x) static_cast<float>(x)
inline float moe_sigmoid(float x) {
  const float y = 1.0f / (1.0f + metal::exp(metal::abs(x)));
  return x < 0.0f ? y : 1.0f - y;
}
#define MOE_SHFL_XOR(v, m) simd_shuffle_xor((v), ushort(m))
#define MOE_EXP(x) metal::exp(x)
#define MOE_INF as_type<float>(0x7f800000)
#define MOE_BITS_TO_FLOAT(b) as_type<float>(int(b))
)";

constexpr const char* kMetalPrologue = "  const uint moe_tid = thread_position_in_grid.x;\n";

// --- router -------------------------------------------------------------------------------------
// Template constants: NE experts, NK chosen, NORM, NG groups, NTG groups kept, SCALE_BITS (the
// routed scaling factor's float bits). Inputs: logits [..., NE] (+ bias [NE]); outputs: indices and
// weights [..., NK].

constexpr const char* kRouterRow = R"(
  constexpr int PER = (NE + 31) / 32;
  const int lane = int(moe_tid & 31u);
  const int row = int(moe_tid >> 5);
  int rows = 1;
  for (int d = 0; d < logits_ndim - 1; ++d) rows *= logits_shape[d];
  if (row >= rows) return;
  const int base = row * NE;
)";

constexpr const char* kRouterLoad = R"(
  float key[PER];
  unsigned int taken = 0u;  // bit j: expert lane + 32 j is chosen, or past the end
  for (int j = 0; j < PER; ++j) {
    const int e = lane + 32 * j;
    if (e < NE) {
      key[j] = MOE_KEY(e);
    } else {
      key[j] = -MOE_INF;
      taken |= 1u << j;
    }
  }
)";

// Keeps the NTG groups whose two best choice scores sum highest (ties: lower group); the experts of
// the other groups score -inf. Lane g < NG scores group g.
constexpr const char* kRouterGroups = R"(
  if (NG > 1 && NTG < NG) {
    constexpr int GS = NE / NG;
    float gscore = -MOE_INF;
    int gidx = 0x7fffffff;
    if (lane < NG) {
      float m1 = -MOE_INF, m2 = -MOE_INF;
      for (int i = 0; i < GS; ++i) {
        const float v = MOE_KEY(lane * GS + i);
        if (v > m1) {
          m2 = m1;
          m1 = v;
        } else if (v > m2) {
          m2 = v;
        }
      }
      gscore = m1 + m2;
      gidx = lane;
    }
    unsigned int kept = 0u;
    for (int r = 0; r < NTG; ++r) {
      float bv = gscore;
      int bi = gidx;
      if (lane < NG && ((kept >> lane) & 1u)) {
        bv = -MOE_INF;
        bi = 0x7fffffff;
      }
      for (int off = 16; off > 0; off >>= 1) {
        const float ov = MOE_SHFL_XOR(bv, off);
        const int oi = MOE_SHFL_XOR(bi, off);
        if (ov > bv || (ov == bv && oi < bi)) {
          bv = ov;
          bi = oi;
        }
      }
      kept |= 1u << bi;
    }
    for (int j = 0; j < PER; ++j) {
      const int e = lane + 32 * j;
      if (e < NE && !((kept >> (e / GS)) & 1u)) key[j] = -MOE_INF;
    }
  }
)";

// The router with its logits: x [rows, D] times gate_weight [E, D] (type W) transposed, one block
// of 1024 threads a row. x goes to shared memory in float32; each warp takes experts warp,
// warp + 32, ... and each lane 16-byte chunks of the expert's row; the sums, rounded to LT (the
// type of the reference's matmul), go to shared memory, where the first warp routes as above.
// Template constants: D (a multiple of 32 * 16 / sizeof(W)), W, LT, and the router's.
constexpr const char* kGateRow = R"(
  constexpr int PER = (NE + 31) / 32;
  constexpr int VEC = 16 / int(sizeof(W));
  __shared__ float moe_x[D];
  __shared__ float moe_logit[NE];
  const int row = int(blockIdx.y);
  for (int i = int(threadIdx.x); i < D; i += int(blockDim.x)) moe_x[i] = moe_f(x[row * D + i]);
  __syncthreads();
  {
    const int l = int(threadIdx.x & 31u);
    for (int e = int(threadIdx.x >> 5); e < NE; e += int(blockDim.x >> 5)) {
      const W* wrow = gate_weight + size_t(e) * D;
      float acc = 0.0f;
#pragma unroll
      for (int c = 0; c < D / (32 * VEC); ++c) {
        const int i = (c * 32 + l) * VEC;
        const uint4 v = *reinterpret_cast<const uint4*>(wrow + i);
        const W* wv = reinterpret_cast<const W*>(&v);
#pragma unroll
        for (int t = 0; t < VEC; ++t) acc += moe_f(wv[t]) * moe_x[i + t];
      }
      for (int off = 16; off > 0; off >>= 1) acc += MOE_SHFL_XOR(acc, off);
      if (l == 0) moe_logit[e] = moe_f(LT(acc));
    }
  }
  __syncthreads();
  if (threadIdx.x >= 32u) return;
  const int lane = int(threadIdx.x);
  (void)moe_tid;
)";

// NK rounds: each lane's best untaken expert, then the best over the warp (ties: lower index).
constexpr const char* kRouterSelect = R"(
  float sel_key[NK];
  int sel_idx[NK];
  for (int r = 0; r < NK; ++r) {
    float bv = -MOE_INF;
    int bi = 0x7fffffff;
    for (int j = 0; j < PER; ++j) {
      const int e = lane + 32 * j;
      if (!((taken >> j) & 1u) && (key[j] > bv || (key[j] == bv && e < bi))) {
        bv = key[j];
        bi = e;
      }
    }
    for (int off = 16; off > 0; off >>= 1) {
      const float ov = MOE_SHFL_XOR(bv, off);
      const int oi = MOE_SHFL_XOR(bi, off);
      if (ov > bv || (ov == bv && oi < bi)) {
        bv = ov;
        bi = oi;
      }
    }
    sel_key[r] = bv;
    sel_idx[r] = bi;
    if ((bi & 31) == lane) taken |= 1u << (bi >> 5);
  }
  float w[NK];
  float wsum = 0.0f;
)";

// Routing::softmax: probabilities over all NE (the max is the first choice's logit).
constexpr const char* kWeightsSoftmax = R"(
  const float m = sel_key[0];
  float s = 0.0f;
  for (int j = 0; j < PER; ++j) {
    if (lane + 32 * j < NE) s += MOE_EXP(key[j] - m);
  }
  for (int off = 16; off > 0; off >>= 1) s += MOE_SHFL_XOR(s, off);
  for (int r = 0; r < NK; ++r) {
    w[r] = MOE_EXP(sel_key[r] - m) / s;
    wsum += w[r];
  }
  if (NORM) {
    for (int r = 0; r < NK; ++r) w[r] = w[r] / wsum;
  }
)";

// Routing::softmax_topk: softmax over the NK chosen logits.
constexpr const char* kWeightsSoftmaxTopk = R"(
  const float m = sel_key[0];
  for (int r = 0; r < NK; ++r) {
    w[r] = MOE_EXP(sel_key[r] - m);
    wsum += w[r];
  }
  for (int r = 0; r < NK; ++r) w[r] = w[r] / wsum;
)";

// Routing::sigmoid_grouped: the un-biased sigmoid of the chosen experts.
constexpr const char* kWeightsSigmoid = R"(
  for (int r = 0; r < NK; ++r) {
    w[r] = moe_sigmoid(MOE_LOGIT(sel_idx[r]));
    wsum += w[r];
  }
  if (NORM) {
    for (int r = 0; r < NK; ++r) w[r] = w[r] / (wsum + 1e-20f);
  }
  for (int r = 0; r < NK; ++r) w[r] = w[r] * MOE_BITS_TO_FLOAT(SCALE_BITS);
  (void)sel_key;
)";

constexpr const char* kRouterStore = R"(
  if (lane == 0) {
    for (int r = 0; r < NK; ++r) {
      indices[row * NK + r] = uint32_t(sel_idx[r]);
      weights[row * NK + r] = w[r];
    }
  }
)";

// --- combine ------------------------------------------------------------------------------------
// Template constants: NK experts, ND width (and T, the output type, on Metal). Inputs y [..., NK,
// ND] and w [..., NK]; output out [..., ND].
constexpr const char* kCombineBody = R"(
  int rows = 1;
  for (int d = 0; d < w_ndim - 1; ++d) rows *= w_shape[d];
  const int i = int(moe_tid);
  if (i >= rows * ND) return;
  const int row = i / ND;
  const int col = i - row * ND;
  float acc = 0.0f;
  for (int j = 0; j < NK; ++j) acc += moe_f(y[(row * NK + j) * ND + col]) * moe_f(w[row * NK + j]);
)";

bool metal() {
  return mx::metal::is_available();
}

mx::fast::CustomKernelFunction make_kernel(const std::string& name,
                                           const std::vector<std::string>& inputs,
                                           const std::vector<std::string>& outputs,
                                           const std::string& body) {
  if (metal())
    return mx::fast::metal_kernel(name, inputs, outputs, kMetalPrologue + body, kMetalHeader);
  return detail::cuda_kernel(name, inputs, outputs, kCudaPrologue + body, kCudaHeader);
}

// `gate`: the kernel computes the logits itself (kGateRow, CUDA only) instead of reading them.
std::string router_body(Routing routing, bool gate = false) {
  const std::string logit = gate ? "#define MOE_LOGIT(e) moe_logit[(e)]\n"
                                 : "#define MOE_LOGIT(e) moe_f(logits[base + (e)])\n";
  const std::string key =
      routing == Routing::sigmoid_grouped
          ? "#define MOE_KEY(e) (moe_sigmoid(MOE_LOGIT(e)) + moe_f(bias[(e)]))\n"
          : "#define MOE_KEY(e) MOE_LOGIT(e)\n";
  std::string body = logit + key + (gate ? kGateRow : kRouterRow) + kRouterLoad;
  if (routing == Routing::sigmoid_grouped) body += kRouterGroups;
  body += kRouterSelect;
  body += routing == Routing::softmax        ? kWeightsSoftmax
          : routing == Routing::softmax_topk ? kWeightsSoftmaxTopk
                                             : kWeightsSigmoid;
  return body + kRouterStore + "#undef MOE_KEY\n#undef MOE_LOGIT\n";
}

// The one of a family's three kernels that serves `routing`.
const mx::fast::CustomKernelFunction& by_routing(Routing routing,
                                                 const mx::fast::CustomKernelFunction& softmax,
                                                 const mx::fast::CustomKernelFunction& softmax_topk,
                                                 const mx::fast::CustomKernelFunction& sigmoid) {
  switch (routing) {
    case Routing::softmax:
      return softmax;
    case Routing::softmax_topk:
      return softmax_topk;
    case Routing::sigmoid_grouped:
      break;
  }
  return sigmoid;
}

const mx::fast::CustomKernelFunction& router_kernel(Routing routing) {
  static const auto softmax = make_kernel("ominix_moe_route_softmax", {"logits"},
                                          {"indices", "weights"}, router_body(Routing::softmax));
  static const auto softmax_topk =
      make_kernel("ominix_moe_route_softmax_topk", {"logits"}, {"indices", "weights"},
                  router_body(Routing::softmax_topk));
  static const auto sigmoid =
      make_kernel("ominix_moe_route_sigmoid_grouped", {"logits", "bias"}, {"indices", "weights"},
                  router_body(Routing::sigmoid_grouped));
  return by_routing(routing, softmax, softmax_topk, sigmoid);
}

const mx::fast::CustomKernelFunction& gate_router_kernel(Routing routing) {
  auto make = [](const char* name, Routing r) {
    std::vector<std::string> inputs{"x", "gate_weight"};
    if (r == Routing::sigmoid_grouped) inputs.push_back("bias");
    return detail::cuda_kernel(name, inputs, {"indices", "weights"},
                               kCudaPrologue + router_body(r, true), kCudaHeader);
  };
  static const auto softmax = make("ominix_moe_gate_route_softmax", Routing::softmax);
  static const auto softmax_topk =
      make("ominix_moe_gate_route_softmax_topk", Routing::softmax_topk);
  static const auto sigmoid =
      make("ominix_moe_gate_route_sigmoid_grouped", Routing::sigmoid_grouped);
  return by_routing(routing, softmax, softmax_topk, sigmoid);
}

const mx::fast::CustomKernelFunction& combine_kernel() {
  static const auto kernel =
      make_kernel("ominix_moe_combine", {"y", "w"}, {"out"},
                  std::string(kCombineBody) + (metal() ? "  out[i] = static_cast<T>(acc);\n"
                                                       : "  moe_store(out + i, acc);\n"));
  return kernel;
}

bool fused_enabled_by_env() {
  static const bool enabled = [] {
    const char* v = std::getenv("OMINIX_MOE_FUSED");
    return v == nullptr || std::string(v) != "0";
  }();
  return enabled;
}

// a[..., start:stop] along `axis` (negative counts from the end).
mx::array slice_axis(const mx::array& a, int axis, int start, int stop) {
  const int ax = axis < 0 ? axis + int(a.ndim()) : axis;
  mx::Shape lo(a.ndim(), 0), hi = a.shape();
  lo[ax] = start;
  hi[ax] = stop;
  return mx::slice(a, lo, hi);
}

void validate(int E, const RouterOptions& o, const std::optional<mx::array>& bias) {
  if (o.top_k < 1 || o.top_k > E)
    fail<InvalidArgument>("moe route: top_k {} outside [1, {}]", o.top_k, E);
  if (o.routing != Routing::sigmoid_grouped) return;
  if (!bias || bias->ndim() != 1 || bias->shape(0) != E)
    fail<InvalidArgument>("moe route: sigmoid_grouped needs a bias [{}]", E);
  if (o.n_group < 1 || E % o.n_group != 0 || o.topk_group < 1 || o.topk_group > o.n_group)
    fail<InvalidArgument>("moe route: {} experts do not split into {} groups keeping {}", E,
                          o.n_group, o.topk_group);
  if (o.n_group > 1 && o.topk_group < o.n_group) {
    if (E / o.n_group < 2)
      fail<InvalidArgument>("moe route: groups of {} experts cannot be scored by their best two",
                            E / o.n_group);
    if (o.top_k > o.topk_group * (E / o.n_group))
      fail<InvalidArgument>("moe route: top_k {} exceeds the {} experts of the kept groups",
                            o.top_k, o.topk_group * (E / o.n_group));
  }
}

// The plain-ops router: the reference of the kernels and the CPU path.
Routes route_plain(const mx::array& logits, const RouterOptions& o,
                   const std::optional<mx::array>& bias) {
  const int E = logits.shape(-1), k = o.top_k;
  auto l = mx::astype(logits, mx::float32);
  auto key = l;  // softmax: the logits order experts as their probabilities do
  std::optional<mx::array> scores;
  if (o.routing == Routing::sigmoid_grouped) {
    scores = mx::sigmoid(l);
    key = mx::add(*scores, mx::astype(*bias, mx::float32));
    if (o.n_group > 1 && o.topk_group < o.n_group) {
      auto grouped = mx::unflatten(key, -1, {o.n_group, E / o.n_group});  // [...,E] -> [...,G,E/G]
      auto group_scores = mx::sum(mx::topk(grouped, 2, -1), -1, /*keepdims=*/true);  // [...,G,1]
      // argsort is stable: best first, equal scores by the lower group.
      auto order = mx::argsort(mx::negative(group_scores), -2);
      auto dropped = slice_axis(order, -2, o.topk_group, o.n_group);  // [...,G-topk_group,1]
      grouped = mx::put_along_axis(grouped, dropped,
                                   mx::array(-std::numeric_limits<float>::infinity()), -2);
      key = mx::flatten(grouped, -2, -1);  // -> [...,E]
    }
  }
  // Stable sort of the negated scores: best first, equal scores by the lower expert index.
  auto inds = slice_axis(mx::argsort(mx::negative(key), -1), -1, 0, k);  // [...,k] uint32
  mx::array weights = l;
  switch (o.routing) {
    case Routing::softmax:
      weights = mx::take_along_axis(mx::softmax(l, -1, /*precise=*/true), inds, -1);
      if (o.norm_topk_prob) weights = mx::divide(weights, mx::sum(weights, -1, /*keepdims=*/true));
      break;
    case Routing::softmax_topk:
      weights = mx::softmax(mx::take_along_axis(l, inds, -1), -1, /*precise=*/true);
      break;
    case Routing::sigmoid_grouped:
      weights = mx::take_along_axis(*scores, inds, -1);
      if (o.norm_topk_prob)
        weights = mx::divide(weights, mx::add(mx::sum(weights, -1, true), mx::array(1e-20f)));
      weights = mx::multiply(weights, mx::array(o.routed_scaling_factor));
      break;
  }
  return {inds, weights};
}

bool fused_supports(int E, const RouterOptions& o) {
  const float s = o.routed_scaling_factor;
  return E <= kMaxExperts && o.top_k <= kMaxTopK && o.n_group <= kWarp && std::isfinite(s) &&
         !std::signbit(s);
}

bool fused_supports(const mx::array& logits, const RouterOptions& o) {
  return fused_supports(logits.shape(-1), o) && logits.size() > 0 &&
         logits.size() <= std::size_t(std::numeric_limits<int>::max() / kWarp);
}

bool float_dtype(mx::Dtype t) {
  return t == mx::float32 || t == mx::float16 || t == mx::bfloat16;
}

std::vector<std::pair<std::string, mx::fast::TemplateArg>> router_args(int E,
                                                                       const RouterOptions& o) {
  std::vector<std::pair<std::string, mx::fast::TemplateArg>> targs{{"NE", E}, {"NK", o.top_k}};
  if (o.routing != Routing::softmax_topk) targs.emplace_back("NORM", o.norm_topk_prob);
  if (o.routing == Routing::sigmoid_grouped) {
    targs.emplace_back("NG", o.n_group);
    targs.emplace_back("NTG", o.topk_group);
    targs.emplace_back("SCALE_BITS", std::bit_cast<int>(o.routed_scaling_factor));
  }
  return targs;
}

Routes route_fused(const mx::array& logits, const RouterOptions& o,
                   const std::optional<mx::array>& bias) {
  const int E = logits.shape(-1), k = o.top_k;
  const int rows = int(logits.size() / E);
  auto out_shape = logits.shape();
  out_shape.back() = k;
  std::vector<mx::array> inputs{logits};
  if (o.routing == Routing::sigmoid_grouped) inputs.push_back(*bias);
  auto out = router_kernel(o.routing)(inputs, {out_shape, out_shape}, {mx::uint32, mx::float32},
                                      {kWarp * rows, 1, 1}, {128, 1, 1}, router_args(E, o),
                                      std::nullopt, false, {});
  return {out[0], out[1]};
}

}  // namespace

bool use_fused_moe(KernelPath path) {
  if (path == KernelPath::plain) return false;
  const bool gpu = mx::default_device() == mx::Device::gpu &&
                   (mx::cu::is_available() || mx::metal::is_available());
  if (path == KernelPath::fused) {
    if (!gpu) fail<UnsupportedError>("moe: the fused kernels need a CUDA or Metal GPU");
    return true;
  }
  return gpu && fused_enabled_by_env();
}

Routes route(const mx::array& logits, const RouterOptions& options,
             const std::optional<mx::array>& bias) {
  if (logits.ndim() < 1) fail<InvalidArgument>("moe route: logits must be [..., E]");
  validate(logits.shape(-1), options, bias);
  if (use_fused_moe(options.path) && fused_supports(logits, options))
    return route_fused(logits, options, bias);
  return route_plain(logits, options, bias);
}

std::optional<Routes> route_gate(const mx::array& x, const mx::array& gate_weight,
                                 mx::Dtype logits_dtype, const RouterOptions& options,
                                 const std::optional<mx::array>& bias) {
  if (gate_weight.ndim() != 2 || x.ndim() < 1 || x.shape(-1) != gate_weight.shape(1))
    fail<InvalidArgument>("moe route: x [..., D] and a gate weight [E, D] expected");
  const int E = gate_weight.shape(0), D = gate_weight.shape(1);
  validate(E, options, bias);
  const int rows = x.ndim() ? int(x.size() / std::max(D, 1)) : 0;
  const int vec = 16 / int(mx::size_of(gate_weight.dtype()));
  if (!use_fused_moe(options.path) || !mx::cu::is_available() || !fused_supports(E, options) ||
      !float_dtype(x.dtype()) || !float_dtype(gate_weight.dtype()) || !float_dtype(logits_dtype) ||
      rows < 1 || rows > kMaxGateRows || D % (kWarp * vec) != 0 || D > kMaxGateWidth ||
      !gate_weight.flags().row_contiguous || !detail::aligned16(gate_weight))
    return std::nullopt;
  auto out_shape = x.shape();
  out_shape.back() = options.top_k;
  std::vector<mx::array> inputs{x, gate_weight};
  if (options.routing == Routing::sigmoid_grouped) inputs.push_back(*bias);
  auto targs = router_args(E, options);
  targs.emplace_back("D", D);
  targs.emplace_back("W", gate_weight.dtype());
  targs.emplace_back("LT", logits_dtype);
  auto out = gate_router_kernel(options.routing)(
      inputs, {out_shape, out_shape}, {mx::uint32, mx::float32}, {kGateBlock, rows, 1},
      {kGateBlock, 1, 1}, targs, std::nullopt, false, {});
  return Routes{out[0], out[1]};
}

Routes route_linear(const mx::array& x, const LinearLayer& gate, const RouterOptions& options) {
  if (const auto* dense = gate.dense(); dense && !dense->bias)
    if (auto routes = route_gate(x, dense->weight,
                                 mx::promote_types(x.dtype(), dense->weight.dtype()), options))
      return *routes;
  return route(gate(x), options);
}

mx::array combine_experts(const mx::array& y, const mx::array& weights, KernelPath path) {
  if (y.ndim() < 2 || weights.ndim() != y.ndim() - 1 ||
      weights.shape() != mx::Shape(y.shape().begin(), y.shape().end() - 1))
    fail<InvalidArgument>("moe combine: y must be [..., k, D] and weights [..., k]");
  const int k = y.shape(-2), D = y.shape(-1);
  const bool fits = y.size() > 0 && y.size() <= std::size_t(std::numeric_limits<int>::max());
  if (!use_fused_moe(path) || !fits)
    return mx::astype(mx::sum(mx::multiply(y, mx::expand_dims(weights, -1)), -2), y.dtype());
  auto out_shape = weights.shape();
  out_shape.back() = D;
  std::vector<std::pair<std::string, mx::fast::TemplateArg>> targs{{"NK", k}, {"ND", D}};
  if (metal()) targs.emplace_back("T", y.dtype());
  return combine_kernel()({y, weights}, {out_shape}, {y.dtype()}, {int(y.size() / k), 1, 1},
                          {256, 1, 1}, targs, std::nullopt, false, {})[0];
}

}  // namespace ominix::nn
