// Gemma 3 text models (config.json model_type gemma3_text, or gemma3 with text_config), from
// Hugging Face safetensors checkpoints or llama.cpp GGUF files (general.architecture gemma3).
#pragma once

#include <filesystem>
#include <memory>

#include "ominix/generate/model.h"

namespace ominix::gemma3 {

/// Registers the loaders of "gemma3_text" and "gemma3" in generate::model_registry().
void register_family();

/// Loads a checkpoint directory (config.json + *.safetensors, dense or MLX-quantized).
/// ConfigError/UnsupportedError name the config field, WeightError lists bad tensors.
std::unique_ptr<generate::LanguageModel> load(const std::filesystem::path& dir,
                                              const generate::LoadModelOptions& options = {});

/// Loads a GGUF file written by llama.cpp's converter: metadata `gemma3.*` becomes the config,
/// exactly representable quantizations stay packed (MLX affine), the rest is dequantized to
/// options.dtype (default float32). UnsupportedError if the architecture is not gemma3.
std::unique_ptr<generate::LanguageModel> load_gguf(const std::filesystem::path& file,
                                                   const generate::LoadModelOptions& options = {});

}  // namespace ominix::gemma3

namespace ominix::gemma3 {

/// The default model, resolved at run time: $OMINIX_MODEL when set; else, for an installed
/// executable, PREFIX/share/ominix/models/<file name> found from the executable's folder (so the
/// prefix can move; `cmake --install build --component default_model` copies it there); else the
/// GGUF path compiled in through the CMake cache variable OMINIX_DEFAULT_MODEL (scripts/setup.sh
/// installs Gemma 3 270M Q4_K_M there, in the source tree's .deps/). The path may not exist.
std::filesystem::path default_model();

}  // namespace ominix::gemma3
