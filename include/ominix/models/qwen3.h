// The Qwen2 / Qwen3 / Qwen3-MoE family (config.json model_type qwen2, qwen3, qwen3_moe).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include <mlx/array.h>

#include "ominix/generate/model.h"
#include "ominix/io/safetensors.h"
#include "ominix/nn/rope.h"

namespace ominix::qwen3 {

namespace mx = mlx::core;

/// Parity-debugging hook, called during the forward with a named intermediate:
/// "router_indices" (layer, [B, L, num_experts_per_tok] int32, the experts each token is sent to).
using Tap = std::function<void(std::string_view name, int layer, const mx::array& value)>;

/// Registers the loaders of "qwen2", "qwen3" and "qwen3_moe" in generate::model_registry() and of
/// the GGUF architectures "qwen2", "qwen3" and "qwen3moe" in generate::gguf_registry().
void register_family();

/// Loads a Hugging Face or mlx-community checkpoint directory (config.json + *.safetensors,
/// single-file or sharded, dense or quantized). ConfigError/UnsupportedError name the config field,
/// WeightError lists every missing, unexpected or mis-shaped tensor.
std::unique_ptr<generate::LanguageModel> load(const std::filesystem::path& dir,
                                              const generate::LoadModelOptions& options = {},
                                              Tap tap = {});

/// Loads a GGUF file written by llama.cpp's converter (general.architecture qwen2, qwen3 or
/// qwen3moe): the `<arch>.*` metadata becomes the config, llama.cpp's tensor names the
/// transformers ones (Qwen3-MoE's experts are stored stacked), exactly representable
/// quantizations stay packed (MLX affine), the rest is dequantized to options.dtype (default
/// float32). UnsupportedError for other architectures.
std::unique_ptr<generate::LanguageModel> load_gguf(const std::filesystem::path& file,
                                                   const generate::LoadModelOptions& options = {},
                                                   Tap tap = {});

/// What a forward from embeddings may change (vision-language models).
struct EmbeddingsForward {
  /// Where the tokens sit for RoPE (M-RoPE tables, or an offset); default: the cache offset.
  nn::RotaryPositions positions;
  /// Added to the hidden state [B, L, hidden_size] after layer i, for i < size() (Qwen3-VL's
  /// DeepStack features, zero outside the image tokens).
  std::vector<mx::array> after_layer;
};

/// A Qwen model that can also be fed input embeddings instead of token ids (speech LLMs splice
/// audio frames into the prompt's embeddings).
class EmbeddingsModel : public generate::LanguageModel {
 public:
  /// Token ids int32 [B, L] -> input embeddings [B, L, hidden_size].
  virtual mx::array embed(const mx::array& tokens) const = 0;
  /// Input embeddings [B, L, hidden_size] -> logits [B, L, vocab_size]; appends L positions to
  /// `cache`. operator()(tokens, cache) is forward_embeddings(embed(tokens), cache).
  virtual mx::array forward_embeddings(const mx::array& embeddings, generate::Cache& cache,
                                       const EmbeddingsForward& options = {}) const = 0;
};

/// Builds a model from `config_dir`/config.json (and generation_config.json) and tensors already
/// loaded, keyed as in a Hugging Face checkpoint (model.*, lm_head.*), e.g. the LLM part of a
/// speech model's checkpoint; `source` names them in WeightError messages.
std::unique_ptr<EmbeddingsModel> load_from_tensors(const std::filesystem::path& config_dir,
                                                   io::TensorMap tensors,
                                                   const std::string& source);
/// The same from a config already read (e.g. a vision-language model's text_config, rewritten
/// as a qwen2/qwen3 config); `dir` is where generation_config.json is looked for.
std::unique_ptr<EmbeddingsModel> load_from_tensors(const io::ConfigReader& config,
                                                   const std::filesystem::path& dir,
                                                   io::TensorMap tensors,
                                                   const std::string& source);

}  // namespace ominix::qwen3
