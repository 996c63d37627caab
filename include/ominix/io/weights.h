// Checkpoint loading (single file, sharded, directory) and a strict weight binder that reports
// every missing, unexpected and mis-shaped tensor by name in one error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ominix/io/safetensors.h"

namespace ominix::io {

/// How far a checkpoint load has got, reported after each file.
struct LoadProgress {
  std::size_t files_done = 0;
  std::size_t files_total = 0;
  std::uint64_t bytes_done = 0;   ///< sizes of the files read so far
  std::uint64_t bytes_total = 0;  ///< sizes of all the checkpoint's files
  std::filesystem::path file;     ///< the file just read
};

/// Receives LoadProgress during load_checkpoint.
using LoadProgressCallback = std::function<void(const LoadProgress&)>;

struct LoadOptions {
  /// Convert floating-point tensors to this dtype on load (packed integer weights stay as they
  /// are).
  std::optional<mx::Dtype> dtype;
  /// Called after each file. When a callback is set (here or by ScopedLoadProgress), each file's
  /// tensors are read eagerly (evaluated) before it is reported, so progress follows the I/O;
  /// otherwise tensors stay lazy until first used.
  LoadProgressCallback progress;
};

/// While alive, load_checkpoint calls on this thread whose options carry no progress callback
/// report to `callback` (for loaders, such as model families, that build LoadOptions themselves).
/// Restores the previous one when destroyed.
class ScopedLoadProgress {
 public:
  explicit ScopedLoadProgress(LoadProgressCallback callback);
  ~ScopedLoadProgress();
  ScopedLoadProgress(const ScopedLoadProgress&) = delete;
  ScopedLoadProgress& operator=(const ScopedLoadProgress&) = delete;

 private:
  LoadProgressCallback previous_;
};

/// The callback a ScopedLoadProgress installed on this thread (empty when none), for readers of
/// other formats (GGUF) that report through the same hook.
LoadProgressCallback scoped_load_progress();

/// Loads a checkpoint: a .safetensors file, or a directory holding model.safetensors,
/// a sharded model.safetensors.index.json, or other *.safetensors files.
TensorMap load_checkpoint(const std::filesystem::path& path, const LoadOptions& options = {});

/// Hands tensors to a model by name, checking shapes, and remembers what went wrong.
/// Call finish() after binding: it throws WeightError listing all problems at once.
class WeightMap {
 public:
  WeightMap(TensorMap tensors, std::string source);

  bool contains(const std::string& key) const { return tensors_.count(key) > 0; }
  /// The tensor `key`, which must have `shape`. A missing or mis-shaped tensor is recorded and a
  /// placeholder of `shape` is returned, so binding can go on to report every problem.
  mx::array take(const std::string& key, const mx::Shape& shape);
  /// The tensor `key` of any shape (missing: recorded, returns an empty placeholder).
  mx::array take(const std::string& key);
  /// The tensor if present (checked against `shape`), nullopt otherwise; never records "missing".
  std::optional<mx::array> take_optional(const std::string& key, const mx::Shape& shape);
  /// Marks a tensor as deliberately unused (e.g. rotary caches some checkpoints carry).
  void ignore(const std::string& key) { taken_.push_back(key), tensors_.erase(key); }
  /// Records that `key` has a dtype the model cannot use.
  void reject_dtype(const std::string& key, const std::string& why);

  /// Reads every tensor still in the map now (one mx::eval). Loaded tensors are lazy; the CPU
  /// kernels take evaluated weights only, and reading them at the first call makes it slow.
  void evaluate();
  /// Throws WeightError if anything was missing or mis-shaped, or (unless allowed) left over.
  void finish(bool allow_unexpected = false);

  TensorMap& tensors() { return tensors_; }  ///< for sanitize steps that rename or stack keys
  const std::string& source() const { return source_; }

 private:
  TensorMap tensors_;
  std::string source_;
  std::vector<std::string> taken_, missing_, problems_;
};

}  // namespace ominix::io
