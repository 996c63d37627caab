// config.json reading: typed field access whose errors name the file and the field, and typed
// structs per concern (attention, RoPE, quantization) with the defaults the references use.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ominix::io {

/// Parses JSON text. Every parser exception (syntax, invalid UTF-8, a number out of range such as
/// `1E400`, nesting deeper than 512 levels) becomes a FormatError "<source>: <what>: <why>".
nlohmann::json parse_json(std::string_view text, const std::string& source,
                          std::string_view what = "invalid JSON");
/// The same, keeping the objects' key order.
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source,
                                          std::string_view what = "invalid JSON");
/// Reads and parses a JSON file: IoError if it cannot be read, FormatError as parse_json.
nlohmann::json read_json_file(const std::filesystem::path& path);
nlohmann::ordered_json read_ordered_json_file(const std::filesystem::path& path);

/// A JSON object plus where it came from ("config.json", "config.json: rope_scaling").
class ConfigReader {
 public:
  ConfigReader(nlohmann::json json, std::string where);

  /// Reads and parses a JSON file; IoError if unreadable, FormatError if not a JSON object.
  static ConfigReader load(const std::filesystem::path& path);

  bool has(const std::string& key) const;  ///< present and not null
  template <typename T>
  T required(const std::string& key) const;  ///< ConfigError if missing or of the wrong type
  template <typename T>
  T get(const std::string& key, T fallback) const;  ///< fallback if missing or null
  template <typename T>
  std::optional<T> optional(const std::string& key) const;
  /// A nested object; ConfigError if present but not an object, empty reader if absent.
  ConfigReader child(const std::string& key) const;
  /// Integer or list of integers (e.g. eos_token_id); empty if absent.
  std::vector<int> int_list(const std::string& key) const;

  const nlohmann::json& json() const { return json_; }
  const std::string& where() const { return where_; }
  /// "config.json: field" for error messages.
  std::string field(const std::string& key) const;

 private:
  nlohmann::json json_;
  std::string where_;
};

/// Shape of multi-head attention, from
/// hidden_size/num_attention_heads/num_key_value_heads/head_dim.
struct AttentionConfig {
  int hidden_size = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  ///< defaults to num_attention_heads
  int head_dim = 0;             ///< defaults to hidden_size / num_attention_heads
  bool attention_bias = false;
  int max_position_embeddings = 0;
  std::optional<int> sliding_window;  ///< only when use_sliding_window is not false

  static AttentionConfig parse(const ConfigReader& c);
};

enum class RopeType { standard, linear, llama3, yarn, dynamic };

/// Rotary embedding parameters, from transformers 4.x (`rope_theta` + `rope_scaling`) or 5.x
/// (`rope_parameters`) configs alike.
struct RopeConfig {
  RopeType type = RopeType::standard;
  double theta = 10000.0;
  double partial_rotary_factor = 1.0;
  double factor = 1.0;
  int max_position_embeddings = 2048;
  int original_max_position_embeddings = 2048;
  double low_freq_factor = 1.0;                                    // llama3
  double high_freq_factor = 4.0;                                   // llama3
  double beta_fast = 32.0;                                         // yarn
  double beta_slow = 1.0;                                          // yarn
  std::optional<double> mscale, mscale_all_dim, attention_factor;  // yarn
  bool truncate = true;                                            // yarn
  bool traditional = false;  ///< interleaved pairs (GPT-J style) instead of half split
  /// llama.cpp's `rope_freqs` tensor (GGUF; what convert_hf_to_gguf writes for llama3 scaling):
  /// each inverse frequency is divided by its factor, after the type's own scaling. One per
  /// rotated pair; empty for none.
  std::vector<float> freq_factors;

  static RopeConfig parse(const ConfigReader& c);
};

enum class QuantMode { affine, mxfp4, mxfp8, nvfp4 };
const char* to_string(QuantMode m);

/// How one weight matrix is quantized (MLX's layout).
struct QuantSpec {
  int group_size = 64;
  int bits = 4;
  QuantMode mode = QuantMode::affine;
  bool operator==(const QuantSpec&) const = default;
};

/// The `quantization` (or `quantization_config`) section as mlx-lm writes it: a global spec and
/// per-module overrides keyed by module path (a spec, or `false` for a module left unquantized).
struct QuantizationConfig {
  QuantSpec global;
  std::map<std::string, std::optional<QuantSpec>> overrides;

  /// nullopt when the config has no quantization section. ConfigError on unsupported values.
  static std::optional<QuantizationConfig> parse(const ConfigReader& c);
  /// The spec for a module path such as "model.layers.0.mlp.down_proj" (nullopt: unquantized).
  std::optional<QuantSpec> spec_for(const std::string& module) const;
};

/// Throws ConfigError unless (group_size, bits, mode) is a combination MLX supports.
void validate(const QuantSpec& spec, const std::string& where);

}  // namespace ominix::io
