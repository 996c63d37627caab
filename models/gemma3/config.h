// Config of Gemma 3 text models: the config.json fields of transformers' configuration_gemma3.py
// (5.24.0 `rope_parameters` per layer kind, and the 4.x spellings rope_theta / rope_scaling /
// rope_local_base_freq / sliding_window_pattern), parsed and validated. `gemma3` configs nest the
// text model in text_config.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/nn/activations.h"

namespace ominix::gemma3 {

enum class LayerType { full_attention, sliding_attention };

struct Config {
  io::AttentionConfig attention;
  io::RopeConfig rope_global, rope_local;  ///< full_attention / sliding_attention layers
  std::optional<io::QuantizationConfig> quantization;
  int vocab_size = 0;
  int num_hidden_layers = 0;
  int intermediate_size = 0;
  float rms_norm_eps = 1e-6f;
  float query_pre_attn_scalar = 256;
  int sliding_window = 4096;
  std::optional<float> final_logit_softcapping;
  nn::Activation hidden_activation = nn::Activation::gelu_tanh;
  std::vector<LayerType> layer_types;

  /// Reads a gemma3_text config, or the text_config of a gemma3 one.
  static Config parse(const io::ConfigReader& c);
};

namespace detail {

/// A RopeConfig from one rope_parameters entry (or 4.x fields), with the model's context length.
inline io::RopeConfig rope(nlohmann::json params, const io::ConfigReader& c) {
  nlohmann::json j{{"rope_parameters", std::move(params)},
                   {"max_position_embeddings", c.get<int>("max_position_embeddings", 131072)}};
  return io::RopeConfig::parse(io::ConfigReader(std::move(j), c.where()));
}

}  // namespace detail

inline Config Config::parse(const io::ConfigReader& top) {
  const auto type = top.required<std::string>("model_type");
  if (type != "gemma3_text" && type != "gemma3")
    fail<UnsupportedError>("{}: '{}' is not a Gemma 3 model type (gemma3_text, gemma3)",
                           top.field("model_type"), type);
  const io::ConfigReader c = type == "gemma3" ? top.child("text_config") : top;
  Config cfg;
  cfg.attention = io::AttentionConfig::parse(c);
  cfg.attention.max_position_embeddings = c.get<int>("max_position_embeddings", 131072);
  // ref: configuration_gemma3.py convert_rope_params_to_dict — 5.x nests one entry per layer kind;
  // 4.x has rope_theta (+ rope_scaling) for global layers, rope_local_base_freq for local ones.
  const auto& j = c.json();
  if (j.contains("rope_parameters") && j["rope_parameters"].contains("full_attention")) {
    cfg.rope_global = detail::rope(j["rope_parameters"]["full_attention"], c);
    cfg.rope_local = detail::rope(
        j["rope_parameters"].value("sliding_attention", nlohmann::json{{"rope_theta", 10000.0}}),
        c);
  } else {
    nlohmann::json global = c.child("rope_scaling").json();  // ConfigError unless an object
    global["rope_theta"] = c.get<double>("rope_theta", 1e6);
    cfg.rope_global = detail::rope(std::move(global), c);
    cfg.rope_local = detail::rope({{"rope_theta", c.get<double>("rope_local_base_freq", 1e4)}}, c);
  }
  cfg.quantization = io::QuantizationConfig::parse(c.has("quantization") ? c : top);
  cfg.vocab_size = c.get<int>("vocab_size", 262208);
  cfg.num_hidden_layers = c.required<int>("num_hidden_layers");
  cfg.intermediate_size = c.required<int>("intermediate_size");
  cfg.rms_norm_eps = c.get<float>("rms_norm_eps", 1e-6f);
  cfg.query_pre_attn_scalar = c.get<float>("query_pre_attn_scalar", 256.0f);
  cfg.sliding_window = c.get<int>("sliding_window", 4096);
  cfg.final_logit_softcapping = c.optional<float>("final_logit_softcapping");
  cfg.hidden_activation = nn::parse_activation(
      c.get<std::string>("hidden_activation", "gelu_pytorch_tanh"), c.field("hidden_activation"));
  if (c.get<bool>("use_bidirectional_attention", false))
    fail<UnsupportedError>("{}: bidirectional attention is not supported",
                           c.field("use_bidirectional_attention"));
  if (c.has("attn_logit_softcapping"))
    fail<UnsupportedError>("{}: attention logit soft-capping is not supported (Gemma 3 has none)",
                           c.field("attn_logit_softcapping"));
  if (c.has("layer_types")) {
    for (const auto& t : j.at("layer_types")) {
      if (t == "full_attention")
        cfg.layer_types.push_back(LayerType::full_attention);
      else if (t == "sliding_attention")
        cfg.layer_types.push_back(LayerType::sliding_attention);
      else
        fail<ConfigError>("{}: unknown layer type {}", c.field("layer_types"), t.dump());
    }
  } else {  // ref: configuration_gemma3.py __post_init__, every pattern-th layer is global
    const int pattern = c.get<int>("sliding_window_pattern", 6);
    if (pattern <= 0) fail<ConfigError>("{}: must be positive", c.field("sliding_window_pattern"));
    for (int i = 0; i < cfg.num_hidden_layers; ++i)
      cfg.layer_types.push_back((i + 1) % pattern ? LayerType::sliding_attention
                                                  : LayerType::full_attention);
  }
  auto positive = [&](double v, const char* key) {
    if (!(v > 0)) fail<ConfigError>("{}: must be positive, got {}", c.field(key), v);
  };
  positive(cfg.vocab_size, "vocab_size");
  positive(cfg.num_hidden_layers, "num_hidden_layers");
  positive(cfg.intermediate_size, "intermediate_size");
  positive(cfg.rms_norm_eps, "rms_norm_eps");
  positive(cfg.query_pre_attn_scalar, "query_pre_attn_scalar");
  positive(cfg.sliding_window, "sliding_window");
  if (cfg.final_logit_softcapping)
    positive(*cfg.final_logit_softcapping, "final_logit_softcapping");
  if (int(cfg.layer_types.size()) != cfg.num_hidden_layers)
    fail<ConfigError>("{}: {} entries for {} layers", c.field("layer_types"),
                      cfg.layer_types.size(), cfg.num_hidden_layers);
  return cfg;
}

}  // namespace ominix::gemma3
