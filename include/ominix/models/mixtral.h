// The Llama / Mistral / Mixtral family (config.json model_type llama, mistral, mixtral; GGUF
// architecture llama).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>

#include <mlx/array.h>

#include "ominix/generate/model.h"

namespace ominix::mixtral {

namespace mx = mlx::core;

/// Parity-debugging hook, called during the forward with a named intermediate:
/// "router_indices" (layer, [B, L, num_experts_per_tok] int32, the experts each token is sent to).
using Tap = std::function<void(std::string_view name, int layer, const mx::array& value)>;

/// Registers the loaders of "llama", "mistral" and "mixtral" in generate::model_registry(), and of
/// the GGUF architecture "llama" in generate::gguf_registry().
void register_family();

/// Loads a Hugging Face or mlx-community checkpoint directory (config.json + *.safetensors,
/// single-file or sharded, dense or quantized). ConfigError/UnsupportedError name the config field,
/// WeightError lists every missing, unexpected or mis-shaped tensor.
std::unique_ptr<generate::LanguageModel> load(const std::filesystem::path& dir,
                                              const generate::LoadModelOptions& options = {},
                                              Tap tap = {});

/// Loads a GGUF file of llama.cpp's "llama" architecture (Llama, Mistral, Mixtral; F32, F16, BF16
/// or a quantized type, Mixtral's experts stacked or per expert). model_type "mixtral" when it has
/// experts, "llama" otherwise. UnsupportedError names the file and key for what the model lacks.
std::unique_ptr<generate::LanguageModel> load_gguf(const std::filesystem::path& file,
                                                   const generate::LoadModelOptions& options = {},
                                                   Tap tap = {});

}  // namespace ominix::mixtral
