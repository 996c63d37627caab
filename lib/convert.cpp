// ominix::convert_checkpoint: a checkpoint directory rewritten as MLX safetensors, as mlx-lm's
// convert does it (load -> sanitize -> cast -> quantize -> save).
// ref: mlx-lm 0.32.2 mlx_lm/convert.py convert, mlx_lm/utils.py quantize_model, save_model.
#include "ominix/convert.h"

#include <algorithm>
#include <fstream>
#include <set>

#include <fmt/core.h>
#include <mlx/mlx.h>
#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/generate/convert_hooks.h"
#include "ominix/io/safetensors.h"
#include "ominix/io/torch_zip.h"
#include "ominix/io/weights.h"
#include "ominix/ominix.h"

namespace ominix {

namespace {

namespace fs = std::filesystem;
namespace mx = mlx::core;

constexpr int kMaxDepth = 16;  // subdirectory levels walked (a symlink loop stops here)

// Runs a filesystem operation; its std::filesystem_error becomes an IoError naming `path`.
template <typename F>
auto fs_do(const char* what, const fs::path& path, F&& f) {
  try {
    return f();
  } catch (const fs::filesystem_error& e) {
    fail<IoError>("{}: cannot {}: {}", path.string(), what, e.code().message());
  }
}

// `<out>.partial`, removed when it goes out of scope unless commit() renamed it to `out`.
class PartialDir {
 public:
  explicit PartialDir(fs::path out) : out_(std::move(out)), path_(out_) {
    path_ += ".partial";
    std::error_code ec;
    if (fs::exists(path_, ec))  // a run that was killed
      fs_do("remove the stale partial output", path_, [&] { fs::remove_all(path_); });
    fs_do("create the output directory", out_, [&] { fs::create_directories(path_); });
  }
  ~PartialDir() {
    if (committed_) return;
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  PartialDir(const PartialDir&) = delete;
  PartialDir& operator=(const PartialDir&) = delete;

  const fs::path& path() const { return path_; }
  void commit() {
    fs_do("replace the empty output directory", out_, [&] {
      if (fs::exists(out_)) fs::remove(out_);  // checked empty before starting
    });
    fs_do("rename the finished output into place", out_, [&] { fs::rename(path_, out_); });
    committed_ = true;
  }

 private:
  fs::path out_, path_;
  bool committed_ = false;
};

// The files of a directory that hold its weights, and how they are read.
enum class Source { none, safetensors, torch_zip };

Source weight_source(const fs::path& dir) {
  if (fs::exists(dir / "model.safetensors.index.json") || fs::exists(dir / "model.safetensors"))
    return Source::safetensors;
  if (fs::exists(dir / "model.pt")) return Source::torch_zip;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") return Source::safetensors;
  return Source::none;
}

// Files never copied: the weights (rewritten) and other copies of them (PyTorch .bin shards).
bool is_weight_file(const fs::path& file) {
  const auto name = file.filename().string();
  return file.extension() == ".safetensors" || name == "model.safetensors.index.json" ||
         name == "model.pt" || (name.starts_with("pytorch_model") && name.ends_with(".bin")) ||
         name == "pytorch_model.bin.index.json";
}

bool is_inside(const fs::path& path, const fs::path& dir) {
  auto p = path.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++p)
    if (p == path.end() || *p != *d) return false;
  return true;
}

std::optional<mx::Dtype> dtype_named(const std::string& name) {
  if (name == "float16") return mx::float16;
  if (name == "bfloat16") return mx::bfloat16;
  if (name == "float32") return mx::float32;
  return std::nullopt;
}

// mlx-lm's default cast: config.json's torch_dtype (transformers 5: dtype; multimodal configs:
// text_config's) when it is one of the three floating types.
std::optional<mx::Dtype> config_dtype(const io::ConfigReader& config) {
  for (const char* key : {"torch_dtype", "dtype"})
    if (auto name = config.optional<std::string>(key)) return dtype_named(*name);
  const auto text = config.child("text_config");
  for (const char* key : {"torch_dtype", "dtype"})
    if (auto name = text.optional<std::string>(key)) return dtype_named(*name);
  return std::nullopt;
}

std::string dtype_name(mx::Dtype d) {
  return d == mx::float16 ? "float16" : d == mx::bfloat16 ? "bfloat16" : "float32";
}

struct DirJob {
  fs::path from, to;  // `to` is inside the partial output
  const ConvertOptions& options;
  ConvertReport& report;
  fs::path reported;  // `to` as it will be named once renamed
};

// One quantized module's parts, or nothing when the family's rule or the shape keeps it floating.
struct Quantized {
  std::string module;
  std::optional<io::QuantSpec> override;
  mx::array weight, scales, biases;
};

std::optional<Quantized> quantize_tensor(const std::string& key, const mx::array& t,
                                         const io::QuantSpec& global,
                                         const generate::ConvertHooks* hooks,
                                         const fs::path& source) {
  // ref: mlx-lm utils.py quantize_model.wrapped_predicate — modules with to_quantized (Linear,
  // Embedding, SwitchLinear: the .weight matrices of rank 2 or 3) whose input width the global
  // group size divides; then the family's predicate.
  if (!key.ends_with(".weight") || (t.ndim() != 2 && t.ndim() != 3)) return std::nullopt;
  if (!mx::issubdtype(t.dtype(), mx::floating) || t.shape(-1) % global.group_size != 0)
    return std::nullopt;
  const auto module = key.substr(0, key.size() - std::string(".weight").size());
  generate::QuantChoice choice;
  if (hooks && hooks->quant_predicate) choice = hooks->quant_predicate(module);
  if (!choice.quantize) return std::nullopt;
  const auto spec = choice.spec.value_or(global);
  io::validate(spec, fmt::format("{}: quantization of {}", source.string(), module));
  if (t.shape(-1) % spec.group_size != 0)
    fail<ConfigError>("{}: {} has {} columns, which group_size {} does not divide", source.string(),
                      key, t.shape(-1), spec.group_size);
  try {
    auto parts = mx::quantize(t, spec.group_size, spec.bits);
    return Quantized{module, choice.spec, parts.at(0), parts.at(1), parts.at(2)};
  } catch (const std::exception& e) {
    fail<UnsupportedError>("{}: cannot quantize {} ({} bits, group_size {}): {}", source.string(),
                           key, spec.bits, spec.group_size, e.what());
  }
}

// ref: mlx-lm utils.py save_model — shards of at most max_shard_bytes in key order, named
// model.safetensors (one) or model-0000i-of-0000n.safetensors, and the index. Each shard is
// computed (read, cast, stacked, quantized), written and released before the next one.
std::size_t save_shards(const fs::path& dir, io::TensorMap tensors, std::uint64_t max_shard_bytes) {
  std::vector<std::string> keys;
  for (const auto& entry : tensors) keys.push_back(entry.first);
  std::sort(keys.begin(), keys.end());
  std::vector<io::TensorMap> shards(1);
  std::uint64_t size = 0, total = 0;
  for (const auto& key : keys) {
    auto node = tensors.extract(key);
    const auto bytes = node.mapped().nbytes();
    if (size + bytes > max_shard_bytes && !shards.back().empty()) {
      shards.emplace_back();
      size = 0;
    }
    shards.back().insert(std::move(node));
    size += bytes;
    total += bytes;
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}},
                                  {"weight_map", nlohmann::ordered_json::object()}};
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const auto name = shards.size() == 1
                          ? std::string("model.safetensors")
                          : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    try {
      io::save_safetensors(dir / name, shards[i], {{"format", "mlx"}});
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {  // reading a source tensor, casting or quantizing
      fail<IoError>("{}: cannot write: {}", (dir / name).string(), e.what());
    }
    std::vector<std::string> names;
    for (const auto& entry : shards[i]) names.push_back(entry.first);
    std::sort(names.begin(), names.end());
    for (const auto& key : names) index["weight_map"][key] = name;
    shards[i].clear();
  }
  const auto path = dir / "model.safetensors.index.json";
  std::ofstream out(path);
  out << index.dump(4) << "\n";
  if (!out.flush()) fail<IoError>("{}: cannot write", path.string());
  return shards.size();
}

void write_config(const fs::path& path, const nlohmann::ordered_json& config) {
  std::ofstream out(path);
  out << config.dump(4) << "\n";
  if (!out.flush()) fail<IoError>("{}: cannot write", path.string());
}

void convert_weights(const DirJob& job, Source source) {
  const auto& o = job.options;
  const fs::path config_path = job.from / "config.json";
  const bool has_config = fs::exists(config_path);
  if (o.quantize && !has_config)
    fail<UnsupportedError>(
        "{}: --quantize records the quantization in config.json, which this directory does not "
        "have",
        job.from.string());
  std::optional<io::ConfigReader> reader;
  nlohmann::ordered_json config;
  const generate::ConvertHooks* hooks = nullptr;
  if (has_config) {
    reader = io::ConfigReader::load(config_path);
    config = io::read_ordered_json_file(config_path);
    if (auto type = reader->optional<std::string>("model_type"))
      hooks = generate::find_convert_hooks(*type);
    for (const char* key : {"quantization", "quantization_config"})
      if (o.quantize && reader->has(key))
        fail<ConfigError>(
            "{}: the model is quantized already; --quantize takes a floating-point checkpoint",
            reader->field(key));
  }

  const auto weights = source == Source::torch_zip ? job.from / "model.pt" : job.from;
  io::TensorMap tensors =
      source == Source::torch_zip ? io::load_torch_zip(weights) : io::load_checkpoint(weights);
  if (hooks && hooks->sanitize) {
    io::WeightMap w(std::move(tensors), weights.string());
    hooks->sanitize(w, *reader);
    w.finish(/*allow_unexpected=*/true);  // a missing or mis-shaped expert, by name
    tensors = std::move(w.tensors());
  }

  auto dtype = o.dtype;
  if (!dtype && reader) dtype = config_dtype(*reader);
  io::TensorMap out;
  std::size_t quantized = 0;
  nlohmann::ordered_json overrides = nlohmann::ordered_json::object();
  std::vector<std::string> keys;
  for (const auto& entry : tensors) keys.push_back(entry.first);
  std::sort(keys.begin(), keys.end());
  for (const auto& key : keys) {
    mx::array t = tensors.at(key);
    if (dtype && mx::issubdtype(t.dtype(), mx::floating) && t.dtype() != *dtype &&
        (!hooks || !hooks->cast_predicate || hooks->cast_predicate(key)))
      t = mx::astype(t, *dtype);
    if (o.quantize) {
      if (auto q = quantize_tensor(key, t, *o.quantize, hooks, config_path)) {
        out.insert_or_assign(q->module + ".weight", q->weight);
        out.insert_or_assign(q->module + ".scales", q->scales);
        out.insert_or_assign(q->module + ".biases", q->biases);
        if (q->override)
          overrides[q->module] = {{"group_size", q->override->group_size},
                                  {"bits", q->override->bits}};
        ++quantized;
        continue;
      }
    }
    out.insert_or_assign(key, t);
  }
  tensors.clear();

  const auto count = out.size();
  const auto shards = save_shards(job.to, std::move(out), o.max_shard_bytes);
  if (o.quantize) {  // ref: mlx-lm quantize_model: the global spec, the overrides, both names
    nlohmann::ordered_json q = {
        {"group_size", o.quantize->group_size}, {"bits", o.quantize->bits}, {"mode", "affine"}};
    for (const auto& [module, spec] : overrides.items()) q[module] = spec;
    config["quantization"] = q;
    config["quantization_config"] = q;
  }
  bool config_changed = o.quantize.has_value();
  for (const char* key : {"torch_dtype", "dtype"})
    if (o.dtype && config.contains(key) && config[key].is_string()) {
      config[key] = dtype_name(*o.dtype);
      config_changed = true;
    }
  if (config_changed) write_config(job.to / "config.json", config);
  job.report.dirs.push_back(
      {.dir = job.reported, .tensors = count, .quantized = quantized, .shards = shards});
}

void convert_dir(const DirJob& job, int depth) {
  if (depth > kMaxDepth)
    fail<IoError>("{}: more than {} levels of subdirectories (a symlink loop?)", job.from.string(),
                  kMaxDepth);
  const auto source = fs_do("read", job.from, [&] { return weight_source(job.from); });
  if (depth == 0 && source == Source::none)
    fail<IoError>("{}: no weights (model.safetensors, *.safetensors shards or model.pt)",
                  job.from.string());
  if (source != Source::none) convert_weights(job, source);
  std::vector<fs::directory_entry> entries;
  fs_do("list", job.from, [&] {
    for (const auto& e : fs::directory_iterator(job.from)) entries.push_back(e);
  });
  for (const auto& e : entries) {
    const auto name = e.path().filename();
    if (name.string().starts_with(".")) continue;
    const auto to = job.to / name;
    if (fs_do("read", e.path(), [&] { return e.is_directory(); })) {
      fs_do("create", to, [&] { fs::create_directory(to); });
      convert_dir({e.path(), to, job.options, job.report, job.reported / name}, depth + 1);
      continue;
    }
    if (is_weight_file(e.path())) continue;
    fs_do("copy", e.path(), [&] {
      if (!fs::exists(to)) fs::copy_file(e.path(), to);  // config.json may be written already
    });
  }
}

}  // namespace

ConvertReport convert_checkpoint(const ConvertOptions& options) {
  register_builtin_families();
  const auto& model = options.model;
  const auto& out = options.out;
  std::error_code ec;
  if (!fs::is_directory(model, ec)) fail<IoError>("{}: no such model directory", model.string());
  if (out.empty()) fail<InvalidArgument>("the output directory's name is empty");
  const auto status = fs::status(out, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status))
      fail<IoError>("{}: exists and is not a directory (the output must be a new directory)",
                    out.string());
    if (!fs_do("read", out, [&] { return fs::is_empty(out); }))
      fail<IoError>("{}: output directory exists and is not empty", out.string());
  }
  const auto model_abs = fs_do("resolve", model, [&] { return fs::weakly_canonical(model); });
  const auto out_abs = fs_do("resolve", out, [&] { return fs::weakly_canonical(out); });
  if (is_inside(out_abs, model_abs))
    fail<InvalidArgument>("{}: the output directory is inside the model directory {}", out.string(),
                          model.string());
  if (options.quantize) io::validate(*options.quantize, "--quantize/--group-size");

  ConvertReport report;
  PartialDir partial(out);
  try {
    convert_dir({model, partial.path(), options, report, out}, 0);
  } catch (const Error&) {
    throw;
  } catch (const fs::filesystem_error& e) {
    fail<IoError>("{}: {}", e.path1().string(), e.code().message());
  } catch (const std::exception& e) {  // a library's exception that no step above turned into ours
    fail<Error>("{}: cannot convert: {}", model.string(), e.what());
  }
  partial.commit();
  return report;
}

}  // namespace ominix
