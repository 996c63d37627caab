// Config of the Llama / Mistral / Mixtral family: the config.json fields of transformers'
// configuration_{llama,mistral,mixtral}.py (5.24.0, and 4.x spellings), parsed and validated.
#pragma once

#include <optional>
#include <string>

#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/nn/activations.h"

namespace ominix::mixtral {

enum class ModelType { llama, mistral, mixtral };

struct Config {
  ModelType model_type = ModelType::mistral;
  /// sliding_window (Mistral, Mixtral): every layer attends to that many positions. attention_bias
  /// (Llama): q, k, v and o projections have a bias.
  io::AttentionConfig attention;
  io::RopeConfig rope;  ///< Llama 3.x: rope_type llama3
  std::optional<io::QuantizationConfig> quantization;
  int vocab_size = 0;
  int num_hidden_layers = 0;
  int intermediate_size = 0;  ///< Mixtral: each expert's
  float rms_norm_eps = 1e-5f;
  nn::Activation hidden_act = nn::Activation::silu;
  bool tie_word_embeddings = false;
  bool mlp_bias = false;  ///< Llama: gate, up and down projections have a bias
  // Mixtral.
  int num_local_experts = 0;
  int num_experts_per_tok = 0;

  static Config parse(const io::ConfigReader& c);
  /// ConfigError naming the field for values out of range or inconsistent.
  void validate(const io::ConfigReader& c) const;
};

inline Config Config::parse(const io::ConfigReader& c) {
  Config cfg;
  const auto type = c.required<std::string>("model_type");
  if (type == "llama")
    cfg.model_type = ModelType::llama;
  else if (type == "mistral")
    cfg.model_type = ModelType::mistral;
  else if (type == "mixtral")
    cfg.model_type = ModelType::mixtral;
  else
    fail<UnsupportedError>("{}: '{}' is not a Llama model type (llama, mistral, mixtral)",
                           c.field("model_type"), type);
  const bool llama = cfg.model_type == ModelType::llama;
  cfg.attention = io::AttentionConfig::parse(c);
  // ref: configuration_llama.py has no sliding window (LlamaAttention attends to every position).
  if (llama) cfg.attention.sliding_window.reset();
  if (cfg.attention.attention_bias && !llama)
    fail<UnsupportedError>("{}: Mistral attention has no bias", c.field("attention_bias"));
  if (c.has("layer_types"))  // ref: configuration_mistral.py points such models to Ministral
    fail<UnsupportedError>("{}: per-layer attention types are not {}'s", c.field("layer_types"),
                           type);
  cfg.rope = io::RopeConfig::parse(c);
  cfg.quantization = io::QuantizationConfig::parse(c);
  cfg.vocab_size = c.required<int>("vocab_size");
  cfg.num_hidden_layers = c.required<int>("num_hidden_layers");
  cfg.intermediate_size = c.required<int>("intermediate_size");
  cfg.rms_norm_eps = c.get<float>("rms_norm_eps", llama ? 1e-6f : 1e-5f);
  cfg.hidden_act =
      nn::parse_activation(c.get<std::string>("hidden_act", "silu"), c.field("hidden_act"));
  cfg.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  if (llama) cfg.mlp_bias = c.get<bool>("mlp_bias", false);
  if (cfg.model_type == ModelType::mixtral) {
    cfg.num_local_experts = c.required<int>("num_local_experts");
    cfg.num_experts_per_tok = c.required<int>("num_experts_per_tok");
  }
  cfg.validate(c);
  return cfg;
}

inline void Config::validate(const io::ConfigReader& c) const {
  auto positive = [&](int v, const char* key) {
    if (v <= 0) fail<ConfigError>("{}: must be positive, got {}", c.field(key), v);
  };
  positive(vocab_size, "vocab_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(intermediate_size, "intermediate_size");
  if (!(rms_norm_eps > 0)) fail<ConfigError>("{}: must be positive", c.field("rms_norm_eps"));
  if (model_type != ModelType::mixtral) return;
  positive(num_local_experts, "num_local_experts");
  positive(num_experts_per_tok, "num_experts_per_tok");
  if (num_experts_per_tok > num_local_experts)
    fail<ConfigError>("{}: {} experts per token out of {}", c.field("num_experts_per_tok"),
                      num_experts_per_tok, num_local_experts);
}

}  // namespace ominix::mixtral
