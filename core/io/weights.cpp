#include "ominix/io/weights.h"

#include <algorithm>
#include <set>
#include <utility>

#include <mlx/ops.h>
#include <mlx/transforms.h>

#include "ominix/base/error.h"
#include "ominix/io/config.h"

namespace ominix::io {

namespace fs = std::filesystem;

namespace {

thread_local LoadProgressCallback scoped_progress;

// Converts a file's tensors to the requested dtype and, when progress is reported, reads them.
class FileLoader {
 public:
  FileLoader(const LoadOptions& options, const std::vector<fs::path>& files)
      : options_(options), progress_(options.progress ? options.progress : scoped_progress) {
    state_.files_total = files.size();
    if (progress_)
      for (const auto& f : files) state_.bytes_total += fs::file_size(f);
  }

  TensorMap operator()(const fs::path& file) {
    TensorMap part = load_safetensors(file);
    if (options_.dtype)
      for (auto& [name, a] : part)
        if (mx::issubdtype(a.dtype(), mx::floating) && a.dtype() != *options_.dtype)
          a = mx::astype(a, *options_.dtype);
    if (progress_) {
      std::vector<mx::array> arrays;
      for (auto& [name, a] : part) arrays.push_back(a);
      mx::eval(arrays);
      state_.files_done += 1;
      state_.bytes_done += fs::file_size(file);
      state_.file = file;
      progress_(state_);
    }
    return part;
  }

 private:
  const LoadOptions& options_;
  LoadProgressCallback progress_;
  LoadProgress state_;
};

std::string shape_str(const mx::Shape& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

void merge_into(TensorMap& all, TensorMap part, const fs::path& file) {
  for (auto& [name, array] : part) {
    if (all.count(name))
      fail<FormatError>("{}: tensor '{}' also appears in another file", file.string(), name);
    all.emplace(name, std::move(array));
  }
}

TensorMap load_sharded(const fs::path& index_path, const LoadOptions& options) {
  auto index = ConfigReader::load(index_path);
  if (!index.json().contains("weight_map") || !index.json()["weight_map"].is_object())
    fail<FormatError>("{}: missing object 'weight_map'", index_path.string());
  const auto& weight_map = index.json()["weight_map"];
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [tensor, shard] : weight_map.items()) {
    if (!shard.is_string())
      fail<FormatError>("{}: weight_map['{}'] is not a file name", index_path.string(), tensor);
    auto name = shard.get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "..")
      fail<FormatError>("{}: weight_map['{}'] = '{}' is not a plain file name", index_path.string(),
                        tensor, name);
    by_shard[name].push_back(tensor);
  }
  const fs::path dir = index_path.parent_path();
  for (const auto& [shard, _] : by_shard)
    if (!fs::exists(dir / shard))
      fail<IoError>("{}: shard '{}' is missing from {}", index_path.string(), shard, dir.string());
  std::vector<fs::path> files;
  for (const auto& [shard, _] : by_shard) files.push_back(dir / shard);
  FileLoader load(options, files);
  TensorMap all;
  for (const auto& [shard, names] : by_shard) {
    TensorMap part = load(dir / shard);
    for (const auto& name : names)
      if (!part.count(name))
        fail<FormatError>("{}: index places tensor '{}' in this shard, which does not hold it",
                          (dir / shard).string(), name);
    merge_into(all, std::move(part), dir / shard);
  }
  return all;
}

}  // namespace

TensorMap load_checkpoint(const fs::path& path, const LoadOptions& options) {
  if (!fs::exists(path)) fail<IoError>("{}: no such file or directory", path.string());
  if (!fs::is_directory(path)) return FileLoader(options, {path})(path);
  if (fs::exists(path / "model.safetensors.index.json"))
    return load_sharded(path / "model.safetensors.index.json", options);
  if (fs::exists(path / "model.safetensors"))
    return FileLoader(options, {path / "model.safetensors"})(path / "model.safetensors");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(path))
    if (e.path().extension() == ".safetensors") files.push_back(e.path());
  if (files.empty()) fail<IoError>("{}: no .safetensors files in this directory", path.string());
  std::sort(files.begin(), files.end());
  FileLoader load(options, files);
  TensorMap tensors;
  for (const auto& f : files) merge_into(tensors, load(f), f);
  return tensors;
}

ScopedLoadProgress::ScopedLoadProgress(LoadProgressCallback callback)
    : previous_(std::exchange(scoped_progress, std::move(callback))) {}

ScopedLoadProgress::~ScopedLoadProgress() {
  scoped_progress = std::move(previous_);
}

LoadProgressCallback scoped_load_progress() {
  return scoped_progress;
}

WeightMap::WeightMap(TensorMap tensors, std::string source)
    : tensors_(std::move(tensors)), source_(std::move(source)) {}

mx::array WeightMap::take(const std::string& key, const mx::Shape& shape) {
  auto it = tensors_.find(key);
  if (it == tensors_.end()) {
    missing_.push_back(key);
    return mx::zeros(shape);
  }
  mx::array a = it->second;
  tensors_.erase(it);
  taken_.push_back(key);
  if (a.shape() != shape) {
    problems_.push_back(
        fmt::format("'{}' has shape {}, expected {}", key, shape_str(a.shape()), shape_str(shape)));
    return mx::zeros(shape);
  }
  return a;
}

mx::array WeightMap::take(const std::string& key) {
  auto it = tensors_.find(key);
  if (it == tensors_.end()) {
    missing_.push_back(key);
    return mx::zeros({0});
  }
  mx::array a = it->second;
  tensors_.erase(it);
  taken_.push_back(key);
  return a;
}

std::optional<mx::array> WeightMap::take_optional(const std::string& key, const mx::Shape& shape) {
  if (!contains(key)) return std::nullopt;
  return take(key, shape);
}

void WeightMap::reject_dtype(const std::string& key, const std::string& why) {
  problems_.push_back(fmt::format("'{}': {}", key, why));
}

void WeightMap::evaluate() {
  std::vector<mx::array> all;
  all.reserve(tensors_.size());
  for (const auto& [name, a] : tensors_) all.push_back(a);
  mx::eval(all);
}

void WeightMap::finish(bool allow_unexpected) {
  std::vector<std::string> lines;
  std::sort(missing_.begin(), missing_.end());
  for (const auto& k : missing_) lines.push_back(fmt::format("missing tensor '{}'", k));
  for (const auto& p : problems_) lines.push_back(p);
  if (!allow_unexpected) {
    std::vector<std::string> left;
    for (const auto& [k, _] : tensors_) left.push_back(k);
    std::sort(left.begin(), left.end());
    for (const auto& k : left) lines.push_back(fmt::format("unexpected tensor '{}'", k));
  }
  if (lines.empty()) return;
  constexpr std::size_t kShown = 20;
  std::string msg = fmt::format("{}: {} problem(s) binding weights:", source_, lines.size());
  for (std::size_t i = 0; i < std::min(lines.size(), kShown); ++i) msg += "\n  " + lines[i];
  if (lines.size() > kShown) msg += fmt::format("\n  ... and {} more", lines.size() - kShown);
  throw WeightError(msg);
}

}  // namespace ominix::io
