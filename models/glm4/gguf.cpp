// GGUF naming of llama.cpp's convert_hf_to_gguf.py (Glm4Model, Glm4MoeModel) as gguf-py 0.19
// constants.py and tensor_mapping.py spell it (MODEL_ARCH.GLM4, GLM4_MOE), and the metadata those
// converters write (transformers 5.24 has no GGUF mapping for GLM-4).
#include "models/glm4/gguf.h"

#include "ominix/base/error.h"

namespace ominix::glm4 {

std::string rename_gguf(const std::string& name, const std::string& arch) {
  using Table = io::GgufLayerNames;
  // ref: tensor_mapping.py — GLM-4 keeps gate and up fused in ffn_up and has two extra norms;
  // GLM-4-MoE's post_attention_layernorm is its post_attention_norm.
  static const Table kGlm4 = {{"attn_q.", "self_attn.q_proj."},
                              {"attn_k.", "self_attn.k_proj."},
                              {"attn_v.", "self_attn.v_proj."},
                              {"attn_output.", "self_attn.o_proj."},
                              {"attn_norm.", "input_layernorm."},
                              {"post_attention_norm.", "post_self_attn_layernorm."},
                              {"ffn_norm.", "post_attention_layernorm."},
                              {"ffn_up.", "mlp.gate_up_proj."},
                              {"ffn_down.", "mlp.down_proj."},
                              {"post_ffw_norm.", "post_mlp_layernorm."}};
  static const Table kGlm4Moe = {{"attn_q.", "self_attn.q_proj."},
                                 {"attn_k.", "self_attn.k_proj."},
                                 {"attn_v.", "self_attn.v_proj."},
                                 {"attn_output.", "self_attn.o_proj."},
                                 {"attn_q_norm.", "self_attn.q_norm."},
                                 {"attn_k_norm.", "self_attn.k_norm."},
                                 {"attn_norm.", "input_layernorm."},
                                 {"post_attention_norm.", "post_attention_layernorm."},
                                 {"ffn_gate.", "mlp.gate_proj."},
                                 {"ffn_up.", "mlp.up_proj."},
                                 {"ffn_down.", "mlp.down_proj."},
                                 {"ffn_gate_inp.", "mlp.gate."},
                                 {"exp_probs_b.bias", "mlp.gate.e_score_correction_bias"},
                                 {"ffn_gate_exps.", "mlp.switch_mlp.gate_proj."},
                                 {"ffn_up_exps.", "mlp.switch_mlp.up_proj."},
                                 {"ffn_down_exps.", "mlp.switch_mlp.down_proj."},
                                 {"ffn_gate_shexp.", "mlp.shared_experts.gate_proj."},
                                 {"ffn_up_shexp.", "mlp.shared_experts.up_proj."},
                                 {"ffn_down_shexp.", "mlp.shared_experts.down_proj."}};
  return io::rename_gguf_tensor(name, arch == "glm4moe" ? kGlm4Moe : kGlm4);
}

/// ref: convert_hf_to_gguf.py TextModel.set_gguf_parameters, Glm4Model (rope.dimension_count =
/// head_dim * partial_rotary_factor) and Glm4MoeModel (expert_count, expert_feed_forward_length,
/// expert_shared_count, leading_dense_block_count, expert_gating_func sigmoid,
/// expert_weights_scale, expert_weights_norm, nextn_predict_layers counted in block_count);
/// expert_group_count / expert_group_used_count as the DeepSeek converters write them. Biases and
/// q/k norms are taken when the file has them (llama.cpp loads them as optional).
nlohmann::json gguf_config(const io::GgufCheckpoint& ck) {
  const auto& m = ck.metadata;
  const auto arch = m.architecture();
  if (arch != "glm4" && arch != "glm4moe")
    fail<UnsupportedError>("{}: architecture '{}' is not glm4 or glm4moe",
                           m.field("general.architecture"), arch);
  auto key = [&](const char* k) { return arch + "." + k; };
  auto has = [&](const std::string& t) { return ck.tensors.count(t) > 0; };
  const auto embed = ck.tensors.find("model.embed_tokens.weight");
  if (embed == ck.tensors.end()) fail<WeightError>("{}: no token_embd.weight", m.where());
  const bool moe = arch == "glm4moe";
  const int nextn = moe ? m.get<int>(key("nextn_predict_layers"), 0) : 0;
  const int layers = m.required<int>(key("block_count")) - nextn;
  const int heads = m.required<int>(key("attention.head_count"));
  const int embd = m.required<int>(key("embedding_length"));
  const int head_dim = m.get<int>(key("attention.key_length"), embd / heads);
  const int rope_dim = m.get<int>(key("rope.dimension_count"), head_dim / 2);
  nlohmann::json c{{"model_type", moe ? "glm4_moe" : "glm4"},
                   {"vocab_size", m.get<int>(key("vocab_size"), embed->second.shape(0))},
                   {"max_position_embeddings", m.get<int>(key("context_length"), 32768)},
                   {"hidden_size", embd},
                   {"num_hidden_layers", layers},
                   {"intermediate_size", m.required<int>(key("feed_forward_length"))},
                   {"num_attention_heads", heads},
                   {"num_key_value_heads", m.get<int>(key("attention.head_count_kv"), heads)},
                   {"head_dim", head_dim},
                   {"partial_rotary_factor", double(rope_dim) / head_dim},
                   {"rms_norm_eps", m.get<double>(key("attention.layer_norm_rms_epsilon"), 1e-5)},
                   {"rope_theta", m.get<double>(key("rope.freq_base"), 10000.0)},
                   {"tie_word_embeddings", !has("lm_head.weight")},
                   {"attention_bias", has("model.layers.0.self_attn.q_proj.bias")}};
  if (const auto scaling = m.get<std::string>(key("rope.scaling.type"), "none"); scaling != "none")
    fail<UnsupportedError>("{}: rope scaling '{}' is not supported for {}",
                           m.field(key("rope.scaling.type")), scaling, arch);
  if (m.has("tokenizer.ggml.tokens")) {
    const auto tok = io::GgufTokenizerData::parse(m);
    if (tok.bos_token_id) c["bos_token_id"] = *tok.bos_token_id;
    c["eos_token_id"] = tok.end_token_ids();
  }
  if (!moe) return c;
  // ref: llama.cpp llama-hparams.h LLAMA_EXPERT_GATING_FUNC_TYPE_SIGMOID = 2.
  if (const int gating = m.get<int>(key("expert_gating_func"), 2); gating != 2)
    fail<UnsupportedError>("{}: gating function {} is not supported (2, sigmoid)",
                           m.field(key("expert_gating_func")), gating);
  c["n_routed_experts"] = m.required<int>(key("expert_count"));
  c["num_experts_per_tok"] = m.required<int>(key("expert_used_count"));
  c["moe_intermediate_size"] = m.required<int>(key("expert_feed_forward_length"));
  c["n_shared_experts"] = m.get<int>(key("expert_shared_count"), 1);
  c["first_k_dense_replace"] = m.get<int>(key("leading_dense_block_count"), 0);
  c["routed_scaling_factor"] = m.get<double>(key("expert_weights_scale"), 1.0);
  c["norm_topk_prob"] = m.get<bool>(key("expert_weights_norm"), true);
  c["n_group"] = m.get<int>(key("expert_group_count"), 1);
  c["topk_group"] = m.get<int>(key("expert_group_used_count"), 1);
  c["use_qk_norm"] = has("model.layers.0.self_attn.q_norm.weight");
  return c;
}

}  // namespace ominix::glm4
