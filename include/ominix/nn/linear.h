// Linear layers, dense and MLX-quantized (the mlx-community checkpoint layout), and embeddings
// that can double as the tied LM head.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <mlx/array.h>

#include "ominix/io/config.h"
#include "ominix/io/weights.h"

namespace ominix::nn {

namespace mx = mlx::core;

/// y = x W^T + b. weight [out, in], bias [out].
class Linear {
 public:
  Linear(mx::array weight, std::optional<mx::array> bias = std::nullopt);
  mx::array operator()(const mx::array& x) const;

  mx::array weight;
  std::optional<mx::array> bias;

 private:
  // W^T made once: a transpose per call would add a graph node to every decode step.
  mx::array weight_t_;
};

/// Quantized y = x W^T + b. weight packed uint32 [out, in*bits/32]; scales (and, for affine,
/// biases) [out, in/group_size]; optional float bias [out].
struct QuantizedLinear {
  mx::array weight, scales;
  std::optional<mx::array> biases;  ///< quantization offsets (affine mode)
  std::optional<mx::array> bias;    ///< the layer's additive bias
  io::QuantSpec spec;
  mx::array operator()(const mx::array& x) const;
  /// Quantizes a dense layer the way mlx-lm does (mx::quantize on the weight).
  static QuantizedLinear from(const Linear& dense, const io::QuantSpec& spec);
};

struct LinearShape {
  int in = 0, out = 0;
  bool bias = false;
};

/// Either kind of linear layer; models hold this and let the checkpoint decide.
class LinearLayer {
 public:
  LinearLayer(Linear l) : impl_(std::move(l)) {}
  LinearLayer(QuantizedLinear l) : impl_(std::move(l)) {}

  /// Binds `<prefix>.weight` (+ `.bias`); quantized when `<prefix>.scales` is in the checkpoint,
  /// with the spec `quant` gives for `prefix` (WeightError if the checkpoint is quantized but the
  /// config has no quantization section).
  static LinearLayer load(io::WeightMap& w, const std::string& prefix, const LinearShape& shape,
                          const std::optional<io::QuantizationConfig>& quant);

  mx::array operator()(const mx::array& x) const;
  bool quantized() const { return std::holds_alternative<QuantizedLinear>(impl_); }
  /// The dense layer, or nullptr when quantized.
  const Linear* dense() const { return std::get_if<Linear>(&impl_); }
  /// Rows of the weight.
  int out_features() const;

  /// One layer computing all of `parts` (same input) at once, outputs concatenated in order: the
  /// weights (and biases) joined along the output axis and evaluated now, so the parts' memory
  /// can go. nullopt unless all are dense or all quantized with one spec, and all or none have a
  /// bias.
  static std::optional<LinearLayer> concat(const std::vector<LinearLayer>& parts);

 private:
  std::variant<Linear, QuantizedLinear> impl_;
};

/// Linear layers over the same input (q/k/v, gate/up) run as one matmul where
/// LinearLayer::concat can join them: a decode step pays per graph node, and one wide matmul
/// also reads the weights closer to the bandwidth bound than several narrow ones.
class FusedLinear {
 public:
  explicit FusedLinear(std::vector<LinearLayer> parts);

  /// x [..., in] -> each part's output, in order.
  std::vector<mx::array> operator()(const mx::array& x) const;
  /// x [..., in] -> the outputs concatenated [..., sum of out_features()]; nullopt when the
  /// parts could not be joined.
  std::optional<mx::array> joint(const mx::array& x) const;
  const std::vector<int>& out_features() const { return outs_; }

 private:
  std::optional<LinearLayer> joined_;
  std::vector<LinearLayer> parts_;  ///< only when they could not be joined
  std::vector<int> outs_;
};

/// Binds the quantized tensors of `prefix` for a [rows, cols] matrix; used by linear and embedding.
QuantizedLinear load_quantized(io::WeightMap& w, const std::string& prefix, int rows, int cols,
                               const io::QuantSpec& spec);

/// Token embedding, dense or quantized. weight [vocab, dim].
class Embedding {
 public:
  explicit Embedding(mx::array weight) : impl_(Linear{std::move(weight), std::nullopt}) {}
  explicit Embedding(QuantizedLinear q) : impl_(std::move(q)) {}

  static Embedding load(io::WeightMap& w, const std::string& prefix, int vocab, int dim,
                        const std::optional<io::QuantizationConfig>& quant);

  /// ids (any integer shape) -> [..., dim].
  mx::array operator()(const mx::array& ids) const;
  /// Tied LM head: x [..., dim] -> logits [..., vocab].
  mx::array as_linear(const mx::array& x) const;
  bool quantized() const { return std::holds_alternative<QuantizedLinear>(impl_); }

 private:
  std::variant<Linear, QuantizedLinear> impl_;
};

/// mlx-lm's QuantizedEmbedding is our Embedding holding a QuantizedLinear.
using QuantizedEmbedding = Embedding;

}  // namespace ominix::nn
