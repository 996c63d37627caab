#include "ominix/nn/linear.h"

#include <cstdlib>
#include <string>

#include <mlx/ops.h>
#include <mlx/transforms.h>

#include "cpu_gemv.h"
#include "ominix/base/error.h"
#include "qmv_fused.h"

namespace ominix::nn {

Linear::Linear(mx::array weight_, std::optional<mx::array> bias_)
    : weight(std::move(weight_)), bias(std::move(bias_)), weight_t_(mx::transpose(weight)) {}

mx::array Linear::operator()(const mx::array& x) const {
  if (auto y = detail::cpu_gemv(x, weight)) return bias ? mx::add(*y, *bias) : *y;
  if (bias) return mx::addmm(*bias, x, weight_t_);
  return mx::matmul(x, weight_t_);
}

mx::array QuantizedLinear::operator()(const mx::array& x) const {
  auto y = detail::fused_qmv(*this, x);
  if (!y && biases) y = detail::cpu_qgemv(x, weight, scales, *biases, spec);
  if (y) return bias ? mx::add(*y, *bias) : *y;
  auto out = mx::quantized_matmul(x, weight, scales, biases, /*transpose=*/true, spec.group_size,
                                  spec.bits, io::to_string(spec.mode));
  return bias ? mx::add(out, *bias) : out;
}

QuantizedLinear QuantizedLinear::from(const Linear& dense, const io::QuantSpec& spec) {
  auto parts = mx::quantize(dense.weight, spec.group_size, spec.bits, io::to_string(spec.mode));
  QuantizedLinear q{.weight = parts[0],
                    .scales = parts[1],
                    .biases = std::nullopt,
                    .bias = dense.bias,
                    .spec = spec};
  if (parts.size() > 2) q.biases = parts[2];
  return q;
}

QuantizedLinear load_quantized(io::WeightMap& w, const std::string& prefix, int rows, int cols,
                               const io::QuantSpec& spec) {
  if (cols % spec.group_size != 0 || (cols * spec.bits) % 32 != 0)
    fail<WeightError>("{}: {} columns do not split into groups of {} at {} bits", prefix, cols,
                      spec.group_size, spec.bits);
  if (auto it = w.tensors().find(prefix + ".weight");
      it != w.tensors().end() && it->second.dtype() != mx::uint32)
    w.reject_dtype(prefix + ".weight", "packed quantized weight must be uint32");
  QuantizedLinear q{.weight = w.take(prefix + ".weight", {rows, cols * spec.bits / 32}),
                    .scales = w.take(prefix + ".scales", {rows, cols / spec.group_size}),
                    .biases = std::nullopt,
                    .bias = std::nullopt,
                    .spec = spec};
  if (spec.mode == io::QuantMode::affine)
    q.biases = w.take(prefix + ".biases", {rows, cols / spec.group_size});
  return q;
}

namespace {
io::QuantSpec spec_or_fail(io::WeightMap& w, const std::string& prefix,
                           const std::optional<io::QuantizationConfig>& quant) {
  if (!quant)
    fail<WeightError>(
        "{}: '{}.scales' marks a quantized layer, but config.json has no quantization section",
        w.source(), prefix);
  auto spec = quant->spec_for(prefix);
  if (!spec)
    fail<WeightError>(
        "{}: '{}' is quantized in the checkpoint but excluded by config.json's quantization",
        w.source(), prefix);
  return *spec;
}
}  // namespace

LinearLayer LinearLayer::load(io::WeightMap& w, const std::string& prefix, const LinearShape& shape,
                              const std::optional<io::QuantizationConfig>& quant) {
  std::optional<mx::array> bias;
  if (shape.bias) bias = w.take(prefix + ".bias", {shape.out});
  if (w.contains(prefix + ".scales")) {
    auto q = load_quantized(w, prefix, shape.out, shape.in, spec_or_fail(w, prefix, quant));
    q.bias = bias;
    return LinearLayer(std::move(q));
  }
  return LinearLayer(Linear{w.take(prefix + ".weight", {shape.out, shape.in}), bias});
}

mx::array LinearLayer::operator()(const mx::array& x) const {
  return std::visit([&](const auto& l) { return l(x); }, impl_);
}

int LinearLayer::out_features() const {
  return std::visit([](const auto& l) { return l.weight.shape(0); }, impl_);
}

namespace {
// Concatenates the optional member `get` of every part along axis 0: nullopt when no part has
// it, and no result (false) when only some do.
template <typename Part, typename Get>
bool join_optional(const std::vector<const Part*>& parts, Get get, std::optional<mx::array>& out) {
  std::vector<mx::array> have;
  for (const auto* p : parts)
    if (const auto& v = get(*p)) have.push_back(*v);
  if (have.empty()) return true;
  if (have.size() != parts.size()) return false;
  out = mx::concatenate(have, 0);
  return true;
}
}  // namespace

std::optional<LinearLayer> LinearLayer::concat(const std::vector<LinearLayer>& parts) {
  if (parts.empty()) return std::nullopt;
  std::vector<const Linear*> dense;
  std::vector<const QuantizedLinear*> quant;
  for (const auto& p : parts) {
    if (auto* d = std::get_if<Linear>(&p.impl_))
      dense.push_back(d);
    else
      quant.push_back(&std::get<QuantizedLinear>(p.impl_));
  }
  auto weights = [](const auto& ps) {
    std::vector<mx::array> out;
    for (const auto* p : ps) out.push_back(p->weight);
    return mx::concatenate(out, 0);
  };
  if (dense.size() == parts.size()) {
    std::optional<mx::array> bias;
    if (!join_optional(
            dense, [](const Linear& l) { return l.bias; }, bias))
      return std::nullopt;
    Linear joined(weights(dense), bias);
    mx::eval(joined.weight);
    if (joined.bias) mx::eval(*joined.bias);
    return LinearLayer(std::move(joined));
  }
  if (quant.size() != parts.size()) return std::nullopt;
  for (const auto* q : quant)
    if (!(q->spec == quant[0]->spec)) return std::nullopt;
  std::vector<mx::array> scales;
  for (const auto* q : quant) scales.push_back(q->scales);
  QuantizedLinear joined{.weight = weights(quant),
                         .scales = mx::concatenate(scales, 0),
                         .biases = std::nullopt,
                         .bias = std::nullopt,
                         .spec = quant[0]->spec};
  if (!join_optional(
          quant, [](const QuantizedLinear& q) { return q.biases; }, joined.biases) ||
      !join_optional(
          quant, [](const QuantizedLinear& q) { return q.bias; }, joined.bias))
    return std::nullopt;
  std::vector<mx::array> all{joined.weight, joined.scales};
  if (joined.biases) all.push_back(*joined.biases);
  if (joined.bias) all.push_back(*joined.bias);
  mx::eval(all);
  return LinearLayer(std::move(joined));
}

FusedLinear::FusedLinear(std::vector<LinearLayer> parts) {
  for (const auto& p : parts) outs_.push_back(p.out_features());
  // OMINIX_JOIN_PROJECTIONS=0 keeps the parts apart (for A/B runs of the benchmark).
  static const bool join = [] {
    const char* v = std::getenv("OMINIX_JOIN_PROJECTIONS");
    return !(v && std::string(v) == "0");
  }();
  if (join) joined_ = LinearLayer::concat(parts);
  if (!joined_) parts_ = std::move(parts);
}

std::vector<mx::array> FusedLinear::operator()(const mx::array& x) const {
  if (!joined_) {
    std::vector<mx::array> out;
    for (const auto& p : parts_) out.push_back(p(x));
    return out;
  }
  mx::Shape at;
  int sum = 0;
  for (std::size_t i = 0; i + 1 < outs_.size(); ++i) at.push_back(sum += outs_[i]);
  return mx::split((*joined_)(x), at, -1);
}

std::optional<mx::array> FusedLinear::joint(const mx::array& x) const {
  if (!joined_) return std::nullopt;
  return (*joined_)(x);
}

Embedding Embedding::load(io::WeightMap& w, const std::string& prefix, int vocab, int dim,
                          const std::optional<io::QuantizationConfig>& quant) {
  if (w.contains(prefix + ".scales"))
    return Embedding(load_quantized(w, prefix, vocab, dim, spec_or_fail(w, prefix, quant)));
  return Embedding(w.take(prefix + ".weight", {vocab, dim}));
}

mx::array Embedding::operator()(const mx::array& ids) const {
  if (auto* d = std::get_if<Linear>(&impl_)) return mx::take(d->weight, ids, 0);
  const auto& q = std::get<QuantizedLinear>(impl_);
  std::optional<mx::array> biases;
  if (q.biases) biases = mx::take(*q.biases, ids, 0);
  return mx::dequantize(mx::take(q.weight, ids, 0), mx::take(q.scales, ids, 0), biases,
                        q.spec.group_size, q.spec.bits, io::to_string(q.spec.mode));
}

mx::array Embedding::as_linear(const mx::array& x) const {
  return std::visit([&](const auto& l) { return l(x); }, impl_);
}

}  // namespace ominix::nn
