// llama.cpp's "llama" GGUF architecture as a transformers Llama / Mixtral checkpoint. Tensor and
// metadata names as gguf-py 0.19 constants.py spells them (MODEL_ARCH.LLAMA); what is undone is
// what convert_hf_to_gguf.py LlamaModel does (ref: modify_tensors, generate_extra_tensors), and
// what is read is what llama.cpp's llama-model.cpp reads for LLM_ARCH_LLAMA.
#include "models/mixtral/gguf.h"

#include <mlx/ops.h>
#include <mlx/transforms.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

#include "ominix/base/error.h"
#include "ominix/io/gguf.h"

namespace ominix::mixtral {
namespace {

/// `blk.N.<module>.<rest>` -> `model.layers.N.<transformers module>.<rest>`; the other names of
/// MODEL_ARCH.LLAMA by prefix. Older Mixtral files hold each expert's matrices as
/// `blk.N.ffn_{gate,up,down}.E.weight`: those become Hugging Face's per-expert names, which the
/// family's sanitize stacks as it does for a transformers checkpoint.
std::string rename(const std::string& name) {
  static const io::GgufLayerNames kLayer = {
      {"attn_norm.", "input_layernorm."},
      {"attn_q.", "self_attn.q_proj."},
      {"attn_k.", "self_attn.k_proj."},
      {"attn_v.", "self_attn.v_proj."},
      {"attn_output.", "self_attn.o_proj."},
      {"ffn_norm.", "post_attention_layernorm."},
      {"ffn_gate.", "mlp.gate_proj."},
      {"ffn_up.", "mlp.up_proj."},
      {"ffn_down.", "mlp.down_proj."},
      {"ffn_gate_inp.", "block_sparse_moe.gate."},
      {"ffn_gate_exps.", "block_sparse_moe.switch_mlp.gate_proj."},
      {"ffn_up_exps.", "block_sparse_moe.switch_mlp.up_proj."},
      {"ffn_down_exps.", "block_sparse_moe.switch_mlp.down_proj."}};
  static const std::map<std::string, std::string> kExpert = {
      {"ffn_gate", "w1"}, {"ffn_up", "w3"}, {"ffn_down", "w2"}};
  const auto dot = name.find('.', 4), dot2 = name.find('.', dot + 1);
  if (name.starts_with("blk.") && dot != std::string::npos && dot2 != std::string::npos) {
    const auto module = name.substr(dot + 1, dot2 - dot - 1), rest = name.substr(dot2 + 1);
    if (kExpert.count(module) && std::isdigit(static_cast<unsigned char>(rest[0]))) {
      const auto e = rest.find('.');  // "E.weight"
      return "model.layers." + name.substr(4, dot - 4) + ".block_sparse_moe.experts." +
             rest.substr(0, e) + "." + kExpert.at(module) + rest.substr(e);
    }
  }
  return io::rename_gguf_tensor(name, kLayer);
}

/// ref: convert_hf_to_gguf.py LlamaModel.permute, undone: the rows of each head go back from
/// llama.cpp's interleaved RoPE pairs to transformers' half split. [R, ...] -> [R, ...] (a row
/// permutation, so it applies alike to a weight, its quantization scales and biases, and a bias).
mx::array unpermute(const mx::array& a, int n_head) {
  auto shape = a.shape();
  mx::Shape split{n_head, shape[0] / n_head / 2, 2};
  split.insert(split.end(), shape.begin() + 1, shape.end());
  // [H, Dh/2, 2, ...] -> [H, 2, Dh/2, ...] -> [R, ...]
  return mx::reshape(mx::swapaxes(mx::reshape(a, split), 1, 2), shape);
}

nlohmann::json config_of(const io::GgufMetadata& m, const io::TensorMap& t, int vocab_size) {
  auto key = [](const char* k) { return std::string("llama.") + k; };
  auto positive = [&](const char* k, int v) {
    if (v <= 0) fail<ConfigError>("{}: must be positive, got {}", m.field(key(k)), v);
    return v;
  };
  const int heads = positive("attention.head_count", m.required<int>(key("attention.head_count")));
  const int embd = positive("embedding_length", m.required<int>(key("embedding_length")));
  const int kv =
      positive("attention.head_count_kv", m.get<int>(key("attention.head_count_kv"), heads));
  const int head_dim = m.get<int>(key("attention.key_length"), embd / heads);
  if (m.get<int>(key("attention.value_length"), head_dim) != head_dim)
    fail<UnsupportedError>("{}: value length differs from the key length {}",
                           m.field(key("attention.value_length")), head_dim);
  if (m.get<int>(key("rope.dimension_count"), head_dim) != head_dim)
    fail<UnsupportedError>("{}: partial rotary embeddings are not supported (head size {})",
                           m.field(key("rope.dimension_count")), head_dim);
  // Every layer holds tensors: a larger count is a damaged header (and would bind that many).
  if (const int layers = m.required<int>(key("block_count"));
      std::size_t(std::max(layers, 0)) > t.size())
    fail<ConfigError>("{}: {} layers, but the file holds {} tensors", m.field(key("block_count")),
                      layers, t.size());
  const int experts = m.get<int>(key("expert_count"), 0);
  nlohmann::json c{
      {"model_type", experts > 0 ? "mixtral" : "llama"},
      {"vocab_size", vocab_size},
      {"max_position_embeddings", m.get<int>(key("context_length"), 2048)},
      {"hidden_size", embd},
      {"num_hidden_layers", m.required<int>(key("block_count"))},
      {"intermediate_size", m.required<int>(key("feed_forward_length"))},
      {"num_attention_heads", heads},
      {"num_key_value_heads", kv},
      {"head_dim", head_dim},
      {"rms_norm_eps", m.required<double>(key("attention.layer_norm_rms_epsilon"))},
      {"rope_theta", m.get<double>(key("rope.freq_base"), 10000.0)},
      {"tie_word_embeddings", !t.count("lm_head.weight")},
      // llama.cpp's LLM_ARCH_LLAMA takes each bias where the file has one; transformers' Llama
      // has them all or none (a partial set is reported by the binder, naming the tensor).
      {"attention_bias", t.count("model.layers.0.self_attn.q_proj.bias") > 0},
      {"mlp_bias", t.count("model.layers.0.mlp.gate_proj.bias") > 0}};
  if (experts > 0) {
    c["num_local_experts"] = experts;
    c["num_experts_per_tok"] = m.required<int>(key("expert_used_count"));
  }
  // ref: llama-model.cpp: rope.scaling.type (or the older rope.scale_linear) and its factor.
  auto scaling = m.get<std::string>(key("rope.scaling.type"), "none");
  double factor = m.get<double>(key("rope.scaling.factor"), 0.0);
  if (m.has(key("rope.scale_linear")))
    scaling = "linear", factor = m.required<double>(key("rope.scale_linear"));
  if (scaling == "linear" && factor != 0.0 && factor != 1.0)
    c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", factor}};
  else if (scaling != "none" && scaling != "linear")
    fail<UnsupportedError>("{}: rope scaling '{}' is not supported for llama (none, linear)",
                           m.field(key("rope.scaling.type")), scaling);
  // The ids EOS stands for: llama.cpp ends generation at eos, eot and eom alike.
  auto eos = nlohmann::json::array();
  for (const char* k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                        "tokenizer.ggml.eom_token_id"})
    if (auto id = m.optional<int>(k); id && std::find(eos.begin(), eos.end(), *id) == eos.end())
      eos.push_back(*id);
  c["eos_token_id"] = eos;
  if (auto bos = m.optional<int>("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *bos;
  return c;
}

}  // namespace

GgufCheckpoint read_gguf(const std::filesystem::path& file, mx::Dtype dtype) {
  auto ck = io::load_gguf_checkpoint(file, {.dtype = dtype}, rename);
  if (const auto arch = ck.metadata.architecture(); arch != "llama")
    fail<UnsupportedError>("{}: architecture '{}' is not llama", file.string(), arch);
  auto& t = ck.tensors;
  auto embed = t.find("model.embed_tokens.weight");
  if (embed == t.end()) fail<WeightError>("{}: no token_embd.weight", file.string());
  // A quantized embedding's packed columns are not its width; its rows are the vocabulary.
  const int vocab = ck.metadata.get<int>("llama.vocab_size", embed->second.shape(0));
  GgufCheckpoint out{config_of(ck.metadata, t, vocab), {}, std::move(ck.quantization), {}};
  if (auto f = t.find("rope_freqs.weight"); f != t.end()) {
    const int pairs = out.config["head_dim"].get<int>() / 2;
    if (f->second.ndim() != 1 || f->second.size() != std::size_t(pairs))
      fail<WeightError>("{}: rope_freqs.weight must hold {} factors (one per rotated pair)",
                        file.string(), pairs);
    auto factors = mx::astype(f->second, mx::float32);
    mx::eval(factors);
    out.rope_freqs.assign(factors.data<float>(), factors.data<float>() + factors.size());
    t.erase(f);
  }
  const int heads = out.config["num_attention_heads"].get<int>(),
            kv = out.config["num_key_value_heads"].get<int>(),
            layers = out.config["num_hidden_layers"].get<int>();
  for (int l = 0; l < layers; ++l)
    for (auto [proj, n] : {std::pair{"q_proj", heads}, std::pair{"k_proj", kv}})
      for (const char* part : {"weight", "scales", "biases", "bias"}) {
        auto it = t.find(fmt::format("model.layers.{}.self_attn.{}.{}", l, proj, part));
        if (it == t.end()) continue;
        if (it->second.ndim() < 1 || it->second.shape(0) % (2 * n) != 0)
          fail<WeightError>("{}: {} has {} rows, not a multiple of 2 x {} heads", file.string(),
                            it->first, it->second.ndim() ? it->second.shape(0) : 0, n);
        it->second = unpermute(it->second, n);
      }
  out.tensors = std::move(t);
  return out;
}

}  // namespace ominix::mixtral
