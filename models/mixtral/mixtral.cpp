// Port of transformers 5.24.0 src/transformers/models/{llama,mistral,mixtral}/modeling_*.py, read
// beside mlx-lm 0.32.2 mlx_lm/models/{llama,mixtral,switch_layers}.py (mlx-lm reads mistral as
// llama). One decoder: Llama = Mistral without a sliding window, with optional biases; Mixtral =
// Mistral with a sparse MoE block for the MLP.
// ref: modeling_llama.py LlamaForCausalLM (attention_bias, mlp_bias, head_dim, rope llama3).
#include "ominix/models/mixtral.h"

#include <mlx/ops.h>

#include <cmath>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "models/mixtral/config.h"
#include "models/mixtral/gguf.h"
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

namespace ominix::mixtral {
namespace {

nn::LinearLayer linear(io::WeightMap& w, const std::string& key, const Config& c,
                       nn::LinearShape shape) {
  return nn::LinearLayer::load(w, key, shape, c.quantization);
}

/// ref: modeling_llama.py LlamaAttention (attention_bias on all four projections),
/// modeling_mistral.py MistralAttention.
struct Attention : generate::SelfAttention {
  static Attention load(io::WeightMap& w, const std::string& p, const Config& c) {
    const bool bias = c.attention.attention_bias;
    return {generate::SelfAttention::load(w, p, c.attention, c.rope, c.quantization,
                                          {.qkv_bias = bias, .o_bias = bias})};
  }
};

/// Llama, Mistral (ref: modeling_llama.py LlamaMLP, mlp_bias on all three projections).
using MLP = nn::GatedMLP;

/// ref: modeling_mixtral.py MixtralTopKRouter + MixtralSparseMoeBlock: the top-k router logits,
/// softmax over those k (equal to transformers' softmax over all, renormalised over the top k).
struct SparseMoeBlock {
  nn::LinearLayer gate;
  nn::SwitchGLU switch_mlp;
  nn::RouterOptions router;

  static SparseMoeBlock load(io::WeightMap& w, const std::string& p, const Config& c) {
    const int D = c.attention.hidden_size, E = c.num_local_experts;
    return {linear(w, p + "gate", c, {D, E}),
            nn::SwitchGLU::load(w, p + "switch_mlp.", {E, D, c.intermediate_size}, c.quantization,
                                {.activation = c.hidden_act}),
            {.routing = nn::Routing::softmax_topk, .top_k = c.num_experts_per_tok}};
  }

  mx::array operator()(const mx::array& x, const Tap& tap, int layer) const {
    auto routes = nn::route_linear(x, gate, router);  // route(gate(x)): [B,L,k] each
    if (tap) tap("router_indices", layer, routes.indices);
    return switch_mlp(x, routes);  // -> [B,L,D]
  }
};

struct DecoderLayer {
  Attention self_attn;
  std::variant<MLP, SparseMoeBlock> mlp;  // checkpoint key: mlp (Mistral), block_sparse_moe
  nn::RMSNorm input_layernorm, post_attention_layernorm;

  static DecoderLayer load(io::WeightMap& w, const Config& c, int i) {
    const auto p = fmt::format("model.layers.{}.", i);
    const int D = c.attention.hidden_size;
    std::variant<MLP, SparseMoeBlock> mlp =
        c.model_type == ModelType::mixtral
            ? std::variant<MLP, SparseMoeBlock>(SparseMoeBlock::load(w, p + "block_sparse_moe.", c))
            : MLP::load(w, p + "mlp.", {D, c.intermediate_size, c.hidden_act, c.mlp_bias},
                        c.quantization);
    return {Attention::load(w, p + "self_attn.", c), std::move(mlp),
            nn::RMSNorm::load(w, p + "input_layernorm", D, c.rms_norm_eps),
            nn::RMSNorm::load(w, p + "post_attention_layernorm", D, c.rms_norm_eps)};
  }

  /// x's pending add is done with input_layernorm; this layer's own last add is left to the next
  /// norm (nn::Residual).
  nn::Residual operator()(const nn::Residual& x, const nn::AttentionMask& mask,
                          generate::LayerCache& cache, const Tap& tap, int layer) const {
    auto h = nn::add_rms_norm(x, input_layernorm);  // {x's value, its norm}
    h = nn::add_rms_norm(h.sum, self_attn(h.normed, mask, cache), post_attention_layernorm);
    auto r = std::holds_alternative<MLP>(mlp) ? std::get<MLP>(mlp)(h.normed)
                                              : std::get<SparseMoeBlock>(mlp)(h.normed, tap, layer);
    return {h.sum, r};
  }
};

class Model final : public generate::LanguageModel {
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
      lm_head = linear(w, "lm_head", config_, {config_.attention.hidden_size, config_.vocab_size});
  }

  mx::array operator()(const mx::array& tokens, generate::Cache& cache) const override {
    generate::check_tokens(info_.model_type, tokens);
    generate::check_cache_layers(info_.model_type, cache, layers.size());
    nn::Residual h{embed_tokens(tokens), std::nullopt};  // [B,L] -> [B,L,D]
    // ref: modeling_mistral.py MistralModel.forward — one sliding-window mask for every layer.
    const auto mask =
        cache.make_mask(tokens.shape(1), {.window_size = config_.attention.sliding_window});
    for (std::size_t i = 0; i < layers.size(); ++i) h = layers[i](h, mask, cache[i], tap_, int(i));
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

/// ref: mlx-lm mixtral.py Model.sanitize — drops rotary caches and a tied head's copy, and stacks
/// Hugging Face's per-expert `block_sparse_moe.experts.N.{w1,w3,w2}.weight` into
/// `block_sparse_moe.switch_mlp.{gate,up,down}_proj.weight` [E, out, in].
void sanitize(io::WeightMap& w, const Config& c) {
  generate::drop_unbound_tensors(w, c.tie_word_embeddings);
  if (c.model_type != ModelType::mixtral) return;
  const int D = c.attention.hidden_size, I = c.intermediate_size;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const auto p = fmt::format("model.layers.{}.block_sparse_moe.", l);
    nn::stack_experts(w, {.from = p + "experts.",
                          .to = p + "switch_mlp.",
                          .num_experts = c.num_local_experts,
                          .projections = {{"w1", "gate_proj", {I, D}},
                                          {"w3", "up_proj", {I, D}},
                                          {"w2", "down_proj", {D, I}}}});
  }
}

std::unique_ptr<generate::LanguageModel> build(const std::filesystem::path& dir,
                                               const io::ConfigReader& reader,
                                               const generate::LoadModelOptions& options, Tap tap) {
  return generate::load_decoder<Model, Config>(dir, reader, options, sanitize, std::move(tap));
}

}  // namespace

void register_family() {
  for (const char* type : {"llama", "mistral", "mixtral"})
    generate::register_model(
        type,
        [](const std::filesystem::path& dir, const io::ConfigReader& config,
           const generate::LoadModelOptions& options) { return build(dir, config, options, {}); });
  generate::register_gguf(
      "llama", [](const std::filesystem::path& file, const generate::LoadModelOptions& options) {
        return load_gguf(file, options);
      });
  // mlx-lm's mixtral has no quant_predicate: its router (a Linear) is quantized like the rest.
  for (const char* type : {"llama", "mistral", "mixtral"})
    generate::register_convert_hooks(type,
                                     {.sanitize = [](io::WeightMap& w, const io::ConfigReader& r) {
                                       sanitize(w, Config::parse(r));
                                     }});
}

std::unique_ptr<generate::LanguageModel> load(const std::filesystem::path& dir,
                                              const generate::LoadModelOptions& options, Tap tap) {
  return build(dir, io::ConfigReader::load(dir / "config.json"), options, std::move(tap));
}

/// The GGUF read as the checkpoint it was converted from (models/mixtral/gguf.h), bound as one.
/// llama.cpp's "llama" architecture has no sliding window, so a Mistral file attends to every
/// position, as llama.cpp runs it.
std::unique_ptr<generate::LanguageModel> load_gguf(const std::filesystem::path& file,
                                                   const generate::LoadModelOptions& options,
                                                   Tap tap) {
  auto ck = read_gguf(file, options.dtype.value_or(mx::float32));
  const io::ConfigReader reader(std::move(ck.config), file.string());
  auto config = Config::parse(reader);
  config.quantization = std::move(ck.quantization);
  config.rope.freq_factors = std::move(ck.rope_freqs);
  return generate::bind_decoder<Model>(file, reader, std::move(config),
                                       io::WeightMap(std::move(ck.tensors), file.string()),
                                       sanitize, std::move(tap));
}

}  // namespace ominix::mixtral
