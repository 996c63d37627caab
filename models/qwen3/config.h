// Config of the Qwen2 / Qwen3 / Qwen3-MoE family: the config.json fields of transformers'
// configuration_{qwen2,qwen3,qwen3_moe}.py (5.24.0, and 4.x spellings), parsed and validated.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/nn/activations.h"

namespace ominix::qwen3 {

enum class ModelType { qwen2, qwen3, qwen3_moe };
enum class LayerType { full_attention, sliding_attention };

struct Config {
  ModelType model_type = ModelType::qwen3;
  io::AttentionConfig attention;
  io::RopeConfig rope;
  std::optional<io::QuantizationConfig> quantization;
  int vocab_size = 0;
  int num_hidden_layers = 0;
  int intermediate_size = 0;
  float rms_norm_eps = 1e-6f;
  nn::Activation hidden_act = nn::Activation::silu;
  bool tie_word_embeddings = false;
  std::optional<int> sliding_window;  ///< only with use_sliding_window
  std::vector<LayerType> layer_types;
  // Qwen3-MoE.
  int num_experts = 0;
  int num_experts_per_tok = 0;
  int moe_intermediate_size = 0;
  int decoder_sparse_step = 1;
  bool norm_topk_prob = false;
  std::vector<int> mlp_only_layers;

  bool qkv_bias() const { return model_type == ModelType::qwen2 || attention.attention_bias; }
  bool o_bias() const { return model_type != ModelType::qwen2 && attention.attention_bias; }
  bool qk_norm() const { return model_type != ModelType::qwen2; }
  /// ref: modeling_qwen3_moe.py Qwen3MoeDecoderLayer.__init__.
  bool is_sparse(int layer) const {
    return model_type == ModelType::qwen3_moe && num_experts > 0 &&
           (layer + 1) % decoder_sparse_step == 0 &&
           std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) ==
               mlp_only_layers.end();
  }

  static Config parse(const io::ConfigReader& c);
  /// ConfigError naming the field for values out of range or inconsistent.
  void validate(const io::ConfigReader& c) const;
};

inline Config Config::parse(const io::ConfigReader& c) {
  Config cfg;
  const auto type = c.required<std::string>("model_type");
  if (type == "qwen2")
    cfg.model_type = ModelType::qwen2;
  else if (type == "qwen3")
    cfg.model_type = ModelType::qwen3;
  else if (type == "qwen3_moe")
    cfg.model_type = ModelType::qwen3_moe;
  else
    fail<UnsupportedError>("{}: '{}' is not a Qwen model type (qwen2, qwen3, qwen3_moe)",
                           c.field("model_type"), type);
  cfg.attention = io::AttentionConfig::parse(c);
  cfg.rope = io::RopeConfig::parse(c);
  cfg.quantization = io::QuantizationConfig::parse(c);
  cfg.vocab_size = c.required<int>("vocab_size");
  cfg.num_hidden_layers = c.required<int>("num_hidden_layers");
  cfg.intermediate_size = c.required<int>("intermediate_size");
  cfg.rms_norm_eps = c.get<float>("rms_norm_eps", 1e-6f);
  cfg.hidden_act =
      nn::parse_activation(c.get<std::string>("hidden_act", "silu"), c.field("hidden_act"));
  cfg.tie_word_embeddings = c.get<bool>("tie_word_embeddings", cfg.model_type == ModelType::qwen2);
  // Qwen's sliding_window is inert unless use_sliding_window (ref: configuration_qwen3.py
  // __post_init__).
  if (c.get<bool>("use_sliding_window", false)) {
    cfg.sliding_window = cfg.attention.sliding_window;
    if (!cfg.sliding_window)
      fail<ConfigError>("{}: required with use_sliding_window", c.field("sliding_window"));
  }
  if (c.has("layer_types")) {
    const auto& types = c.json().at("layer_types");
    if (!types.is_array())
      fail<ConfigError>("{}: expected a list, got {}", c.field("layer_types"), types.dump());
    for (const auto& t : types) {
      if (t == "full_attention")
        cfg.layer_types.push_back(LayerType::full_attention);
      else if (t == "sliding_attention")
        cfg.layer_types.push_back(LayerType::sliding_attention);
      else
        fail<ConfigError>("{}: unknown layer type {}", c.field("layer_types"), t.dump());
    }
  } else {
    // Qwen2/Qwen3 slide from max_window_layers on; Qwen3-MoE slides everywhere.
    const int first =
        cfg.model_type == ModelType::qwen3_moe ? 0 : c.get<int>("max_window_layers", 28);
    for (int i = 0; i < cfg.num_hidden_layers; ++i)
      cfg.layer_types.push_back(cfg.sliding_window && i >= first ? LayerType::sliding_attention
                                                                 : LayerType::full_attention);
  }
  if (cfg.model_type == ModelType::qwen3_moe) {
    // transformers 5.x writes num_experts as num_local_experts (its attribute_map).
    cfg.num_experts = c.has("num_experts") ? c.required<int>("num_experts")
                                           : c.required<int>("num_local_experts");
    cfg.num_experts_per_tok = c.required<int>("num_experts_per_tok");
    cfg.moe_intermediate_size = c.required<int>("moe_intermediate_size");
    cfg.decoder_sparse_step = c.get<int>("decoder_sparse_step", 1);
    cfg.norm_topk_prob = c.get<bool>("norm_topk_prob", false);
    cfg.mlp_only_layers = c.int_list("mlp_only_layers");
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
  if (int(layer_types.size()) != num_hidden_layers)
    fail<ConfigError>("{}: {} entries for {} layers", c.field("layer_types"), layer_types.size(),
                      num_hidden_layers);
  if (!sliding_window && std::ranges::count(layer_types, LayerType::sliding_attention) > 0)
    fail<ConfigError>("{}: sliding layers need use_sliding_window and sliding_window",
                      c.field("layer_types"));
  if (model_type != ModelType::qwen3_moe) return;
  positive(num_experts_per_tok, "num_experts_per_tok");
  positive(moe_intermediate_size, "moe_intermediate_size");
  positive(decoder_sparse_step, "decoder_sparse_step");
  if (num_experts < 0 || (num_experts > 0 && num_experts_per_tok > num_experts))
    fail<ConfigError>("{}: {} experts per token out of {}", c.field("num_experts_per_tok"),
                      num_experts_per_tok, num_experts);
  for (int l : mlp_only_layers)
    if (l < 0 || l >= num_hidden_layers)
      fail<ConfigError>("{}: layer {} out of range [0, {})", c.field("mlp_only_layers"), l,
                        num_hidden_layers);
}

}  // namespace ominix::qwen3
