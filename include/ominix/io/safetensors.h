// safetensors files: a validating header reader, loading, and atomic saving.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <mlx/array.h>

namespace ominix::io {

namespace mx = mlx::core;

using TensorMap = std::unordered_map<std::string, mx::array>;

/// One tensor entry of a safetensors header. Offsets are relative to the data section.
struct TensorInfo {
  std::string name;
  std::string dtype_name;  ///< as written: "F32", "BF16", "U32"...
  mx::Dtype dtype = mx::float32;
  mx::Shape shape;
  std::uint64_t begin = 0, end = 0;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  ///< in file order of their data
  std::map<std::string, std::string> metadata;
  std::uint64_t data_offset = 0;  ///< 8 + header length
  std::uint64_t file_size = 0;
};

/// Reads and checks a header: sizes, JSON, dtypes, shapes against byte ranges, ranges inside the
/// file and not overlapping. FormatError naming the file (and tensor) on any inconsistency.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

/// Loads every tensor of a checked file (lazily: data is read when first evaluated).
TensorMap load_safetensors(const std::filesystem::path& path);

/// Writes tensors (evaluated first) to a temporary file next to `path`, then renames it.
void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Name of a dtype in safetensors' spelling ("F32", "BF16", ...).
std::string safetensors_dtype_name(mx::Dtype dtype);

}  // namespace ominix::io
