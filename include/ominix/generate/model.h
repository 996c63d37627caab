// The causal language model interface that the generation loop drives, and the registry that
// maps config.json's model_type to a family's loader. Families register themselves; core never
// names one.
#pragma once

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <mlx/array.h>

#include "ominix/base/error.h"
#include "ominix/generate/cache.h"
#include "ominix/io/config.h"
#include "ominix/io/gguf.h"
#include "ominix/io/weights.h"

namespace ominix::generate {

namespace mx = mlx::core;

/// What the generation loop needs to know about a model.
struct ModelInfo {
  std::string model_type;
  int vocab_size = 0;
  int num_layers = 0;
  int max_position_embeddings = 0;  ///< the context length prompts are checked against
  std::vector<int> eos_token_ids;   ///< from config.json and generation_config.json
  std::optional<int> bos_token_id;
  mx::Dtype dtype = mx::float32;  ///< activations dtype
};

/// A causal LM: tokens in, logits out, updating its per-layer caches.
class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  /// tokens [B, L] (int32) -> logits [B, L, vocab_size]. Appends L positions to `cache`, which
  /// must come from make_cache (or be a clone of one).
  virtual mx::array operator()(const mx::array& tokens, Cache& cache) const = 0;
  /// Fresh caches for every layer (families with mixed layer kinds override this).
  virtual Cache make_cache(const CacheOptions& options = {}) const {
    return Cache::make(info().num_layers, options);
  }
  virtual const ModelInfo& info() const = 0;
};

/// EOS ids for ModelInfo: config.json's eos_token_id, then generation_config.json's (when the
/// directory has one), each id once.
inline std::vector<int> read_eos_token_ids(const std::filesystem::path& dir,
                                           const io::ConfigReader& config) {
  auto ids = config.int_list("eos_token_id");
  if (std::filesystem::exists(dir / "generation_config.json"))
    for (int id : io::ConfigReader::load(dir / "generation_config.json").int_list("eos_token_id"))
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

/// Drops the checkpoint tensors that no module binds: rotary caches (`*rotary_emb.inv_freq`), with
/// tied embeddings the head's copy (`lm_head.*`), and every key starting with one of
/// `also_prefixes` (e.g. GLM-4-MoE's multi-token-prediction layer). The first step of a sanitize.
inline void drop_unbound_tensors(io::WeightMap& w, bool tie_word_embeddings,
                                 const std::vector<std::string>& also_prefixes = {}) {
  std::vector<std::string> unused;
  for (const auto& entry : w.tensors()) {
    const std::string& key = entry.first;  // a named variable: clang 14 cannot capture a binding
    if (key.ends_with("rotary_emb.inv_freq") ||
        std::any_of(also_prefixes.begin(), also_prefixes.end(),
                    [&](const std::string& p) { return key.starts_with(p); }) ||
        (tie_word_embeddings && key.starts_with("lm_head.")))
      unused.push_back(key);
  }
  for (const auto& key : unused) w.ignore(key);
}

/// The sizes of ModelInfo that a family reads from its own Config.
struct ModelShape {
  int vocab_size = 0;
  int num_layers = 0;
  int max_position_embeddings = 0;
};

/// ModelInfo for a checkpoint in `dir`: model_type, bos_token_id and the EOS ids
/// (read_eos_token_ids) from `config`, the sizes from `shape`, and the activations dtype of `w`'s
/// model.norm.weight (float32 when there is none). Reads `w` without taking anything.
inline ModelInfo make_model_info(const std::filesystem::path& dir, const io::ConfigReader& config,
                                 const ModelShape& shape, io::WeightMap& w) {
  auto norm = w.tensors().find("model.norm.weight");
  return {.model_type = config.required<std::string>("model_type"),
          .vocab_size = shape.vocab_size,
          .num_layers = shape.num_layers,
          .max_position_embeddings = shape.max_position_embeddings,
          .eos_token_ids = read_eos_token_ids(dir, config),
          .bos_token_id = config.optional<int>("bos_token_id"),
          .dtype = norm != w.tensors().end() ? norm->second.dtype() : mx::float32};
}

/// How to load: dtype of activations/floating weights (nullopt: the checkpoint's own).
/// The checks a model's forward starts with, InvalidArgument naming `who` (the model_type):
/// tokens are [B, L], and the cache has one entry per layer.
inline void check_tokens(const std::string& who, const mx::array& tokens) {
  if (tokens.ndim() != 2)
    fail<InvalidArgument>("{}: tokens must be [B, L], got {} dims", who, tokens.ndim());
}
inline void check_cache_layers(const std::string& who, const Cache& cache, std::size_t layers) {
  if (cache.num_layers() != layers)
    fail<InvalidArgument>("{}: cache has {} layers, model {}", who, cache.num_layers(), layers);
}

struct LoadModelOptions {
  std::optional<mx::Dtype> dtype;
};

/// What every decoder family's loader does once the checkpoint is read: the family's sanitize,
/// the model info, Model(config, weights, info, extra...) binding the tensors, and the strict
/// report of every missing, unexpected or mis-shaped tensor. Config has vocab_size,
/// num_hidden_layers and attention.max_position_embeddings.
template <typename Model, typename Config, typename Sanitize, typename... Extra>
std::unique_ptr<Model> bind_decoder(const std::filesystem::path& dir,
                                    const io::ConfigReader& reader, Config config, io::WeightMap w,
                                    const Sanitize& sanitize, Extra&&... extra) {
  sanitize(w, config);
  auto info = make_model_info(dir, reader,
                              {.vocab_size = config.vocab_size,
                               .num_layers = config.num_hidden_layers,
                               .max_position_embeddings = config.attention.max_position_embeddings},
                              w);
  auto model =
      std::make_unique<Model>(std::move(config), w, std::move(info), std::forward<Extra>(extra)...);
  w.finish();
  return model;
}

/// Parses the config, reads dir's checkpoint (in options.dtype) and binds it (bind_decoder).
template <typename Model, typename Config, typename Sanitize, typename... Extra>
std::unique_ptr<Model> load_decoder(const std::filesystem::path& dir,
                                    const io::ConfigReader& reader, const LoadModelOptions& options,
                                    const Sanitize& sanitize, Extra&&... extra) {
  auto config = Config::parse(reader);
  io::WeightMap w(io::load_checkpoint(dir, {.dtype = options.dtype}), dir.string());
  return bind_decoder<Model>(dir, reader, std::move(config), std::move(w), sanitize,
                             std::forward<Extra>(extra)...);
}

using ModelLoader = std::function<std::unique_ptr<LanguageModel>(const std::filesystem::path& dir,
                                                                 const io::ConfigReader& config,
                                                                 const LoadModelOptions& options)>;

/// model_type -> loader. A family registers each model_type it reads.
inline std::map<std::string, ModelLoader>& model_registry() {
  static std::map<std::string, ModelLoader> registry;
  return registry;
}

inline void register_model(const std::string& model_type, ModelLoader loader) {
  model_registry()[model_type] = std::move(loader);
}

/// Reads dir/config.json and builds the model its model_type names (UnsupportedError listing the
/// known types otherwise).
inline std::unique_ptr<LanguageModel> load_model(const std::filesystem::path& dir,
                                                 const LoadModelOptions& options = {}) {
  auto config = io::ConfigReader::load(dir / "config.json");
  auto type = config.required<std::string>("model_type");
  auto it = model_registry().find(type);
  if (it == model_registry().end()) {
    std::string known;
    for (const auto& [name, _] : model_registry()) known += (known.empty() ? "" : ", ") + name;
    fail<UnsupportedError>("{}: model_type '{}' is not supported (known: {})",
                           config.field("model_type"), type,
                           known.empty() ? "none registered" : known);
  }
  return it->second(dir, config, options);
}

/// Loads a GGUF file (llama.cpp's format) into a LanguageModel. The tokenizer and chat template
/// are read by the caller from the same file's metadata.
using GgufLoader = std::function<std::unique_ptr<LanguageModel>(const std::filesystem::path& file,
                                                                const LoadModelOptions& options)>;

/// GGUF `general.architecture` ("gemma3", "qwen2", "llama"...) -> loader. A family registers
/// each architecture it reads.
inline std::map<std::string, GgufLoader>& gguf_registry() {
  static std::map<std::string, GgufLoader> registry;
  return registry;
}

inline void register_gguf(const std::string& architecture, GgufLoader loader) {
  gguf_registry()[architecture] = std::move(loader);
}

/// Reads `file`'s general.architecture and builds the model its registered loader makes
/// (UnsupportedError naming the file and listing the known architectures otherwise).
inline std::unique_ptr<LanguageModel> load_gguf_model(const std::filesystem::path& file,
                                                      const LoadModelOptions& options = {}) {
  const auto metadata = io::GgufFile::open(file).metadata();
  const auto arch = metadata.architecture();
  auto it = gguf_registry().find(arch);
  if (it == gguf_registry().end()) {
    std::string known;
    for (const auto& entry : gguf_registry()) known += (known.empty() ? "" : ", ") + entry.first;
    fail<UnsupportedError>("{}: GGUF architecture '{}' is not supported (known: {})",
                           metadata.field("general.architecture"), arch,
                           known.empty() ? "none registered" : known);
  }
  return it->second(file, options);
}

}  // namespace ominix::generate
