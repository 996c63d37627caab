// The GLM-4 / GLM-4-MoE family (config.json model_type glm4, glm4_moe).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>

#include <mlx/array.h>

#include "ominix/generate/model.h"

namespace ominix::glm4 {

namespace mx = mlx::core;

/// Parity-debugging hook, called during the forward with a named intermediate:
/// "router_indices" (layer, [B, L, num_experts_per_tok] int32, the experts each token is sent to).
using Tap = std::function<void(std::string_view name, int layer, const mx::array& value)>;

/// Registers the loaders of "glm4" and "glm4_moe" in generate::model_registry() and of the GGUF
/// architectures "glm4" and "glm4moe" in generate::gguf_registry().
void register_family();

/// Loads a Hugging Face or mlx-community checkpoint directory (config.json + *.safetensors,
/// single-file or sharded, dense or quantized). ConfigError/UnsupportedError name the config field,
/// WeightError lists every missing, unexpected or mis-shaped tensor.
std::unique_ptr<generate::LanguageModel> load(const std::filesystem::path& dir,
                                              const generate::LoadModelOptions& options = {},
                                              Tap tap = {});

/// Loads a GGUF file written by llama.cpp's converter (general.architecture glm4 or glm4moe): the
/// `<arch>.*` metadata becomes the config, llama.cpp's tensor names the transformers ones (experts
/// stored stacked, GLM-4-MoE's next-token-prediction layers dropped), exactly representable
/// quantizations stay packed (MLX affine), the rest is dequantized to options.dtype (default
/// float32). UnsupportedError for other architectures.
std::unique_ptr<generate::LanguageModel> load_gguf(const std::filesystem::path& file,
                                                   const generate::LoadModelOptions& options = {},
                                                   Tap tap = {});

}  // namespace ominix::glm4
