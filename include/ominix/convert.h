// Rewriting a checkpoint directory as MLX safetensors (what `ominix convert` does), as mlx-lm's
// convert: load (safetensors shards or a PyTorch model.pt) -> the family's sanitize -> optional
// dtype cast -> optional affine quantization with the family's quant_predicate -> save in shards
// of at most 5 GB with model.safetensors.index.json, every other file copied.
//
//   auto report = ominix::convert_checkpoint({.model = "Qwen3-0.6B", .out = "Qwen3-0.6B-4bit",
//                                             .quantize = ominix::io::QuantSpec{64, 4}});
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include <mlx/dtype.h>

#include "ominix/io/config.h"

namespace ominix {

struct ConvertOptions {
  std::filesystem::path model;  ///< the source directory
  /// The output directory: must not exist, or be an empty directory. Written as `<out>.partial`
  /// and renamed at the end; nothing is left behind on failure.
  std::filesystem::path out;
  std::optional<io::QuantSpec> quantize;  ///< affine quantization of weight matrices; none: keep
  /// Cast floating tensors to this dtype. None: config.json's torch_dtype (or dtype) when it is
  /// float16/bfloat16/float32, as mlx-lm; otherwise the checkpoint's own.
  std::optional<mlx::core::Dtype> dtype;
  std::uint64_t max_shard_bytes = 5ull << 30;  ///< mlx-lm's 5 GB
};

/// What was written for one directory holding weights (the model directory, and each
/// subdirectory with a checkpoint of its own, e.g. a nested LLM).
struct ConvertedDir {
  std::filesystem::path dir;  ///< the output directory
  std::size_t tensors = 0;
  std::size_t quantized = 0;  ///< modules quantized
  std::size_t shards = 0;
};

struct ConvertReport {
  std::vector<ConvertedDir> dirs;
};

/// Converts options.model into options.out. Subdirectories are walked: one that holds a checkpoint
/// of its own is converted with the same options (its own config.json, family and rules), the
/// others are copied; hidden entries (".git", ".cache") are skipped. Every failure is an
/// ominix::Error naming the file, field or tensor: IoError (unreadable source, `out` an existing
/// file or non-empty directory, an unwritable destination), ConfigError (bad config.json,
/// --quantize on an already quantized model, a quantization MLX cannot do), WeightError (a
/// sanitize step's missing tensors).
ConvertReport convert_checkpoint(const ConvertOptions& options);

}  // namespace ominix
