#include "ominix/io/config.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>

#include "ominix/base/error.h"

namespace ominix::io {

using Json = nlohmann::json;

namespace {

// Deeper nesting is rejected while parsing: code that walks a value recursively (dump, the
// template engine's conversion) must not run out of stack on `[[[[...`.
constexpr int kMaxJsonDepth = 512;

// "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at line 1, ...".
std::string why(const nlohmann::json::exception& e) {
  std::string_view w = e.what();
  if (w.starts_with("[json.exception.")) {
    auto close = w.find("] ");
    if (close != std::string_view::npos) w.remove_prefix(close + 2);
  }
  return std::string(w);
}

template <typename J>
J parse_any(std::string_view text, const std::string& source, std::string_view what) {
  typename J::parser_callback_t depth_check = [&](int depth, typename J::parse_event_t, J&) {
    if (depth > kMaxJsonDepth)
      fail<FormatError>("{}: {}: nested deeper than {} levels", source, what, kMaxJsonDepth);
    return true;
  };
  try {
    return J::parse(text.begin(), text.end(), depth_check);
  } catch (const nlohmann::json::exception& e) {
    fail<FormatError>("{}: {}: {}", source, what, why(e));
  }
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<IoError>("{}: cannot open", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail<IoError>("{}: read error", path.string());
  return std::move(ss).str();
}

}  // namespace

Json parse_json(std::string_view text, const std::string& source, std::string_view what) {
  return parse_any<Json>(text, source, what);
}

nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source,
                                          std::string_view what) {
  return parse_any<nlohmann::ordered_json>(text, source, what);
}

Json read_json_file(const std::filesystem::path& path) {
  return parse_json(read_text(path), path.string());
}

nlohmann::ordered_json read_ordered_json_file(const std::filesystem::path& path) {
  return parse_ordered_json(read_text(path), path.string());
}

ConfigReader::ConfigReader(Json j, std::string where)
    : json_(std::move(j)), where_(std::move(where)) {
  if (json_.is_null()) json_ = Json::object();
}

ConfigReader ConfigReader::load(const std::filesystem::path& path) {
  Json j = read_json_file(path);
  if (!j.is_object()) fail<FormatError>("{}: expected a JSON object at top level", path.string());
  return ConfigReader(std::move(j), path.filename().string());
}

std::string ConfigReader::field(const std::string& key) const {
  return where_ + ": " + key;
}

bool ConfigReader::has(const std::string& key) const {
  auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

namespace {
template <typename T>
bool holds(const Json& j) {
  if constexpr (std::is_same_v<T, bool>)
    return j.is_boolean();
  else if constexpr (std::is_integral_v<T>)
    return j.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>)
    return j.is_number();
  else if constexpr (std::is_same_v<T, std::string>)
    return j.is_string();
  else
    return true;
}
template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "a boolean";
  else if constexpr (std::is_integral_v<T>)
    return "an integer";
  else if constexpr (std::is_floating_point_v<T>)
    return "a number";
  else if constexpr (std::is_same_v<T, std::string>)
    return "a string";
  else
    return "a value";
}
}  // namespace

template <typename T>
std::optional<T> ConfigReader::optional(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const Json& v = json_.at(key);
  if (!holds<T>(v))
    fail<ConfigError>("{}: expected {}, got {}", field(key), type_name<T>(), v.dump());
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (v.is_number_unsigned() &&
        v.get<unsigned long long>() > std::numeric_limits<long long>::max())
      fail<ConfigError>("{}: {} is out of range", field(key), v.dump());
    auto i = v.get<long long>();
    if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max())
      fail<ConfigError>("{}: {} is out of range", field(key), i);
  }
  if constexpr (std::is_same_v<T, float>) {  // a double beyond float's range is not a float
    const double d = v.get<double>();
    if (std::isfinite(d) && std::abs(d) > std::numeric_limits<float>::max())
      fail<ConfigError>("{}: {} is out of range", field(key), v.dump());
  }
  return v.get<T>();
}

template <typename T>
T ConfigReader::required(const std::string& key) const {
  auto v = optional<T>(key);
  if (!v) fail<ConfigError>("{}: required field is missing", field(key));
  return *v;
}

template <typename T>
T ConfigReader::get(const std::string& key, T fallback) const {
  return optional<T>(key).value_or(fallback);
}

#define OMINIX_INSTANTIATE(T)                                                    \
  template std::optional<T> ConfigReader::optional<T>(const std::string&) const; \
  template T ConfigReader::required<T>(const std::string&) const;                \
  template T ConfigReader::get<T>(const std::string&, T) const;
OMINIX_INSTANTIATE(bool)
OMINIX_INSTANTIATE(int)
OMINIX_INSTANTIATE(long long)
OMINIX_INSTANTIATE(double)
OMINIX_INSTANTIATE(float)
OMINIX_INSTANTIATE(std::string)
#undef OMINIX_INSTANTIATE

ConfigReader ConfigReader::child(const std::string& key) const {
  if (!has(key)) return ConfigReader(Json::object(), field(key));
  const Json& v = json_.at(key);
  if (!v.is_object()) fail<ConfigError>("{}: expected an object, got {}", field(key), v.dump());
  return ConfigReader(v, field(key));
}

std::vector<int> ConfigReader::int_list(const std::string& key) const {
  if (!has(key)) return {};
  const Json& v = json_.at(key);
  auto as_int = [&](const Json& e) {
    if (!e.is_number_integer())
      fail<ConfigError>("{}: expected integers, got {}", field(key), v.dump());
    const std::int64_t i = e.is_number_unsigned() && e.get<std::uint64_t>() > INT64_MAX
                               ? INT64_MAX
                               : e.get<std::int64_t>();
    const bool fits = i >= INT32_MIN && i <= INT32_MAX;
    if (!fits) fail<ConfigError>("{}: {} is out of range", field(key), e.dump());
    return e.get<int>();
  };
  if (v.is_number_integer()) return {as_int(v)};
  std::vector<int> out;
  if (v.is_array()) {
    for (const auto& e : v) out.push_back(as_int(e));
    return out;
  }
  fail<ConfigError>("{}: expected an integer or a list of integers, got {}", field(key), v.dump());
}

AttentionConfig AttentionConfig::parse(const ConfigReader& c) {
  AttentionConfig a;
  a.hidden_size = c.required<int>("hidden_size");
  a.num_attention_heads = c.required<int>("num_attention_heads");
  if (a.hidden_size <= 0) fail<ConfigError>("{}: must be positive", c.field("hidden_size"));
  if (a.num_attention_heads <= 0)
    fail<ConfigError>("{}: must be positive", c.field("num_attention_heads"));
  a.num_key_value_heads = c.get<int>("num_key_value_heads", a.num_attention_heads);
  if (a.num_key_value_heads <= 0 || a.num_attention_heads % a.num_key_value_heads != 0)
    fail<ConfigError>("{}: {} does not divide num_attention_heads = {}",
                      c.field("num_key_value_heads"), a.num_key_value_heads, a.num_attention_heads);
  if (c.has("head_dim")) {
    a.head_dim = c.required<int>("head_dim");
  } else {
    if (a.hidden_size % a.num_attention_heads != 0)
      fail<ConfigError>("{}: hidden_size {} is not a multiple of num_attention_heads {}",
                        c.field("head_dim"), a.hidden_size, a.num_attention_heads);
    a.head_dim = a.hidden_size / a.num_attention_heads;
  }
  if (a.head_dim <= 0) fail<ConfigError>("{}: must be positive", c.field("head_dim"));
  a.attention_bias = c.get<bool>("attention_bias", false);
  a.max_position_embeddings = c.get<int>("max_position_embeddings", 2048);
  if (c.get<bool>("use_sliding_window", true) && c.has("sliding_window")) {
    a.sliding_window = c.required<int>("sliding_window");
    if (*a.sliding_window <= 0)
      fail<ConfigError>("{}: must be positive", c.field("sliding_window"));
  }
  return a;
}

RopeConfig RopeConfig::parse(const ConfigReader& c) {
  RopeConfig r;
  // transformers 5.x writes rope_parameters; 4.x writes rope_theta (+ rope_scaling).
  ConfigReader params =
      c.has("rope_parameters") ? c.child("rope_parameters") : c.child("rope_scaling");
  r.theta = params.has("rope_theta") ? params.required<double>("rope_theta")
                                     : c.get<double>("rope_theta", 10000.0);
  r.partial_rotary_factor = params.has("partial_rotary_factor")
                                ? params.required<double>("partial_rotary_factor")
                                : c.get<double>("partial_rotary_factor", 1.0);
  if (r.partial_rotary_factor <= 0 || r.partial_rotary_factor > 1)
    fail<ConfigError>("{}: {} is not in (0, 1]", c.field("partial_rotary_factor"),
                      r.partial_rotary_factor);
  r.max_position_embeddings = c.get<int>("max_position_embeddings", 2048);
  r.traditional = c.get<bool>("rope_traditional", false);

  std::string type = params.has("rope_type") ? params.required<std::string>("rope_type")
                                             : params.get<std::string>("type", "default");
  if (type == "default")
    r.type = RopeType::standard;
  else if (type == "linear")
    r.type = RopeType::linear;
  else if (type == "llama3")
    r.type = RopeType::llama3;
  else if (type == "yarn")
    r.type = RopeType::yarn;
  else if (type == "dynamic")
    r.type = RopeType::dynamic;
  else
    fail<UnsupportedError>(
        "{}: RoPE type '{}' is not supported (default, linear, llama3, yarn, dynamic)",
        params.field("rope_type"), type);

  if (r.type != RopeType::standard) {
    auto factor = params.optional<double>("factor");
    if (!factor && r.type != RopeType::yarn)
      fail<ConfigError>("{}: required for rope type '{}'", params.field("factor"), type);
    r.factor = factor.value_or(0.0);
  }
  r.original_max_position_embeddings =
      params.has("original_max_position_embeddings")
          ? params.required<int>("original_max_position_embeddings")
          : c.get<int>("original_max_position_embeddings", r.max_position_embeddings);
  if (r.type == RopeType::yarn && r.factor == 0.0)
    r.factor = double(r.max_position_embeddings) / r.original_max_position_embeddings;
  r.low_freq_factor = params.get<double>("low_freq_factor", 1.0);
  r.high_freq_factor = params.get<double>("high_freq_factor", 4.0);
  r.beta_fast = params.get<double>("beta_fast", 32.0);
  r.beta_slow = params.get<double>("beta_slow", 1.0);
  r.mscale = params.optional<double>("mscale");
  r.mscale_all_dim = params.optional<double>("mscale_all_dim");
  r.attention_factor = params.optional<double>("attention_factor");
  r.truncate = params.get<bool>("truncate", true);
  if (r.type == RopeType::llama3 && r.high_freq_factor == r.low_freq_factor)
    fail<ConfigError>("{}: must differ from low_freq_factor", params.field("high_freq_factor"));
  return r;
}

const char* to_string(QuantMode m) {
  switch (m) {
    case QuantMode::affine:
      return "affine";
    case QuantMode::mxfp4:
      return "mxfp4";
    case QuantMode::mxfp8:
      return "mxfp8";
    case QuantMode::nvfp4:
      return "nvfp4";
  }
  return "affine";
}

void validate(const QuantSpec& s, const std::string& where) {
  switch (s.mode) {
    case QuantMode::affine:
      if (s.bits != 2 && s.bits != 3 && s.bits != 4 && s.bits != 5 && s.bits != 6 && s.bits != 8)
        fail<ConfigError>("{}: bits = {} is not supported (affine takes 2, 3, 4, 5, 6 or 8)", where,
                          s.bits);
      if (s.group_size != 32 && s.group_size != 64 && s.group_size != 128)
        fail<ConfigError>("{}: group_size = {} is not supported (32, 64 or 128)", where,
                          s.group_size);
      return;
    case QuantMode::mxfp4:
    case QuantMode::mxfp8:
      if (s.group_size != 32 || s.bits != (s.mode == QuantMode::mxfp4 ? 4 : 8))
        fail<ConfigError>("{}: {} takes group_size 32 and bits {}", where, to_string(s.mode),
                          s.mode == QuantMode::mxfp4 ? 4 : 8);
      return;
    case QuantMode::nvfp4:
      if (s.group_size != 16 || s.bits != 4)
        fail<ConfigError>("{}: nvfp4 takes group_size 16 and bits 4", where);
      return;
  }
}

namespace {
QuantSpec parse_spec(const ConfigReader& q, const QuantSpec& base) {
  QuantSpec s = base;
  s.group_size = q.get<int>("group_size", base.group_size);
  s.bits = q.get<int>("bits", base.bits);
  if (q.has("mode")) {
    auto mode = q.required<std::string>("mode");
    if (mode == "affine")
      s.mode = QuantMode::affine;
    else if (mode == "mxfp4")
      s.mode = QuantMode::mxfp4;
    else if (mode == "mxfp8")
      s.mode = QuantMode::mxfp8;
    else if (mode == "nvfp4")
      s.mode = QuantMode::nvfp4;
    else
      fail<UnsupportedError>("{}: quantization mode '{}' is not supported", q.field("mode"), mode);
  }
  validate(s, q.where());
  return s;
}
}  // namespace

std::optional<QuantizationConfig> QuantizationConfig::parse(const ConfigReader& c) {
  const char* key = c.has("quantization") ? "quantization" : "quantization_config";
  if (!c.has(key)) return std::nullopt;
  ConfigReader q = c.child(key);
  // A transformers quantization_config of another method (gptq, awq, bitsandbytes...) is not ours.
  if (q.has("quant_method"))
    fail<UnsupportedError>("{}: quant_method '{}' is not supported (MLX affine quantization only)",
                           q.field("quant_method"), q.json().at("quant_method").dump());
  QuantizationConfig out;
  out.global = parse_spec(q, QuantSpec{});
  for (const auto& [name, value] : q.json().items()) {
    if (value.is_object()) {
      out.overrides[name] = parse_spec(ConfigReader(value, q.field(name)), out.global);
    } else if (value.is_boolean()) {
      out.overrides[name] = value.get<bool>() ? std::optional<QuantSpec>(out.global) : std::nullopt;
    }
  }
  return out;
}

std::optional<QuantSpec> QuantizationConfig::spec_for(const std::string& module) const {
  auto it = overrides.find(module);
  if (it != overrides.end()) return it->second;
  return global;
}

}  // namespace ominix::io
