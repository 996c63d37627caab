// Port of transformers 5.24.0 src/transformers/models/gemma3/modeling_gemma3.py (text model), read
// beside mlx-lm 0.32.2 mlx_lm/models/gemma3_text.py; GGUF naming of llama.cpp's
// convert_hf_to_gguf.py (Gemma3Model) as gguf-py 0.19 constants.py spells it.
#include "ominix/models/gemma3.h"

#include <mlx/ops.h>

#if defined(__APPLE__)
#include <mach-o/dyld.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "models/gemma3/config.h"
#include "ominix/io/gguf.h"
#include "ominix/io/weights.h"
#include "ominix/nn/fused.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/mlp.h"
#include "ominix/nn/norm.h"
#include "ominix/nn/rope.h"

namespace ominix::gemma3 {
namespace {

namespace mx = mlx::core;

/// ref: modeling_gemma3.py Gemma3RMSNorm — x * rsqrt(mean(x^2) + eps) * (1 + w) in float32, then
/// cast back. `norm.weight` holds 1 + w in float32 (llama.cpp's GGUF stores 1 + w already).
struct RMSNorm {
  nn::RMSNorm norm;

  static RMSNorm load(io::WeightMap& w, const std::string& key, int dim, float eps, bool gguf) {
    auto weight = mx::astype(w.take(key + ".weight", {dim}), mx::float32);
    return {{gguf ? weight : mx::add(weight, mx::array(1.0f)), eps}};
  }
  mx::array operator()(const mx::array& x) const {
    return mx::astype(norm(mx::astype(x, mx::float32)), x.dtype());
  }
};

/// {x's value, its norm}: x's pending add (in x's dtype) and the norm, one kernel on CUDA where
/// the model runs in float32. fast::rms_norm of h against the float32 weight computes in float32,
/// as RMSNorm does.
nn::AddNorm add_rms_norm(const nn::Residual& x, const RMSNorm& norm) {
  auto [h, n] = nn::add_rms_norm(x, norm.norm);
  return {h, mx::astype(n, h.dtype())};
}

struct Attention {
  nn::LinearLayer q_proj, k_proj, v_proj, o_proj;
  RMSNorm q_norm, k_norm;
  nn::RoPE rope;
  int n_heads, n_kv_heads;
  float scale;

  static Attention load(io::WeightMap& w, const std::string& p, const Config& c, bool sliding,
                        bool gguf) {
    const auto& a = c.attention;
    const int D = a.hidden_size, q_dim = a.num_attention_heads * a.head_dim,
              kv_dim = a.num_key_value_heads * a.head_dim;
    auto linear = [&](const char* name, nn::LinearShape shape) {
      return nn::LinearLayer::load(w, p + name, shape, c.quantization);
    };
    return {linear("q_proj", {D, q_dim, a.attention_bias}),
            linear("k_proj", {D, kv_dim, a.attention_bias}),
            linear("v_proj", {D, kv_dim, a.attention_bias}),
            linear("o_proj", {q_dim, D, a.attention_bias}),
            RMSNorm::load(w, p + "q_norm", a.head_dim, c.rms_norm_eps, gguf),
            RMSNorm::load(w, p + "k_norm", a.head_dim, c.rms_norm_eps, gguf),
            nn::RoPE(sliding ? c.rope_local : c.rope_global, a.head_dim),
            a.num_attention_heads,
            a.num_key_value_heads,
            1.0f / std::sqrt(c.query_pre_attn_scalar)};  // ref: Gemma3Attention.scaling
  }

  mx::array operator()(const mx::array& x, const nn::AttentionMask& mask,
                       generate::LayerCache& cache) const {
    const int B = x.shape(0), L = x.shape(1);
    auto queries = q_norm(mx::reshape(q_proj(x), {B, L, n_heads, -1}));  // -> [B,L,H,Dh]
    auto keys = k_norm(mx::reshape(k_proj(x), {B, L, n_kv_heads, -1}));
    auto values = mx::reshape(v_proj(x), {B, L, n_kv_heads, -1});
    queries = rope(mx::transpose(queries, {0, 2, 1, 3}), cache.offset());  // -> [B,H,L,Dh]
    keys = rope(mx::transpose(keys, {0, 2, 1, 3}), cache.offset());
    values = mx::transpose(values, {0, 2, 1, 3});
    auto output = cache.update_and_attend(queries, keys, values, scale, mask);    // [B,H,L,Dh]
    return o_proj(mx::reshape(mx::transpose(output, {0, 2, 1, 3}), {B, L, -1}));  // [B,L,H*Dh]
  }
};

using MLP = nn::GatedMLP;

struct DecoderLayer {
  Attention self_attn;
  MLP mlp;
  RMSNorm input_layernorm, post_attention_layernorm, pre_feedforward_layernorm,
      post_feedforward_layernorm;

  static DecoderLayer load(io::WeightMap& w, const Config& c, int i, bool gguf) {
    const auto p = fmt::format("model.layers.{}.", i);
    const int D = c.attention.hidden_size, I = c.intermediate_size;
    auto linear = [&](const std::string& name, nn::LinearShape shape) {
      return nn::LinearLayer::load(w, p + name, shape, c.quantization);
    };
    auto norm = [&](const char* name) {
      return RMSNorm::load(w, p + name, D, c.rms_norm_eps, gguf);
    };
    const bool sliding = c.layer_types[i] == LayerType::sliding_attention;
    return {Attention::load(w, p + "self_attn.", c, sliding, gguf),
            {nn::FusedLinear({linear("mlp.gate_proj", {D, I}), linear("mlp.up_proj", {D, I})}),
             linear("mlp.down_proj", {I, D}), c.hidden_activation},
            norm("input_layernorm"),
            norm("post_attention_layernorm"),
            norm("pre_feedforward_layernorm"),
            norm("post_feedforward_layernorm")};
  }

  /// ref: Gemma3DecoderLayer.forward — norms before and after both the attention and the MLP.
  /// x's pending add is done with input_layernorm; this layer's own last add is left to the next
  /// norm (nn::Residual).
  nn::Residual operator()(const nn::Residual& x, const nn::AttentionMask& mask,
                          generate::LayerCache& cache) const {
    auto h = add_rms_norm(x, input_layernorm);  // {x's value, its norm}
    auto r = post_attention_layernorm(self_attn(h.normed, mask, cache));
    h = add_rms_norm(nn::Residual{h.sum, r}, pre_feedforward_layernorm);
    return {h.sum, post_feedforward_layernorm(mlp(h.normed))};
  }
};

class Model final : public generate::LanguageModel {
 public:
  Model(Config config, io::WeightMap& w, generate::ModelInfo info, bool gguf)
      : config_(std::move(config)),
        info_(std::move(info)),
        embed_tokens(nn::Embedding::load(w, "model.embed_tokens", config_.vocab_size,
                                         config_.attention.hidden_size, config_.quantization)),
        norm(RMSNorm::load(w, "model.norm", config_.attention.hidden_size, config_.rms_norm_eps,
                           gguf)) {
    for (int i = 0; i < config_.num_hidden_layers; ++i)
      layers.push_back(DecoderLayer::load(w, config_, i, gguf));
    const auto& t = config_.layer_types;
    first_full_ = int(std::find(t.begin(), t.end(), LayerType::full_attention) - t.begin());
    first_sliding_ = int(std::find(t.begin(), t.end(), LayerType::sliding_attention) - t.begin());
  }

  mx::array operator()(const mx::array& tokens, generate::Cache& cache) const override {
    generate::check_tokens("gemma3", tokens);
    generate::check_cache_layers("gemma3", cache, layers.size());
    const int L = tokens.shape(1);
    // ref: Gemma3TextScaledWordEmbedding — the scale is rounded to the weights' dtype first.
    auto x = embed_tokens(tokens);  // [B,L] -> [B,L,D]
    auto scale = mx::astype(mx::array(std::sqrt(float(config_.attention.hidden_size))), x.dtype());
    nn::Residual h{mx::multiply(x, scale), std::nullopt};
    // Each kind's mask from a cache of that kind (mlx-lm gemma3_text.py Gemma3Model).
    const auto n = int(layers.size());
    const auto full = first_full_ < n ? cache[first_full_].make_mask(L) : nn::AttentionMask{};
    const auto window = first_sliding_ < n ? cache[first_sliding_].make_mask(
                                                 L, {.window_size = config_.sliding_window})
                                           : nn::AttentionMask{};
    for (int i = 0; i < n; ++i)
      h = layers[i](h, config_.layer_types[i] == LayerType::sliding_attention ? window : full,
                    cache[i]);
    auto logits = embed_tokens.as_linear(add_rms_norm(h, norm).normed);  // tied head: -> [B,L,V]
    if (config_.final_logit_softcapping) {  // ref: Gemma3ForCausalLM.forward
      auto cap = mx::array(*config_.final_logit_softcapping, logits.dtype());
      logits = mx::multiply(mx::tanh(mx::divide(logits, cap)), cap);
    }
    return logits;
  }

  /// Sliding layers: a rotating cache of the window; global layers: growing (rotating with
  /// max_kv_size, quantized with kv_bits).
  generate::Cache make_cache(const generate::CacheOptions& options) const override {
    generate::Cache::make(0, options);  // validates the options
    std::vector<std::unique_ptr<generate::LayerCache>> caches;
    for (auto type : config_.layer_types) {
      if (type == LayerType::sliding_attention)
        caches.push_back(std::make_unique<generate::RotatingKVCache>(config_.sliding_window, 0));
      else if (options.max_kv_size)
        caches.push_back(
            std::make_unique<generate::RotatingKVCache>(*options.max_kv_size, options.keep));
      else if (options.kv_bits)
        caches.push_back(std::make_unique<generate::QuantizedKVCache>(
            generate::KVQuantization{*options.kv_bits, options.kv_group_size}));
      else
        caches.push_back(std::make_unique<generate::KVCache>());
    }
    return generate::Cache(std::move(caches));
  }

  const generate::ModelInfo& info() const override { return info_; }

 private:
  Config config_;
  generate::ModelInfo info_;
  nn::Embedding embed_tokens;
  std::vector<DecoderLayer> layers;
  RMSNorm norm;
  int first_full_ = 0, first_sliding_ = 0;
};

/// ref: mlx-lm gemma3_text.py Model.sanitize — drops the tied head and rotary caches; the
/// multimodal layout (model.language_model.* or language_model.model.*) keeps only the text.
void sanitize(io::WeightMap& w) {
  io::TensorMap kept;
  for (auto& [key, value] : w.tensors()) {
    std::string k = key;
    for (const char* prefix : {"model.language_model.", "language_model.model."})
      if (k.starts_with(prefix)) k = "model." + k.substr(std::string(prefix).size());
    if (k.starts_with("lm_head.") || k.ends_with("rotary_emb.inv_freq") ||
        k.starts_with("model.vision_tower.") || k.starts_with("vision_tower.") ||
        k.starts_with("model.multi_modal_projector.") || k.starts_with("multi_modal_projector."))
      continue;
    kept.insert_or_assign(k, value);
  }
  w.tensors() = std::move(kept);
}

generate::ModelInfo model_info(const Config& c, std::string type, std::vector<int> eos,
                               std::optional<int> bos, mx::Dtype dtype) {
  return {.model_type = std::move(type),
          .vocab_size = c.vocab_size,
          .num_layers = c.num_hidden_layers,
          .max_position_embeddings = c.attention.max_position_embeddings,
          .eos_token_ids = std::move(eos),
          .bos_token_id = bos,
          .dtype = dtype};
}

std::unique_ptr<generate::LanguageModel> build(const std::filesystem::path& dir,
                                               const io::ConfigReader& reader,
                                               const generate::LoadModelOptions& options) {
  auto config = Config::parse(reader);
  io::WeightMap w(io::load_checkpoint(dir, {.dtype = options.dtype}), dir.string());
  sanitize(w);
  auto embed = w.tensors().find("model.embed_tokens.scales");
  if (embed == w.tensors().end()) embed = w.tensors().find("model.embed_tokens.weight");
  const auto dtype = embed != w.tensors().end() ? embed->second.dtype() : mx::float32;
  const auto text =
      reader.required<std::string>("model_type") == "gemma3" ? reader.child("text_config") : reader;
  auto bos = reader.optional<int>("bos_token_id");
  if (!bos) bos = text.optional<int>("bos_token_id");
  auto eos = generate::read_eos_token_ids(dir, reader);
  if (eos.empty()) eos = text.int_list("eos_token_id");
  auto info = model_info(config, reader.required<std::string>("model_type"), eos, bos, dtype);
  auto model = std::make_unique<Model>(std::move(config), w, std::move(info), false);
  w.finish();
  return model;
}

/// llama.cpp's tensor names -> transformers' (gguf-py constants.py MODEL_ARCH.GEMMA3).
std::string rename_gguf(const std::string& name) {
  static const io::GgufLayerNames kLayer = {{"attn_q.", "self_attn.q_proj."},
                                            {"attn_k.", "self_attn.k_proj."},
                                            {"attn_v.", "self_attn.v_proj."},
                                            {"attn_output.", "self_attn.o_proj."},
                                            {"attn_q_norm.", "self_attn.q_norm."},
                                            {"attn_k_norm.", "self_attn.k_norm."},
                                            {"attn_norm.", "input_layernorm."},
                                            {"post_attention_norm.", "post_attention_layernorm."},
                                            {"ffn_norm.", "pre_feedforward_layernorm."},
                                            {"post_ffw_norm.", "post_feedforward_layernorm."},
                                            {"ffn_gate.", "mlp.gate_proj."},
                                            {"ffn_up.", "mlp.up_proj."},
                                            {"ffn_down.", "mlp.down_proj."}};
  // Gemma 3 ties its head: an output.* tensor keeps its name (and is reported as unused).
  if (name.starts_with("output.")) return name;
  return io::rename_gguf_tensor(name, kLayer);
}

/// The GGUF metadata as the config.json transformers' GGUF loader would build
/// (integrations/gguf/gguf_config_mapping.py "gemma3"), plus what llama.cpp reads or hard-codes:
/// query_pre_attn_scalar = key_length (llama.cpp's attention scale for all but 27B), local rope
/// base rope.freq_base_swa or 10000, sliding_window_pattern (a period, or per-layer booleans,
/// true = sliding) or 6.
nlohmann::json gguf_config(const io::GgufMetadata& m, int vocab_size) {
  auto key = [](const char* k) { return std::string("gemma3.") + k; };
  const int layers = m.required<int>(key("block_count"));
  const int heads = m.required<int>(key("attention.head_count"));
  const int embd = m.required<int>(key("embedding_length"));
  const int head_dim = m.get<int>(key("attention.key_length"), embd / heads);
  nlohmann::json c{{"model_type", "gemma3_text"},
                   {"vocab_size", vocab_size},
                   {"max_position_embeddings", m.get<int>(key("context_length"), 131072)},
                   {"hidden_size", embd},
                   {"num_hidden_layers", layers},
                   {"intermediate_size", m.required<int>(key("feed_forward_length"))},
                   {"num_attention_heads", heads},
                   {"num_key_value_heads", m.get<int>(key("attention.head_count_kv"), heads)},
                   {"head_dim", head_dim},
                   {"query_pre_attn_scalar", head_dim},
                   {"rms_norm_eps", m.get<double>(key("attention.layer_norm_rms_epsilon"), 1e-6)},
                   {"sliding_window", m.get<int>(key("attention.sliding_window"), 4096)},
                   {"rope_theta", m.get<double>(key("rope.freq_base"), 1e6)},
                   {"rope_local_base_freq", m.get<double>(key("rope.freq_base_swa"), 1e4)},
                   {"final_logit_softcapping",
                    m.optional<double>(key("final_logit_softcapping"))
                        ? nlohmann::json(*m.optional<double>(key("final_logit_softcapping")))
                        : nlohmann::json(nullptr)}};
  const auto scaling = m.get<std::string>(key("rope.scaling.type"), "none");
  if (scaling == "linear")
    c["rope_scaling"] = {{"rope_type", "linear"},
                         {"factor", m.required<double>(key("rope.scaling.factor"))}};
  else if (scaling != "none")
    fail<UnsupportedError>("{}: rope scaling '{}' is not supported for gemma3",
                           m.field(key("rope.scaling.type")), scaling);
  if (const auto* p = m.find(key("attention.sliding_window_pattern"));
      p && p->is_array() && p->element_type == io::GgufType::boolean) {
    c["layer_types"] = nlohmann::json::array();
    for (bool sliding : std::get<std::vector<bool>>(p->data))
      c["layer_types"].push_back(sliding ? "sliding_attention" : "full_attention");
  } else {
    c["sliding_window_pattern"] = m.get<int>(key("attention.sliding_window_pattern"), 6);
  }
  return c;
}

}  // namespace

void register_family() {
  for (const char* type : {"gemma3_text", "gemma3"}) generate::register_model(type, build);
  generate::register_gguf(
      "gemma3", [](const std::filesystem::path& file, const generate::LoadModelOptions& options) {
        return load_gguf(file, options);
      });
}

std::unique_ptr<generate::LanguageModel> load(const std::filesystem::path& dir,
                                              const generate::LoadModelOptions& options) {
  return build(dir, io::ConfigReader::load(dir / "config.json"), options);
}

std::unique_ptr<generate::LanguageModel> load_gguf(const std::filesystem::path& file,
                                                   const generate::LoadModelOptions& options) {
  auto ck =
      io::load_gguf_checkpoint(file, {.dtype = options.dtype.value_or(mx::float32)}, rename_gguf);
  if (const auto arch = ck.metadata.architecture(); arch != "gemma3")
    fail<UnsupportedError>("{}: architecture '{}' is not gemma3", file.string(), arch);
  auto embed = ck.tensors.find("model.embed_tokens.weight");
  if (embed == ck.tensors.end()) fail<WeightError>("{}: no token_embd.weight", file.string());
  const int vocab = ck.metadata.get<int>("gemma3.vocab_size", embed->second.shape(0));
  const io::ConfigReader reader(gguf_config(ck.metadata, vocab), file.string());
  auto config = Config::parse(reader);
  config.quantization = ck.quantization;
  io::WeightMap w(std::move(ck.tensors), file.string());
  sanitize(w);
  const auto tok = ck.metadata.has("tokenizer.ggml.tokens")
                       ? io::GgufTokenizerData::parse(ck.metadata)
                       : io::GgufTokenizerData{};
  std::vector<int> eos;
  for (auto id : {tok.eos_token_id, tok.eot_token_id})
    if (id) eos.push_back(int(*id));
  // Gemma's <end_of_turn> closes a chat turn (llama.cpp treats it as end of generation too).
  for (std::size_t i = 0; i < tok.tokens.size(); ++i)
    if (tok.tokens[i] == "<end_of_turn>" && std::find(eos.begin(), eos.end(), int(i)) == eos.end())
      eos.push_back(int(i));
  auto bos = tok.bos_token_id ? std::optional<int>(int(*tok.bos_token_id)) : std::nullopt;
  auto info = model_info(config, "gemma3_text", eos, bos, options.dtype.value_or(mx::float32));
  auto model = std::make_unique<Model>(std::move(config), w, std::move(info), true);
  w.finish();
  return model;
}

}  // namespace ominix::gemma3

namespace ominix::gemma3 {

namespace {

// The running executable's path, or empty where the system does not say.
std::filesystem::path executable_path() {
  std::error_code ec;
#if defined(__APPLE__)
  std::uint32_t size = 0;
  _NSGetExecutablePath(nullptr, &size);
  std::string buf(size, '\0');
  if (_NSGetExecutablePath(buf.data(), &size) != 0) return {};
  auto p = std::filesystem::canonical(buf.c_str(), ec);
#else
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
#endif
  return ec ? std::filesystem::path() : p;
}

}  // namespace

std::filesystem::path default_model() {
  if (const char* env = std::getenv("OMINIX_MODEL"); env && *env) return env;
  const std::filesystem::path built = OMINIX_DEFAULT_MODEL;
  // An installed binary: PREFIX/bin/../share/ominix/models/<file>, wherever the prefix was moved.
  if (const auto exe = executable_path(); !exe.empty()) {
    const auto installed = exe.parent_path() / OMINIX_MODELS_FROM_BIN / built.filename();
    std::error_code ec;
    if (std::filesystem::is_regular_file(installed, ec)) return installed.lexically_normal();
  }
  return built;
}

}  // namespace ominix::gemma3
