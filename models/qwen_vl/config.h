// Config of Qwen2.5-VL: the config.json fields of transformers 5.24's configuration_qwen2_5_vl.py
// (text_config / vision_config, and the flat transformers 4.x layout), parsed and validated. The
// text part is rewritten as a qwen2 config for the qwen3 family's text model.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/nn/activations.h"

namespace ominix::qwen_vl {

/// ref: configuration_qwen2_5_vl.py Qwen2_5_VLVisionConfig.
struct VisionConfig {
  int depth = 32;
  int hidden_size = 3584;
  int intermediate_size = 3420;
  int num_heads = 16;
  int in_channels = 3;
  int patch_size = 14;
  int spatial_merge_size = 2;
  int temporal_patch_size = 2;
  int window_size = 112;
  int tokens_per_second = 4;
  int out_hidden_size = 3584;
  std::vector<int> fullatt_block_indexes{7, 15, 23, 31};
  nn::Activation hidden_act = nn::Activation::silu;
  double rope_theta = 10000.0;

  int head_dim() const { return hidden_size / num_heads; }
  /// Patch features a row of pixel_values holds.
  int patch_dim() const { return in_channels * temporal_patch_size * patch_size * patch_size; }
  static VisionConfig parse(const io::ConfigReader& c);
};

/// ref: configuration_qwen3_vl.py Qwen3VLVisionConfig.
struct Qwen3VisionConfig {
  int depth = 27;
  int hidden_size = 1152;
  int intermediate_size = 4304;
  int num_heads = 16;
  int in_channels = 3;
  int patch_size = 16;
  int spatial_merge_size = 2;
  int temporal_patch_size = 2;
  int out_hidden_size = 3584;
  int num_position_embeddings = 2304;
  std::vector<int> deepstack_visual_indexes{8, 16, 24};
  nn::Activation hidden_act = nn::Activation::gelu_tanh;
  double rope_theta = 10000.0;

  int head_dim() const { return hidden_size / num_heads; }
  int patch_dim() const { return in_channels * temporal_patch_size * patch_size * patch_size; }
  /// The learned position grid's side (int(sqrt(num_position_embeddings))).
  int grid_side() const;
  static Qwen3VisionConfig parse(const io::ConfigReader& c);
};

struct Config {
  std::string model_type;     ///< qwen2_5_vl or qwen3_vl
  VisionConfig vision;        ///< qwen2_5_vl
  Qwen3VisionConfig vision3;  ///< qwen3_vl
  int spatial_merge_size = 2;
  int vision_out_hidden_size = 0;
  /// Qwen3-VL's interleaved M-RoPE sections (ref: Qwen3VLTextRotaryEmbedding).
  bool interleaved = false;
  /// The text model's config as the qwen3 family reads it (model_type qwen2 or qwen3, default
  /// RoPE).
  nlohmann::json text;
  std::vector<int> mrope_section{16, 24, 24};
  int image_token_id = 151655;
  int video_token_id = 151656;

  static Config parse(const io::ConfigReader& c);
};

inline VisionConfig VisionConfig::parse(const io::ConfigReader& c) {
  VisionConfig v;
  v.depth = c.get<int>("depth", v.depth);
  v.hidden_size = c.get<int>("hidden_size", v.hidden_size);
  v.intermediate_size = c.get<int>("intermediate_size", v.intermediate_size);
  v.num_heads = c.get<int>("num_heads", v.num_heads);
  v.in_channels = c.get<int>("in_channels", c.get<int>("in_chans", v.in_channels));
  v.patch_size = c.get<int>("patch_size", v.patch_size);
  v.spatial_merge_size = c.get<int>("spatial_merge_size", v.spatial_merge_size);
  v.temporal_patch_size = c.get<int>("temporal_patch_size", v.temporal_patch_size);
  v.window_size = c.get<int>("window_size", v.window_size);
  v.tokens_per_second = c.get<int>("tokens_per_second", v.tokens_per_second);
  v.out_hidden_size = c.get<int>("out_hidden_size", v.out_hidden_size);
  if (c.has("fullatt_block_indexes")) v.fullatt_block_indexes = c.int_list("fullatt_block_indexes");
  v.hidden_act =
      nn::parse_activation(c.get<std::string>("hidden_act", "silu"), c.field("hidden_act"));
  v.rope_theta = c.child("rope_parameters").get<double>("rope_theta", v.rope_theta);
  auto positive = [&](int x, const char* key) {
    if (x <= 0) fail<ConfigError>("{}: must be positive, got {}", c.field(key), x);
  };
  positive(v.depth, "depth");
  positive(v.hidden_size, "hidden_size");
  positive(v.intermediate_size, "intermediate_size");
  positive(v.num_heads, "num_heads");
  positive(v.in_channels, "in_channels");
  positive(v.patch_size, "patch_size");
  positive(v.spatial_merge_size, "spatial_merge_size");
  positive(v.temporal_patch_size, "temporal_patch_size");
  positive(v.out_hidden_size, "out_hidden_size");
  if (v.hidden_size % v.num_heads != 0 || v.head_dim() % 4 != 0)
    fail<ConfigError>("{}: {} heads of {} must give a head size divisible by 4",
                      c.field("num_heads"), v.num_heads, v.hidden_size);
  const int unit = v.spatial_merge_size * v.patch_size;
  if (v.window_size < unit || v.window_size % unit != 0)
    fail<ConfigError>("{}: {} is not a positive multiple of spatial_merge_size * patch_size ({})",
                      c.field("window_size"), v.window_size, unit);
  for (int i : v.fullatt_block_indexes)
    if (i < 0 || i >= v.depth)
      fail<ConfigError>("{}: block {} out of range [0, {})", c.field("fullatt_block_indexes"), i,
                        v.depth);
  return v;
}

inline int Qwen3VisionConfig::grid_side() const {
  int side = 0;
  while ((side + 1) * (side + 1) <= num_position_embeddings) ++side;
  return side;
}

inline Qwen3VisionConfig Qwen3VisionConfig::parse(const io::ConfigReader& c) {
  Qwen3VisionConfig v;
  v.depth = c.get<int>("depth", v.depth);
  v.hidden_size = c.get<int>("hidden_size", v.hidden_size);
  v.intermediate_size = c.get<int>("intermediate_size", v.intermediate_size);
  v.num_heads = c.get<int>("num_heads", v.num_heads);
  v.in_channels = c.get<int>("in_channels", v.in_channels);
  v.patch_size = c.get<int>("patch_size", v.patch_size);
  v.spatial_merge_size = c.get<int>("spatial_merge_size", v.spatial_merge_size);
  v.temporal_patch_size = c.get<int>("temporal_patch_size", v.temporal_patch_size);
  v.out_hidden_size = c.get<int>("out_hidden_size", v.out_hidden_size);
  v.num_position_embeddings = c.get<int>("num_position_embeddings", v.num_position_embeddings);
  if (c.has("deepstack_visual_indexes"))
    v.deepstack_visual_indexes = c.int_list("deepstack_visual_indexes");
  v.hidden_act = nn::parse_activation(c.get<std::string>("hidden_act", "gelu_pytorch_tanh"),
                                      c.field("hidden_act"));
  v.rope_theta = c.child("rope_parameters").get<double>("rope_theta", v.rope_theta);
  for (const char* key :
       {"depth", "hidden_size", "intermediate_size", "num_heads", "in_channels", "patch_size",
        "spatial_merge_size", "temporal_patch_size", "out_hidden_size", "num_position_embeddings"})
    if (c.has(key) && c.required<int>(key) <= 0)
      fail<ConfigError>("{}: must be positive, got {}", c.field(key), c.required<int>(key));
  if (v.hidden_size % v.num_heads != 0 || v.head_dim() % 4 != 0)
    fail<ConfigError>("{}: {} heads of {} must give a head size divisible by 4",
                      c.field("num_heads"), v.num_heads, v.hidden_size);
  for (int i : v.deepstack_visual_indexes)
    if (i < 0 || i >= v.depth)
      fail<ConfigError>("{}: block {} out of range [0, {})", c.field("deepstack_visual_indexes"), i,
                        v.depth);
  return v;
}

inline Config Config::parse(const io::ConfigReader& c) {
  Config cfg;
  cfg.model_type = c.required<std::string>("model_type");
  const bool v3 = cfg.model_type == "qwen3_vl";
  if (v3) {
    cfg.vision3 = Qwen3VisionConfig::parse(c.child("vision_config"));
    cfg.spatial_merge_size = cfg.vision3.spatial_merge_size;
    cfg.vision_out_hidden_size = cfg.vision3.out_hidden_size;
    cfg.mrope_section = {24, 20, 20};
    cfg.interleaved = true;
  } else if (cfg.model_type == "qwen2_5_vl") {
    cfg.vision = VisionConfig::parse(c.child("vision_config"));
    cfg.spatial_merge_size = cfg.vision.spatial_merge_size;
    cfg.vision_out_hidden_size = cfg.vision.out_hidden_size;
  } else {
    fail<UnsupportedError>("{}: '{}' is not a Qwen-VL model type (qwen2_5_vl, qwen3_vl)",
                           c.field("model_type"), cfg.model_type);
  }
  cfg.image_token_id = c.get<int>("image_token_id", cfg.image_token_id);
  cfg.video_token_id = c.get<int>("video_token_id", cfg.video_token_id);
  // transformers 5.x nests the text model's fields in text_config; 4.x wrote them at the top.
  const auto nested = c.child("text_config");
  nlohmann::json text = nested.has("hidden_size") ? nested.json() : c.json();
  text.erase("vision_config");
  text.erase("text_config");
  for (const char* key : {"eos_token_id", "bos_token_id", "quantization", "quantization_config"})
    if (!text.contains(key) && c.has(key)) text[key] = c.json().at(key);
  // ref: Qwen2_5_VLConfig.__post_init__ — a tied head set in either place ties it.
  text["tie_word_embeddings"] =
      c.get<bool>("tie_word_embeddings", false) || nested.get<bool>("tie_word_embeddings", false);
  // ref: Qwen2_5_VLTextConfig.convert_rope_params_to_dict — "mrope" is the default RoPE whose
  // pairs are split by mrope_section; rope_theta defaults to 1e6 (Qwen3VLTextConfig: 5e5).
  const io::ConfigReader reader(text, nested.has("hidden_size") ? nested.where() : c.where());
  const auto params = reader.has("rope_parameters") ? reader.child("rope_parameters")
                                                    : reader.child("rope_scaling");
  if (params.has("mrope_section")) cfg.mrope_section = params.int_list("mrope_section");
  const auto type = params.has("rope_type") ? params.required<std::string>("rope_type")
                                            : params.get<std::string>("type", "default");
  if (type != "default" && type != "mrope")
    fail<UnsupportedError>("{}: RoPE type '{}' is not supported with M-RoPE (default, mrope)",
                           params.field("rope_type"), type);
  const double theta =
      params.get<double>("rope_theta", reader.get<double>("rope_theta", v3 ? 5e5 : 1e6));
  text.erase("rope_scaling");
  text.erase("rope_theta");
  text["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", theta}};
  text["model_type"] = v3 ? "qwen3" : "qwen2";
  cfg.text = std::move(text);
  for (int s : cfg.mrope_section)
    if (s <= 0) fail<ConfigError>("{}: sections must be positive", params.field("mrope_section"));
  return cfg;
}

}  // namespace ominix::qwen_vl
