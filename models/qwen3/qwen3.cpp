// Port of transformers 5.24.0 src/transformers/models/{qwen2,qwen3,qwen3_moe}/modeling_*.py, read
// beside mlx-lm 0.32.2 mlx_lm/models/{qwen2,qwen3,qwen3_moe,switch_layers}.py.
#include "ominix/models/qwen3.h"

#include <mlx/ops.h>

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "models/qwen3/config.h"
#include "models/qwen3/gguf.h"
#include "ominix/generate/attention.h"
#include "ominix/generate/convert_hooks.h"
#include "ominix/io/weights.h"
#include "ominix/nn/fused.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/mlp.h"
#include "ominix/nn/moe.h"
#include "ominix/nn/norm.h"
#include "ominix/nn/rope.h"
#include "ominix/nn/switch.h"

namespace ominix::qwen3 {
namespace {

/// ref: modeling_qwen2.py Qwen2Attention (q/k/v bias) and modeling_qwen3.py Qwen3Attention
/// (per-head q/k RMSNorm before RoPE).
struct Attention : generate::SelfAttention {
  static Attention load(io::WeightMap& w, const std::string& p, const Config& c) {
    return {generate::SelfAttention::load(w, p, c.attention, c.rope, c.quantization,
                                          {.qkv_bias = c.qkv_bias(),
                                           .o_bias = c.o_bias(),
                                           .qk_norm = c.qk_norm(),
                                           .rms_norm_eps = c.rms_norm_eps})};
  }
};

using MLP = nn::GatedMLP;

/// ref: modeling_qwen3_moe.py Qwen3MoeTopKRouter + Qwen3MoeSparseMoeBlock: softmax over the
/// experts, the top k (renormalised with norm_topk_prob), their outputs weighted and summed.
struct SparseMoeBlock {
  nn::LinearLayer gate;
  nn::SwitchGLU switch_mlp;
  nn::RouterOptions router;

  static SparseMoeBlock load(io::WeightMap& w, const std::string& p, const Config& c) {
    const int D = c.attention.hidden_size, E = c.num_experts;
    return {nn::LinearLayer::load(w, p + "gate", {D, E}, c.quantization),
            nn::SwitchGLU::load(w, p + "switch_mlp.", {E, D, c.moe_intermediate_size},
                                c.quantization, {.activation = c.hidden_act}),
            {.routing = nn::Routing::softmax,
             .top_k = c.num_experts_per_tok,
             .norm_topk_prob = c.norm_topk_prob}};
  }

  mx::array operator()(const mx::array& x, const Tap& tap, int layer) const {
    auto routes = nn::route_linear(x, gate, router);  // route(gate(x)): [B,L,k] each
    if (tap) tap("router_indices", layer, routes.indices);
    return switch_mlp(x, routes);  // -> [B,L,D]
  }
};

struct DecoderLayer {
  Attention self_attn;
  std::variant<MLP, SparseMoeBlock> mlp;
  nn::RMSNorm input_layernorm, post_attention_layernorm;

  static DecoderLayer load(io::WeightMap& w, const Config& c, int i) {
    const auto p = fmt::format("model.layers.{}.", i);
    const int D = c.attention.hidden_size;
    std::variant<MLP, SparseMoeBlock> mlp =
        c.is_sparse(i)
            ? std::variant<MLP, SparseMoeBlock>(SparseMoeBlock::load(w, p + "mlp.", c))
            : MLP::load(w, p + "mlp.", {c.attention.hidden_size, c.intermediate_size, c.hidden_act},
                        c.quantization);
    return {Attention::load(w, p + "self_attn.", c), std::move(mlp),
            nn::RMSNorm::load(w, p + "input_layernorm", D, c.rms_norm_eps),
            nn::RMSNorm::load(w, p + "post_attention_layernorm", D, c.rms_norm_eps)};
  }

  /// x's pending add is done with input_layernorm; this layer's own last add is left to the next
  /// norm (nn::Residual).
  nn::Residual operator()(const nn::Residual& x, const nn::AttentionMask& mask,
                          generate::LayerCache& cache, const nn::RotaryPositions& positions,
                          const Tap& tap, int layer) const {
    auto h = nn::add_rms_norm(x, input_layernorm);  // {x's value, its norm}
    h = nn::add_rms_norm(h.sum, self_attn(h.normed, mask, cache, positions),
                         post_attention_layernorm);
    auto r = std::holds_alternative<MLP>(mlp) ? std::get<MLP>(mlp)(h.normed)
                                              : std::get<SparseMoeBlock>(mlp)(h.normed, tap, layer);
    return {h.sum, r};
  }
};

class Model final : public EmbeddingsModel {
 public:
  Model(Config config, io::WeightMap& w, generate::ModelInfo info, Tap tap)
      : config_(std::move(config)),
        info_(std::move(info)),
        tap_(std::move(tap)),
        embed_tokens(nn::Embedding::load(w, "model.embed_tokens", config_.vocab_size,
                                         config_.attention.hidden_size, config_.quantization)),
        norm(nn::RMSNorm::load(w, "model.norm", config_.attention.hidden_size,
                               config_.rms_norm_eps)) {
    for (int i = 0; i < config_.num_hidden_layers; ++i)
      layers.push_back(DecoderLayer::load(w, config_, i));
    if (!config_.tie_word_embeddings)
      lm_head = nn::LinearLayer::load(
          w, "lm_head", {config_.attention.hidden_size, config_.vocab_size}, config_.quantization);
  }

  mx::array operator()(const mx::array& tokens, generate::Cache& cache) const override {
    generate::check_tokens(info_.model_type, tokens);
    return forward_embeddings(embed(tokens), cache);
  }

  mx::array embed(const mx::array& tokens) const override {
    return embed_tokens(tokens);  // [B,L] -> [B,L,D]
  }

  mx::array forward_embeddings(const mx::array& embeddings, generate::Cache& cache,
                               const EmbeddingsForward& options = {}) const override {
    if (embeddings.ndim() != 3 || embeddings.shape(2) != config_.attention.hidden_size)
      fail<InvalidArgument>("{}: embeddings must be [B, L, {}]", info_.model_type,
                            config_.attention.hidden_size);
    generate::check_cache_layers(info_.model_type, cache, layers.size());
    const int L = embeddings.shape(1);
    nn::Residual h{embeddings, std::nullopt};
    const auto full = cache.make_mask(L);
    const auto window =
        config_.sliding_window ? cache.make_mask(L, {.window_size = config_.sliding_window}) : full;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const bool sliding = config_.layer_types[i] == LayerType::sliding_attention;
      h = layers[i](h, sliding ? window : full, cache[i], options.positions, tap_, int(i));
      if (i < options.after_layer.size()) h = {mx::add(nn::value(h), options.after_layer[i]), {}};
    }
    auto out = nn::add_rms_norm(h, norm).normed;
    return lm_head ? (*lm_head)(out) : embed_tokens.as_linear(out);  // [B,L,D] -> [B,L,V]
  }

  const generate::ModelInfo& info() const override { return info_; }

 private:
  Config config_;
  generate::ModelInfo info_;
  Tap tap_;
  nn::Embedding embed_tokens;
  std::vector<DecoderLayer> layers;
  nn::RMSNorm norm;
  std::optional<nn::LinearLayer> lm_head;
};

/// ref: mlx-lm qwen3_moe.py Model.sanitize — drops rotary caches and a tied head's copy, and stacks
/// Hugging Face's per-expert `mlp.experts.N.{gate,up,down}_proj.weight` into `mlp.switch_mlp.*`
/// [E, out, in] (mlx-lm checkpoints are stacked already).
void sanitize(io::WeightMap& w, const Config& c) {
  generate::drop_unbound_tensors(w, c.tie_word_embeddings);
  const int D = c.attention.hidden_size, I = c.moe_intermediate_size;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    if (!c.is_sparse(l)) continue;
    const auto p = fmt::format("model.layers.{}.mlp.", l);
    nn::stack_experts(w, {.from = p + "experts.",
                          .to = p + "switch_mlp.",
                          .num_experts = c.num_experts,
                          .projections = {{"gate_proj", "gate_proj", {I, D}},
                                          {"up_proj", "up_proj", {I, D}},
                                          {"down_proj", "down_proj", {D, I}}}});
  }
}

std::unique_ptr<generate::LanguageModel> build(const std::filesystem::path& dir,
                                               const io::ConfigReader& reader,
                                               const generate::LoadModelOptions& options, Tap tap) {
  return generate::load_decoder<Model, Config>(dir, reader, options, sanitize, std::move(tap));
}

}  // namespace

void register_family() {
  for (const std::string type : {"qwen2", "qwen3", "qwen3_moe"}) {
    generate::register_model(
        type,
        [](const std::filesystem::path& dir, const io::ConfigReader& config,
           const generate::LoadModelOptions& options) { return build(dir, config, options, {}); });
    generate::ConvertHooks hooks{.sanitize = [](io::WeightMap& w, const io::ConfigReader& r) {
      sanitize(w, Config::parse(r));
    }};
    // ref: mlx-lm qwen3_moe.py Model.quant_predicate — the routers at 8 bits in groups of 64.
    if (type == "qwen3_moe")
      hooks.quant_predicate = [](const std::string& module) {
        return module.ends_with("mlp.gate")
                   ? generate::QuantChoice{.spec = io::QuantSpec{.group_size = 64, .bits = 8}}
                   : generate::QuantChoice{};
      };
    generate::register_convert_hooks(type, std::move(hooks));
  }
  for (const char* arch : {"qwen2", "qwen3", "qwen3moe"})
    generate::register_gguf(
        arch, [](const std::filesystem::path& file, const generate::LoadModelOptions& options) {
          return load_gguf(file, options);
        });
}

std::unique_ptr<generate::LanguageModel> load(const std::filesystem::path& dir,
                                              const generate::LoadModelOptions& options, Tap tap) {
  return build(dir, io::ConfigReader::load(dir / "config.json"), options, std::move(tap));
}

std::unique_ptr<EmbeddingsModel> load_from_tensors(const std::filesystem::path& config_dir,
                                                   io::TensorMap tensors,
                                                   const std::string& source) {
  return load_from_tensors(io::ConfigReader::load(config_dir / "config.json"), config_dir,
                           std::move(tensors), source);
}

std::unique_ptr<EmbeddingsModel> load_from_tensors(const io::ConfigReader& reader,
                                                   const std::filesystem::path& dir,
                                                   io::TensorMap tensors,
                                                   const std::string& source) {
  auto config = Config::parse(reader);
  return generate::bind_decoder<Model>(dir, reader, std::move(config),
                                       io::WeightMap(std::move(tensors), source), sanitize, Tap{});
}

std::unique_ptr<generate::LanguageModel> load_gguf(const std::filesystem::path& file,
                                                   const generate::LoadModelOptions& options,
                                                   Tap tap) {
  auto ck =
      io::load_gguf_checkpoint(file, {.dtype = options.dtype.value_or(mx::float32)}, rename_gguf);
  const io::ConfigReader reader(gguf_config(ck), file.string());
  auto config = Config::parse(reader);
  config.quantization = ck.quantization;
  return generate::bind_decoder<Model>(file, reader, std::move(config),
                                       io::WeightMap(std::move(ck.tensors), file.string()),
                                       sanitize, std::move(tap));
}

}  // namespace ominix::qwen3
