// Config of the GLM-4 / GLM-4-MoE family: the config.json fields of transformers'
// configuration_{glm4,glm4_moe}.py (5.24.0, and the Hub's 4.x spellings), parsed and validated.
#pragma once

#include <optional>
#include <string>

#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/nn/activations.h"

namespace ominix::glm4 {

enum class ModelType { glm4, glm4_moe };

struct Config {
  ModelType model_type = ModelType::glm4;
  io::AttentionConfig attention;  ///< attention_bias: q/k/v only (o_proj never has one)
  io::RopeConfig rope;            ///< partial_rotary_factor defaults to 0.5
  std::optional<io::QuantizationConfig> quantization;
  int vocab_size = 0;
  int num_hidden_layers = 0;
  int intermediate_size = 0;
  float rms_norm_eps = 1e-5f;
  nn::Activation hidden_act = nn::Activation::silu;
  bool tie_word_embeddings = false;
  // GLM-4-MoE.
  int n_routed_experts = 0;
  int num_experts_per_tok = 0;
  int moe_intermediate_size = 0;
  int n_shared_experts = 1;
  int n_group = 1;
  int topk_group = 1;
  int first_k_dense_replace = 1;
  float routed_scaling_factor = 1.0f;
  bool norm_topk_prob = true;
  bool use_qk_norm = false;

  /// ref: modeling_glm4_moe.py Glm4MoeDecoderLayer.__init__.
  bool is_sparse(int layer) const {
    return model_type == ModelType::glm4_moe && layer >= first_k_dense_replace;
  }

  static Config parse(const io::ConfigReader& c);
  /// ConfigError naming the field for values out of range or inconsistent.
  void validate(const io::ConfigReader& c) const;
};

inline Config Config::parse(const io::ConfigReader& c) {
  Config cfg;
  const auto type = c.required<std::string>("model_type");
  if (type == "glm4")
    cfg.model_type = ModelType::glm4;
  else if (type == "glm4_moe")
    cfg.model_type = ModelType::glm4_moe;
  else
    fail<UnsupportedError>("{}: '{}' is not a GLM-4 model type (glm4, glm4_moe)",
                           c.field("model_type"), type);
  const bool moe = cfg.model_type == ModelType::glm4_moe;
  cfg.attention = io::AttentionConfig::parse(c);
  cfg.attention.attention_bias = c.get<bool>("attention_bias", !moe);
  cfg.rope = io::RopeConfig::parse(c);
  // ref: configuration_glm4.py __post_init__ — partial_rotary_factor defaults to 0.5.
  const auto params =
      c.has("rope_parameters") ? c.child("rope_parameters") : c.child("rope_scaling");
  if (!c.has("partial_rotary_factor") && !params.has("partial_rotary_factor"))
    cfg.rope.partial_rotary_factor = 0.5;
  // ref: modeling_glm4.py apply_rotary_pos_emb rotates interleaved pairs; glm4_moe half-splits.
  cfg.rope.traditional = c.get<bool>("rope_traditional", !moe);
  cfg.quantization = io::QuantizationConfig::parse(c);
  cfg.vocab_size = c.required<int>("vocab_size");
  cfg.num_hidden_layers = c.required<int>("num_hidden_layers");
  cfg.intermediate_size = c.required<int>("intermediate_size");
  cfg.rms_norm_eps = c.get<float>("rms_norm_eps", moe ? 1e-5f : 1e-6f);
  cfg.hidden_act =
      nn::parse_activation(c.get<std::string>("hidden_act", "silu"), c.field("hidden_act"));
  cfg.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);
  if (!moe) {
    cfg.validate(c);
    return cfg;
  }
  cfg.n_routed_experts = c.has("n_routed_experts") ? c.required<int>("n_routed_experts")
                                                   : c.required<int>("num_local_experts");
  cfg.num_experts_per_tok = c.required<int>("num_experts_per_tok");
  cfg.moe_intermediate_size = c.required<int>("moe_intermediate_size");
  cfg.n_shared_experts = c.get<int>("n_shared_experts", 1);
  cfg.n_group = c.get<int>("n_group", 1);
  cfg.topk_group = c.get<int>("topk_group", 1);
  cfg.first_k_dense_replace = c.get<int>("first_k_dense_replace", 1);
  cfg.routed_scaling_factor = c.get<float>("routed_scaling_factor", 1.0f);
  cfg.norm_topk_prob = c.get<bool>("norm_topk_prob", true);
  cfg.use_qk_norm = c.get<bool>("use_qk_norm", false);
  if (c.get<std::string>("scoring_func", "sigmoid") != "sigmoid")
    fail<UnsupportedError>("{}: only 'sigmoid' is supported", c.field("scoring_func"));
  if (c.get<std::string>("topk_method", "noaux_tc") != "noaux_tc")
    fail<UnsupportedError>("{}: only 'noaux_tc' is supported", c.field("topk_method"));
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
  if (model_type != ModelType::glm4_moe) return;
  positive(n_routed_experts, "n_routed_experts");
  positive(num_experts_per_tok, "num_experts_per_tok");
  positive(moe_intermediate_size, "moe_intermediate_size");
  positive(n_shared_experts, "n_shared_experts");
  positive(n_group, "n_group");
  if (first_k_dense_replace < 0)
    fail<ConfigError>("{}: must not be negative", c.field("first_k_dense_replace"));
  if (n_routed_experts % n_group != 0 || (n_group > 1 && n_routed_experts / n_group < 2))
    fail<ConfigError>("{}: {} experts do not split into {} groups of at least 2",
                      c.field("n_group"), n_routed_experts, n_group);
  if (topk_group < 1 || topk_group > n_group)
    fail<ConfigError>("{}: {} groups kept out of {}", c.field("topk_group"), topk_group, n_group);
  if (num_experts_per_tok > topk_group * (n_routed_experts / n_group))
    fail<ConfigError>("{}: {} experts per token out of {} in the kept groups",
                      c.field("num_experts_per_tok"), num_experts_per_tok,
                      topk_group * (n_routed_experts / n_group));
}

}  // namespace ominix::glm4
