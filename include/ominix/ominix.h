// OminiX's library API in one header: load a model directory (any registered family; the
// built-in ones are registered here), then generate tokens or text as C++20 ranges.
//
//   auto model = ominix::load_model(dir);
//   auto cache = model.make_cache();
//   for (int tok : ominix::generate_tokens(model, cache, {.max_tokens = 64}, model.encode("Hi")))
//     ...
// Link ominix::all (CMake: find_package(ominix) then target_link_libraries(app ominix::all)).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/generate/cache.h"
#include "ominix/generate/generate.h"
#include "ominix/generate/model.h"
#include "ominix/generate/sampler.h"
#include "ominix/generate/speculative.h"
#include "ominix/io/weights.h"
#include "ominix/models/qwen_vl.h"
#include "ominix/text/chat_template.h"
#include "ominix/text/tokenizer.h"

namespace ominix {

namespace mx = mlx::core;

/// Registers the built-in model families (Qwen2 / Qwen3 / Qwen3-MoE) in
/// generate::model_registry(). Idempotent; load_model calls it.
void register_builtin_families();

/// How load_model loads.
struct ModelOptions {
  std::optional<mx::Dtype> dtype;     ///< activations / floating weights (nullopt: checkpoint's)
  io::LoadProgressCallback progress;  ///< called per checkpoint file (weights then read eagerly)
};

/// A model's tokenizer and chat template, without its weights.
struct TextAssets {
  std::optional<text::Tokenizer> tokenizer;
  std::optional<text::ChatTemplate> chat_template;
  /// What a chat template receives as bos_token, eos_token... (also without a template of the
  /// model's own, for one given by the user).
  std::vector<std::pair<std::string, std::string>> special_tokens;
};

/// Loads the tokenizer and chat template of a model directory (tokenizer.json,
/// tokenizer_config.json, chat_template.jinja) or of a .gguf file's metadata (or a directory
/// holding one .gguf), reading no weights; either is nullopt when the model has none. IoError for
/// a missing path or a file that is not a .gguf; FormatError for malformed files.
TextAssets load_text_assets(const std::filesystem::path& path);

/// A loaded model directory: the language model and, when the directory has them, its tokenizer
/// and chat template. Movable; caches made from it stay valid across moves.
class Model {
 public:
  Model(std::unique_ptr<generate::LanguageModel> lm, std::filesystem::path dir);

  const generate::LanguageModel& lm() const { return *lm_; }
  const generate::ModelInfo& info() const { return lm_->info(); }
  const std::filesystem::path& dir() const { return dir_; }
  const std::optional<text::Tokenizer>& tokenizer() const { return tokenizer_; }
  const std::optional<text::ChatTemplate>& chat_template() const { return chat_template_; }

  /// A fresh prompt cache (growing; rotating with max_kv_size; quantized with kv_bits).
  generate::PromptCache make_cache(const generate::CacheOptions& options = {}) const {
    return generate::PromptCache(*lm_, options);
  }
  /// Token ids of text (with the tokenizer's special tokens). InvalidArgument without a tokenizer.
  std::vector<int> encode(std::string_view text, bool add_special_tokens = true) const;
  /// Renders messages ([{"role": ..., "content": ...}]) with the chat template, with the
  /// assistant header appended, and encodes the result (no extra special tokens, as transformers'
  /// apply_chat_template). InvalidArgument without a tokenizer or chat template.
  std::vector<int> encode_chat(const nlohmann::ordered_json& messages,
                               const text::RenderOptions& options = {
                                   .add_generation_prompt = true}) const;
  /// encode_chat for messages whose content may be a list of parts, as transformers' processors
  /// take them: {"type": "text", "text": ...}, {"type": "image", "image": PATH}. The template
  /// renders each image part as its image-pad token; the images are read (vision::load_image)
  /// and processed as preprocessor_config.json says (Qwen2-VL image processor), and each pad is
  /// repeated to its image's merged patch count, as the transformers processor does. Feed the
  /// result to bind(). InvalidArgument for a model that reads no images, a pad/image count
  /// mismatch, or a part of an unknown type; video parts are not supported yet
  /// (UnsupportedError); IoError/FormatError for unreadable images.
  qwen_vl::Prompt encode_chat_with_media(const nlohmann::ordered_json& messages,
                                         const text::RenderOptions& options = {
                                             .add_generation_prompt = true}) const;
  /// Token ids of an already rendered prompt whose image-pad tokens stand for `images` in order
  /// (expanded and processed as encode_chat_with_media does).
  qwen_vl::Prompt encode_with_images(std::string_view text,
                                     std::span<const std::filesystem::path> images) const;
  /// Whether the model reads images (a vision-language family).
  bool reads_images() const;
  /// The language model bound to a prompt with images, for the generation loop (its cache:
  /// generate::PromptCache(*bound)). Refers to this model, which must outlive it.
  /// InvalidArgument for a model that reads no images.
  std::unique_ptr<generate::LanguageModel> bind(const qwen_vl::Prompt& prompt) const;
  /// Text of ids. InvalidArgument without a tokenizer.
  std::string decode(const std::vector<int>& ids, bool skip_special_tokens = false) const;

 private:
  const text::Tokenizer& need_tokenizer() const;
  std::unique_ptr<generate::LanguageModel> lm_;
  std::filesystem::path dir_;
  std::optional<text::Tokenizer> tokenizer_;
  std::optional<text::ChatTemplate> chat_template_;
};

/// Loads dir (config.json + safetensors, plus tokenizer.json / chat template when present).
/// IoError for a missing directory, ConfigError for a bad config, UnsupportedError for an unknown
/// model_type, WeightError for missing or mis-shaped tensors.
Model load_model(const std::filesystem::path& dir, const ModelOptions& options = {});

/// Generated token ids as a C++20 input range; generation advances as it is iterated, e.g.
/// `for (int tok : generate_tokens(model, cache, params, prompt) | std::views::take(100))`.
/// The model's tokenizer is used for stop strings and its EOS token unless params names one.
generate::TokenStream generate_tokens(const Model& model, generate::PromptCache& cache,
                                      generate::GenerateParams params, std::vector<int> prompt);

/// Generated text pieces (std::string) as a C++20 input range, through the streaming
/// detokenizer. InvalidArgument when the model has no tokenizer.
generate::TextStream generate_text(const Model& model, generate::PromptCache& cache,
                                   generate::GenerateParams params, std::vector<int> prompt);

}  // namespace ominix
