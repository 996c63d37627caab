#include "ominix/io/weights.h"

#include <algorithm>
#include <set>

#include <mlx/ops.h>

#include "ominix/base/error.h"
#include "ominix/io/config.h"

namespace ominix::io {

namespace fs = std::filesystem;

namespace {

std::string shape_str(const mx::Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

void merge_into(TensorMap& all, TensorMap part, const fs::path& file) {
  for (auto& [name, array] : part) {
    if (all.count(name)) fail<FormatError>("{}: tensor '{}' also appears in another file", file.string(), name);
    all.emplace(name, std::move(array));
  }
}

TensorMap load_sharded(const fs::path& index_path) {
  auto index = ConfigReader::load(index_path);
  if (!index.json().contains("weight_map") || !index.json()["weight_map"].is_object())
    fail<FormatError>("{}: missing object 'weight_map'", index_path.string());
  const auto& weight_map = index.json()["weight_map"];
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [tensor, shard] : weight_map.items()) {
    if (!shard.is_string()) fail<FormatError>("{}: weight_map['{}'] is not a file name", index_path.string(), tensor);
    auto name = shard.get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "..")
      fail<FormatError>("{}: weight_map['{}'] = '{}' is not a plain file name", index_path.string(), tensor, name);
    by_shard[name].push_back(tensor);
  }
  const fs::path dir = index_path.parent_path();
  for (const auto& [shard, _] : by_shard)
    if (!fs::exists(dir / shard))
      fail<IoError>("{}: shard '{}' is missing from {}", index_path.string(), shard, dir.string());
  TensorMap all;
  for (const auto& [shard, names] : by_shard) {
    TensorMap part = load_safetensors(dir / shard);
    for (const auto& name : names)
      if (!part.count(name))
        fail<FormatError>("{}: index places tensor '{}' in this shard, which does not hold it", (dir / shard).string(), name);
    merge_into(all, std::move(part), dir / shard);
  }
  return all;
}

}  // namespace

TensorMap load_checkpoint(const fs::path& path, const LoadOptions& options) {
  TensorMap tensors;
  if (!fs::exists(path)) fail<IoError>("{}: no such file or directory", path.string());
  if (fs::is_directory(path)) {
    if (fs::exists(path / "model.safetensors.index.json")) {
      tensors = load_sharded(path / "model.safetensors.index.json");
    } else if (fs::exists(path / "model.safetensors")) {
      tensors = load_safetensors(path / "model.safetensors");
    } else {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(path))
        if (e.path().extension() == ".safetensors") files.push_back(e.path());
      if (files.empty()) fail<IoError>("{}: no .safetensors files in this directory", path.string());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) merge_into(tensors, load_safetensors(f), f);
    }
  } else {
    tensors = load_safetensors(path);
  }
  if (options.dtype) {
    for (auto& [name, a] : tensors)
      if (mx::issubdtype(a.dtype(), mx::floating) && a.dtype() != *options.dtype)
        a = mx::astype(a, *options.dtype);
  }
  return tensors;
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
    problems_.push_back(fmt::format("'{}' has shape {}, expected {}", key, shape_str(a.shape()), shape_str(shape)));
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
