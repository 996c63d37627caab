// Port of transformers 5.24.0 src/transformers/models/{glm4,glm4_moe}/modeling_*.py, read beside
// mlx-lm 0.32.2 mlx_lm/models/{glm4,glm4_moe,switch_layers}.py.
#include "ominix/models/glm4.h"

#include <mlx/ops.h>

#include <cmath>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "models/glm4/config.h"
#include "models/glm4/gguf.h"
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

namespace ominix::glm4 {
namespace {

nn::LinearLayer linear(io::WeightMap& w, const std::string& key, const Config& c,
                       nn::LinearShape shape) {
  return nn::LinearLayer::load(w, key, shape, c.quantization);
}

/// ref: modeling_glm4.py Glm4Attention / modeling_glm4_moe.py Glm4MoeAttention: q/k/v bias,
/// partial rotary (interleaved pairs), GLM-4-MoE's optional per-head q/k norm.
struct Attention : generate::SelfAttention {
  static Attention load(io::WeightMap& w, const std::string& p, const Config& c) {
    return {generate::SelfAttention::load(w, p, c.attention, c.rope, c.quantization,
                                          {.qkv_bias = c.attention.attention_bias,
                                           .qk_norm = c.use_qk_norm,
                                           .rms_norm_eps = c.rms_norm_eps})};
  }
};

/// GLM-4: gate and up in one matrix, gate_up_proj [2I, D] (ref: modeling_glm4.py Glm4MLP).
struct FusedMLP {
  nn::LinearLayer gate_up_proj, down_proj;
  nn::Activation act;

  mx::array operator()(const mx::array& x) const {
    return down_proj(nn::gated_joint(act, gate_up_proj(x)));  // act([B,L,:I]) * [B,L,I:]
  }
};

/// GLM-4-MoE dense layers and shared experts (ref: modeling_glm4_moe.py Glm4MoeMLP).
using MLP = nn::GatedMLP;

/// ref: modeling_glm4_moe.py Glm4MoeTopkRouter + Glm4MoeMoE: router logits in float32, sigmoid,
/// e_score_correction_bias for the choice only, the best topk_group of n_group groups, top k;
/// weights from the un-biased sigmoid, norm_topk_prob, x routed_scaling_factor (nn::route).
struct MoE {
  mx::array gate_weight;              // [E, D], as in the checkpoint (the logits are float32)
  mx::array e_score_correction_bias;  // [E], shifts the choice, not the weights
  nn::SwitchGLU switch_mlp;
  MLP shared_experts;
  nn::RouterOptions router;

  static MoE load(io::WeightMap& w, const std::string& p, const Config& c) {
    const int D = c.attention.hidden_size, E = c.n_routed_experts;
    return {w.take(p + "gate.weight", {E, D}),
            w.take(p + "gate.e_score_correction_bias", {E}),
            nn::SwitchGLU::load(w, p + "switch_mlp.", {E, D, c.moe_intermediate_size},
                                c.quantization, {.activation = c.hidden_act}),
            MLP::load(w, p + "shared_experts.",
                      {c.attention.hidden_size, c.moe_intermediate_size * c.n_shared_experts,
                       c.hidden_act},
                      c.quantization),
            {.routing = nn::Routing::sigmoid_grouped,
             .top_k = c.num_experts_per_tok,
             .norm_topk_prob = c.norm_topk_prob,
             .n_group = c.n_group,
             .topk_group = c.topk_group,
             .routed_scaling_factor = c.routed_scaling_factor}};
  }

  mx::array operator()(const mx::array& x, const Tap& tap, int layer) const {
    // One kernel at decode on CUDA; else the float32 matmul, then the router.
    auto fused = nn::route_gate(x, gate_weight, mx::float32, router, e_score_correction_bias);
    auto routes = fused ? *fused
                        : nn::route(mx::matmul(mx::astype(x, mx::float32),
                                               mx::transpose(mx::astype(gate_weight, mx::float32))),
                                    router, e_score_correction_bias);  // [B,L,k] each
    if (tap) tap("router_indices", layer, routes.indices);
    auto y = switch_mlp(x, routes);  // -> [B,L,D]
    return mx::add(y, shared_experts(x));
  }
};

using FeedForward = std::variant<FusedMLP, MLP, MoE>;

struct DecoderLayer {
  Attention self_attn;
  FeedForward mlp;
  nn::RMSNorm input_layernorm, post_attention_layernorm;
  std::optional<nn::RMSNorm> post_self_attn_layernorm, post_mlp_layernorm;  // GLM-4 only

  static DecoderLayer load(io::WeightMap& w, const Config& c, int i) {
    const auto p = fmt::format("model.layers.{}.", i);
    const int D = c.attention.hidden_size, I = c.intermediate_size;
    auto norm = [&](const char* name) { return nn::RMSNorm::load(w, p + name, D, c.rms_norm_eps); };
    FeedForward mlp =
        c.model_type == ModelType::glm4
            ? FeedForward(FusedMLP{linear(w, p + "mlp.gate_up_proj", c, {D, 2 * I}),
                                   linear(w, p + "mlp.down_proj", c, {I, D}), c.hidden_act})
        : c.is_sparse(i)
            ? FeedForward(MoE::load(w, p + "mlp.", c))
            : FeedForward(MLP::load(w, p + "mlp.", {D, I, c.hidden_act}, c.quantization));
    DecoderLayer layer{
        Attention::load(w, p + "self_attn.", c), std::move(mlp), norm("input_layernorm"),
        norm("post_attention_layernorm"),        std::nullopt,   std::nullopt};
    if (c.model_type == ModelType::glm4) {
      layer.post_self_attn_layernorm = norm("post_self_attn_layernorm");
      layer.post_mlp_layernorm = norm("post_mlp_layernorm");
    }
    return layer;
  }

  /// x's pending add is done with input_layernorm; this layer's own last add is left to the next
  /// norm (nn::Residual).
  nn::Residual operator()(const nn::Residual& x, const nn::AttentionMask& mask,
                          generate::LayerCache& cache, const Tap& tap, int layer) const {
    auto h = nn::add_rms_norm(x, input_layernorm);  // {x's value, its norm}
    auto r = self_attn(h.normed, mask, cache);
    if (post_self_attn_layernorm) r = (*post_self_attn_layernorm)(r);
    h = nn::add_rms_norm(h.sum, r, post_attention_layernorm);
    r = std::visit(
        [&](const auto& m) {
          if constexpr (std::is_same_v<std::decay_t<decltype(m)>, MoE>)
            return m(h.normed, tap, layer);
          else
            return m(h.normed);
        },
        mlp);
    if (post_mlp_layernorm) r = (*post_mlp_layernorm)(r);
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
    const auto mask = cache.make_mask(tokens.shape(1));
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

/// ref: mlx-lm glm4_moe.py Model.sanitize — drops rotary caches, a tied head's copy and the
/// multi-token-prediction layers (model.layers.{num_hidden_layers}...), and stacks Hugging Face's
/// per-expert `mlp.experts.N.{gate,up,down}_proj.weight` into `mlp.switch_mlp.*` [E, out, in].
void sanitize(io::WeightMap& w, const Config& c) {
  generate::drop_unbound_tensors(w, c.tie_word_embeddings,
                                 {fmt::format("model.layers.{}.", c.num_hidden_layers)});
  const int D = c.attention.hidden_size, I = c.moe_intermediate_size;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    if (!c.is_sparse(l)) continue;
    const auto p = fmt::format("model.layers.{}.mlp.", l);
    nn::stack_experts(w, {.from = p + "experts.",
                          .to = p + "switch_mlp.",
                          .num_experts = c.n_routed_experts,
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
  for (const std::string type : {"glm4", "glm4_moe"}) {
    generate::register_model(
        type,
        [](const std::filesystem::path& dir, const io::ConfigReader& config,
           const generate::LoadModelOptions& options) { return build(dir, config, options, {}); });
    generate::ConvertHooks hooks{.sanitize = [](io::WeightMap& w, const io::ConfigReader& r) {
      sanitize(w, Config::parse(r));
    }};
    if (type == "glm4_moe") {
      // ref: mlx-lm glm4_moe.py — the router (MoEGate) has no quantized form and its
      // e_score_correction_bias keeps its dtype (Model.cast_predicate).
      hooks.quant_predicate = [](const std::string& module) {
        return generate::QuantChoice{.quantize = !module.ends_with("mlp.gate")};
      };
      hooks.cast_predicate = [](const std::string& key) {
        return key.find("e_score_correction_bias") == std::string::npos;
      };
    }
    generate::register_convert_hooks(type, std::move(hooks));
  }
  for (const char* arch : {"glm4", "glm4moe"})
    generate::register_gguf(
        arch, [](const std::filesystem::path& file, const generate::LoadModelOptions& options) {
          return load_gguf(file, options);
        });
}

std::unique_ptr<generate::LanguageModel> load(const std::filesystem::path& dir,
                                              const generate::LoadModelOptions& options, Tap tap) {
  return build(dir, io::ConfigReader::load(dir / "config.json"), options, std::move(tap));
}

std::unique_ptr<generate::LanguageModel> load_gguf(const std::filesystem::path& file,
                                                   const generate::LoadModelOptions& options,
                                                   Tap tap) {
  const auto arch = io::GgufFile::open(file).metadata().architecture();
  auto ck =
      io::load_gguf_checkpoint(file, {.dtype = options.dtype.value_or(mx::float32)},
                               [&](const std::string& name) { return rename_gguf(name, arch); });
  const io::ConfigReader reader(gguf_config(ck), file.string());
  auto config = Config::parse(reader);
  config.quantization = ck.quantization;
  return generate::bind_decoder<Model>(file, reader, std::move(config),
                                       io::WeightMap(std::move(ck.tensors), file.string()),
                                       sanitize, std::move(tap));
}

}  // namespace ominix::glm4
