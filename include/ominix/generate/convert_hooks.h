// What converting a checkpoint (`ominix convert`, ominix::convert_checkpoint) asks of a language
// model family: the sanitize step its loader runs (so a converted checkpoint has the layout
// mlx-lm's convert saves: experts stacked, tied heads and rotary caches dropped) and mlx-lm's
// quant_predicate / cast_predicate. Families register them beside their loaders, keyed by
// config.json's model_type; core never names one.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "ominix/io/config.h"
#include "ominix/io/weights.h"

namespace ominix::generate {

/// A family's quantization rule for one module (a weight's key without ".weight", as mlx-lm's
/// module path: "model.layers.0.mlp.gate").
struct QuantChoice {
  bool quantize = true;               ///< false: the module stays in floating point
  std::optional<io::QuantSpec> spec;  ///< overrides the global spec (recorded in config.json)
};

struct ConvertHooks {
  /// The family's sanitize, on the checkpoint's tensors and its config.json. Must be idempotent
  /// (the loader runs it again on the converted checkpoint).
  std::function<void(io::WeightMap&, const io::ConfigReader&)> sanitize;
  /// mlx-lm's quant_predicate; unset: every quantizable module with the global spec.
  std::function<QuantChoice(const std::string& module)> quant_predicate;
  /// mlx-lm's cast_predicate: false for a tensor key that a dtype cast must leave alone.
  std::function<bool(const std::string& key)> cast_predicate;
};

/// model_type -> hooks.
inline std::map<std::string, ConvertHooks>& convert_hooks_registry() {
  static std::map<std::string, ConvertHooks> registry;
  return registry;
}

inline void register_convert_hooks(const std::string& model_type, ConvertHooks hooks) {
  convert_hooks_registry()[model_type] = std::move(hooks);
}

/// The hooks registered for model_type, or nullptr.
inline const ConvertHooks* find_convert_hooks(const std::string& model_type) {
  auto it = convert_hooks_registry().find(model_type);
  return it == convert_hooks_registry().end() ? nullptr : &it->second;
}

}  // namespace ominix::generate
