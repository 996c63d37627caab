// ref: mlx-lm 0.32.2 mlx_lm/models/switch_layers.py (SwitchLinear, QuantizedSwitchLinear,
// SwitchGLU, _gather_sort / _scatter_unsort).
#include "ominix/nn/switch.h"

#include <mlx/backend/cuda/cuda.h>
#include <mlx/ops.h>

#include <cstdlib>

#include <map>
#include <mutex>
#include <utility>

#include "experts_fused.h"
#include "ominix/base/error.h"

namespace ominix::nn {
namespace {

/// The rows of x that gather_mm / gather_qmm read for unsorted (token, expert) pairs, shaped like
/// the expert indices [..., k]: the token's row (`per_pair` false: x holds one row per token) or
/// the pair's own row (true: one row per pair). MLX builds these with arange + reshape + broadcast
/// on every call; made on the host once per shape instead, a decode step adds no nodes for them.
mx::array row_indices(const mx::Shape& shape, bool per_pair) {
  static std::mutex mutex;
  // Never destroyed: cached arrays must not outlive MLX's allocator at exit.
  static auto* cache = new std::map<std::pair<std::vector<int>, bool>, mx::array>;
  std::vector<int> key(shape.begin(), shape.end());
  std::lock_guard lock(mutex);
  if (auto it = cache->find({key, per_pair}); it != cache->end()) return it->second;
  const int k = shape.back();
  std::size_t n = 1;
  for (int s : shape) n *= std::size_t(s);
  std::vector<uint32_t> rows(n);
  for (std::size_t i = 0; i < n; ++i) rows[i] = uint32_t(per_pair ? i : i / k);
  mx::array a(rows.begin(), shape, mx::uint32);
  if (cache->size() < 256) cache->emplace(std::pair{std::move(key), per_pair}, a);
  return a;
}

// Pairs from which quantized experts are dequantized for a prefill on CUDA: MLX 0.32's CUDA
// gather_qmm is far slower there than its grouped GEMM over the dequantized experts, even counting
// the dequantization. OMINIX_MOE_DEQUANT_PAIRS overrides it (for A/B runs).
int dequantize_threshold() {
  static const int pairs = [] {
    const char* v = std::getenv("OMINIX_MOE_DEQUANT_PAIRS");
    return v ? std::atoi(v) : 256;
  }();
  return pairs;
}

}  // namespace

SwitchLinear SwitchLinear::load(io::WeightMap& w, const std::string& prefix, int num_experts,
                                int in, int out,
                                const std::optional<io::QuantizationConfig>& quant) {
  if (!w.contains(prefix + ".scales"))
    return {w.take(prefix + ".weight", {num_experts, out, in}), std::nullopt, std::nullopt,
            std::nullopt};
  auto spec = quant ? quant->spec_for(prefix) : std::nullopt;
  if (!spec)
    fail<WeightError>("{}: '{}' is quantized but config.json does not quantize it", w.source(),
                      prefix);
  if (in % spec->group_size != 0 || in * spec->bits % 32 != 0)
    fail<WeightError>("{}: {} columns do not split into groups of {} at {} bits", prefix, in,
                      spec->group_size, spec->bits);
  const mx::Shape groups{num_experts, out, in / spec->group_size};
  SwitchLinear s{w.take(prefix + ".weight", {num_experts, out, in * spec->bits / 32}),
                 w.take(prefix + ".scales", groups), std::nullopt, spec};
  if (spec->mode == io::QuantMode::affine) s.biases = w.take(prefix + ".biases", groups);
  return s;
}

mx::array SwitchLinear::operator()(const mx::array& x, const mx::array& indices, bool sorted,
                                   const std::optional<mx::array>& rows, bool dequantized) const {
  if (spec && dequantized)
    return mx::gather_mm(x,
                         mx::swapaxes(mx::dequantize(weight, *scales, biases, spec->group_size,
                                                     spec->bits, io::to_string(spec->mode)),
                                      -1, -2),
                         rows, indices, sorted);
  if (!spec) return mx::gather_mm(x, mx::swapaxes(weight, -1, -2), rows, indices, sorted);
  return mx::gather_qmm(x, weight, *scales, biases, rows, indices, /*transpose=*/true,
                        spec->group_size, spec->bits, io::to_string(spec->mode), std::nullopt,
                        sorted);
}

SwitchGLU SwitchGLU::load(io::WeightMap& w, const std::string& prefix, const SwitchGLUShape& shape,
                          const std::optional<io::QuantizationConfig>& quant,
                          const SwitchGLUOptions& options) {
  const int E = shape.num_experts, D = shape.dim, I = shape.hidden_dim;
  return {SwitchLinear::load(w, prefix + "gate_proj", E, D, I, quant),
          SwitchLinear::load(w, prefix + "up_proj", E, D, I, quant),
          SwitchLinear::load(w, prefix + "down_proj", E, I, D, quant), options};
}

mx::array SwitchGLU::operator()(const mx::array& x, const mx::array& indices) const {
  const int k = indices.shape(-1);
  auto h = mx::expand_dims(x, {-2, -3});  // [B,L,D] -> [B,L,1,1,D]
  auto idx = indices;
  const bool sorted = int(indices.size()) >= options.sort_threshold;
  std::optional<mx::array> inv_order;
  if (sorted) {
    auto flat = mx::flatten(indices);  // [B*L*k]
    auto order = mx::argsort(flat);
    inv_order = mx::argsort(order);
    h = mx::take(mx::flatten(h, 0, -3), mx::floor_divide(order, mx::array(k)),
                 0);  // [B*L,1,D] -> [B*L*k,1,D]
    idx = mx::take(flat, order, 0);
  }
  // Sorted pairs keep MLX's default rows: given rows, gather_qmm drops its sorted fast path.
  std::optional<mx::array> token_rows, pair_rows;
  if (!sorted) {
    token_rows = row_indices(indices.shape(), false);
    pair_rows = row_indices(indices.shape(), true);
  }
  const bool dq = sorted && int(indices.size()) >= dequantize_threshold() &&
                  mx::default_device() == mx::Device::gpu && mx::cu::is_available();
  auto y = down_proj(gated(options.activation, gate_proj(h, idx, sorted, token_rows, dq),
                           up_proj(h, idx, sorted, token_rows, dq)),
                     idx, sorted, pair_rows, dq);
  if (sorted) y = mx::unflatten(mx::take(y, *inv_order, 0), 0, indices.shape());  // -> [B,L,k,1,D]
  return mx::squeeze(y, -2);                                                      // -> [B,L,k,D]
}

mx::array SwitchGLU::operator()(const mx::array& x, const Routes& routes) const {
  if (auto y = detail::fused_experts(*this, x, routes)) return *y;
  return combine_experts((*this)(x, routes.indices), routes.weights);  // [B,L,k,D] -> [B,L,D]
}

void stack_experts(io::WeightMap& w, const ExpertStack& s) {
  for (const auto& [name, stacked, shape] : s.projections) {
    const auto to = s.to + stacked;
    if (w.contains(to + ".weight") || w.contains(to + ".scales")) continue;
    std::vector<mx::array> experts;
    for (int e = 0; e < s.num_experts; ++e)
      experts.push_back(w.take(fmt::format("{}{}.{}.weight", s.from, e, name), shape));
    w.tensors().insert_or_assign(to + ".weight", mx::stack(experts));  // [E,out,in]
  }
}

}  // namespace ominix::nn
