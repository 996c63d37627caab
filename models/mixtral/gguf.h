// llama.cpp's "llama" GGUF architecture (Llama, Mistral, Mixtral) read as a transformers
// checkpoint: the config.json its metadata stands for, tensors under transformers' names with
// convert_hf_to_gguf.py's q/k permutation undone, and the rope_freqs factors.
#pragma once

#include <filesystem>
#include <vector>

#include <mlx/array.h>
#include <nlohmann/json.hpp>

#include "ominix/io/config.h"
#include "ominix/io/safetensors.h"

namespace ominix::mixtral {

namespace mx = mlx::core;

struct GgufCheckpoint {
  nlohmann::json config;                ///< a config.json (model_type llama or mixtral)
  io::TensorMap tensors;                ///< transformers' names; experts stacked or per expert
  io::QuantizationConfig quantization;  ///< the specs of the tensors kept quantized
  std::vector<float> rope_freqs;        ///< llama.cpp's per-frequency factors, or empty
};

/// Reads `file` (general.architecture "llama"): UnsupportedError for another architecture or a
/// layout the model does not have (partial rotary, yarn scaling, value and key lengths differing);
/// ConfigError naming the key for missing or mistyped metadata. `dtype`: of dense tensors.
GgufCheckpoint read_gguf(const std::filesystem::path& file, mx::Dtype dtype);

}  // namespace ominix::mixtral
