// GGUF naming of llama.cpp's convert_hf_to_gguf.py (Qwen2Model, Qwen3Model, Qwen3MoeModel) as
// gguf-py 0.19 constants.py spells it (MODEL_ARCH.QWEN2, QWEN3, QWEN3MOE), and the config
// transformers 5.24 builds from the metadata (integrations/ggml.py GGUF_CONFIG_MAPPING).
#include "models/qwen3/gguf.h"

#include <fmt/format.h>

#include "ominix/base/error.h"

namespace ominix::qwen3 {

std::string rename_gguf(const std::string& name) {
  static const io::GgufLayerNames kLayer = {{"attn_q.", "self_attn.q_proj."},
                                            {"attn_k.", "self_attn.k_proj."},
                                            {"attn_v.", "self_attn.v_proj."},
                                            {"attn_output.", "self_attn.o_proj."},
                                            {"attn_q_norm.", "self_attn.q_norm."},
                                            {"attn_k_norm.", "self_attn.k_norm."},
                                            {"attn_norm.", "input_layernorm."},
                                            {"ffn_norm.", "post_attention_layernorm."},
                                            {"ffn_gate.", "mlp.gate_proj."},
                                            {"ffn_up.", "mlp.up_proj."},
                                            {"ffn_down.", "mlp.down_proj."},
                                            {"ffn_gate_inp.", "mlp.gate."},
                                            {"ffn_gate_exps.", "mlp.switch_mlp.gate_proj."},
                                            {"ffn_up_exps.", "mlp.switch_mlp.up_proj."},
                                            {"ffn_down_exps.", "mlp.switch_mlp.down_proj."}};
  return io::rename_gguf_tensor(name, kLayer);
}

/// ref: integrations/ggml.py GGUF_CONFIG_MAPPING "qwen2", "qwen3", "qwen3_moe" and
/// GGUF_CONFIG_DEFAULTS_MAPPING (norm_topk_prob true, as llama.cpp's qwen3moe graph hard-codes),
/// plus what llama.cpp reads: head_dim from attention.key_length, an untied head when the file has
/// output.weight, q/k/v biases when the file has them, bos/eos from the tokenizer metadata; and
/// (beyond llama.cpp) Qwen3-MoE layers without a router as mlp_only_layers.
nlohmann::json gguf_config(const io::GgufCheckpoint& ck) {
  const auto& m = ck.metadata;
  const auto arch = m.architecture();
  if (arch != "qwen2" && arch != "qwen3" && arch != "qwen3moe")
    fail<UnsupportedError>("{}: architecture '{}' is not qwen2, qwen3 or qwen3moe",
                           m.field("general.architecture"), arch);
  auto key = [&](const char* k) { return arch + "." + k; };
  auto has = [&](const std::string& t) { return ck.tensors.count(t) > 0; };
  const auto embed = ck.tensors.find("model.embed_tokens.weight");
  if (embed == ck.tensors.end()) fail<WeightError>("{}: no token_embd.weight", m.where());
  const int layers = m.required<int>(key("block_count"));
  const int heads = m.required<int>(key("attention.head_count"));
  const int embd = m.required<int>(key("embedding_length"));
  const std::string type = arch == "qwen3moe" ? "qwen3_moe" : arch;
  nlohmann::json c{
      {"model_type", type},
      {"vocab_size", m.get<int>(key("vocab_size"), embed->second.shape(0))},
      {"max_position_embeddings", m.get<int>(key("context_length"), 32768)},
      {"hidden_size", embd},
      {"num_hidden_layers", layers},
      {"intermediate_size", m.get<int>(key("feed_forward_length"), 1)},
      {"num_attention_heads", heads},
      {"num_key_value_heads", m.get<int>(key("attention.head_count_kv"), heads)},
      {"head_dim", m.get<int>(key("attention.key_length"), embd / heads)},
      {"rms_norm_eps", m.get<double>(key("attention.layer_norm_rms_epsilon"), 1e-6)},
      {"rope_theta", m.get<double>(key("rope.freq_base"), 10000.0)},
      {"tie_word_embeddings", !has("lm_head.weight")},
      {"attention_bias", arch != "qwen2" && has("model.layers.0.self_attn.q_proj.bias")}};
  const auto scaling = m.get<std::string>(key("rope.scaling.type"), "none");
  if (scaling == "linear" || scaling == "yarn") {
    c["rope_scaling"] = {{"rope_type", scaling},
                         {"factor", m.required<double>(key("rope.scaling.factor"))}};
    if (auto orig = m.optional<int>(key("rope.scaling.original_context_length")))
      c["rope_scaling"]["original_max_position_embeddings"] = *orig;
  } else if (scaling != "none") {
    fail<UnsupportedError>("{}: rope scaling '{}' is not supported for {}",
                           m.field(key("rope.scaling.type")), scaling, arch);
  }
  if (m.has("tokenizer.ggml.tokens")) {
    const auto tok = io::GgufTokenizerData::parse(m);
    if (tok.bos_token_id) c["bos_token_id"] = *tok.bos_token_id;
    c["eos_token_id"] = tok.end_token_ids();
  }
  if (type == "qwen3_moe") {
    c["num_experts"] = m.required<int>(key("expert_count"));
    c["num_experts_per_tok"] = m.required<int>(key("expert_used_count"));
    c["moe_intermediate_size"] = m.required<int>(key("expert_feed_forward_length"));
    c["norm_topk_prob"] = m.get<bool>(key("expert_weights_norm"), true);
    auto dense = nlohmann::json::array();
    for (int l = 0; l < layers; ++l)
      if (!has(fmt::format("model.layers.{}.mlp.gate.weight", l))) dense.push_back(l);
    c["mlp_only_layers"] = dense;
  }
  return c;
}

}  // namespace ominix::qwen3
