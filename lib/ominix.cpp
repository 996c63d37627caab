// The umbrella library: load_model over the built-in families, tokenizer and chat template.
#include "ominix/ominix.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

#include "ominix/io/gguf.h"
#include "ominix/models/gemma3.h"
#include "ominix/models/glm4.h"
#include "ominix/models/mixtral.h"
#include "ominix/models/qwen3.h"
#include "ominix/models/qwen_vl.h"
#include "ominix/text/gguf_tokenizer.h"
#include "ominix/vision/image.h"
#include "ominix/vision/qwen2_vl_processor.h"

namespace ominix {

namespace fs = std::filesystem;

namespace {

bool has_chat_template(const fs::path& dir) {
  if (fs::exists(dir / "chat_template.jinja") || fs::exists(dir / "chat_template.json"))
    return true;
  std::ifstream in(dir / "tokenizer_config.json");
  if (!in) return false;
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("chat_template") && !j["chat_template"].is_null();
}

}  // namespace

void register_builtin_families() {
  static const bool registered = [] {
    qwen3::register_family();
    gemma3::register_family();
    glm4::register_family();
    mixtral::register_family();
    qwen_vl::register_family();
    return true;
  }();
  (void)registered;
}

bool is_gguf(const fs::path& p) {
  return fs::is_regular_file(p) && p.extension() == ".gguf";
}

/// A directory without config.json but with exactly one .gguf file stands for that file.
fs::path resolve_gguf(const fs::path& dir) {
  if (is_gguf(dir) || !fs::is_directory(dir) || fs::exists(dir / "config.json")) return dir;
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir))
    if (is_gguf(e.path())) found.push_back(e.path());
  return found.size() == 1 ? found.front() : dir;
}

TextAssets load_text_assets(const fs::path& path) {
  const auto dir = resolve_gguf(path);
  TextAssets out;
  if (is_gguf(dir)) {  // tokenizer and chat template from the GGUF metadata, no tensor read
    const auto file = io::GgufFile::open(dir);
    if (!file.metadata().has("tokenizer.ggml.tokens")) return out;
    const auto data = io::GgufTokenizerData::parse(file.metadata());
    out.tokenizer = text::tokenizer_from_gguf(data, file.metadata().architecture(), dir.string());
    out.chat_template = text::chat_template_from_gguf(data);
    auto specials = data;  // the special tokens of a template, whether the file has one or not
    specials.chat_template = "";
    out.special_tokens = text::chat_template_from_gguf(specials)->special_tokens();
    return out;
  }
  if (!fs::exists(dir)) fail<IoError>("{}: no such model directory or .gguf file", dir.string());
  if (!fs::is_directory(dir))
    fail<IoError>(
        "{}: not a model: expected a model directory (tokenizer.json, config.json) or a .gguf "
        "file",
        dir.string());
  if (fs::exists(dir / "tokenizer.json")) out.tokenizer = text::Tokenizer::from_dir(dir);
  if (has_chat_template(dir)) out.chat_template = text::ChatTemplate::from_model_dir(dir);
  if (out.chat_template) {
    out.special_tokens = out.chat_template->special_tokens();
  } else if (out.tokenizer) {
    if (auto b = out.tokenizer->bos_token()) out.special_tokens.emplace_back("bos_token", *b);
    if (auto e = out.tokenizer->eos_token()) out.special_tokens.emplace_back("eos_token", *e);
  }
  return out;
}

namespace {

/// The image paths of messages' image parts, in order; UnsupportedError for video parts,
/// InvalidArgument for a part that is not an object with a known type.
std::vector<fs::path> image_parts(const nlohmann::ordered_json& messages) {
  std::vector<fs::path> out;
  if (!messages.is_array()) return out;
  for (std::size_t m = 0; m < messages.size(); ++m) {
    const auto& msg = messages[m];
    if (!msg.is_object() || !msg.contains("content") || !msg["content"].is_array()) continue;
    const auto& parts = msg["content"];
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const auto& part = parts[i];
      const auto where = fmt::format("messages[{}].content[{}]", m, i);
      if (!part.is_object()) fail<InvalidArgument>("{}: expected an object", where);
      const std::string type = part.contains("type") && part["type"].is_string()
                                   ? part["type"].get<std::string>()
                                   : (part.contains("image") ? "image" : "");
      if (type == "video" || part.contains("video"))
        fail<UnsupportedError>("{}: video parts are not supported yet", where);
      if (type == "image") {
        if (!part.contains("image") || !part["image"].is_string())
          fail<InvalidArgument>("{}: an image part needs \"image\": a file path", where);
        out.emplace_back(part["image"].get<std::string>());
      } else if (type != "text") {
        fail<InvalidArgument>("{}: unknown part type \"{}\" (text, image)", where, type);
      }
    }
  }
  return out;
}

}  // namespace

Model::Model(std::unique_ptr<generate::LanguageModel> lm, fs::path dir)
    : lm_(std::move(lm)), dir_(std::move(dir)) {
  auto assets = load_text_assets(dir_);
  tokenizer_ = std::move(assets.tokenizer);
  chat_template_ = std::move(assets.chat_template);
}

const text::Tokenizer& Model::need_tokenizer() const {
  if (!tokenizer_)
    fail<InvalidArgument>("{}: the model directory has no tokenizer.json", dir_.string());
  return *tokenizer_;
}

std::vector<int> Model::encode(std::string_view text, bool add_special_tokens) const {
  auto ids = need_tokenizer().encode(text, add_special_tokens);
  return {ids.begin(), ids.end()};
}

std::vector<int> Model::encode_chat(const nlohmann::ordered_json& messages,
                                    const text::RenderOptions& options) const {
  if (!chat_template_) fail<InvalidArgument>("{}: the model has no chat template", dir_.string());
  if (!image_parts(messages).empty())
    fail<InvalidArgument>("{}: the messages hold images; encode them with encode_chat_with_media",
                          dir_.string());
  return encode(chat_template_->render(messages, options), /*add_special_tokens=*/false);
}

bool Model::reads_images() const {
  return dynamic_cast<const qwen_vl::Model*>(lm_.get()) != nullptr;
}

std::unique_ptr<generate::LanguageModel> Model::bind(const qwen_vl::Prompt& prompt) const {
  const auto* vl = dynamic_cast<const qwen_vl::Model*>(lm_.get());
  if (!vl)
    fail<InvalidArgument>("{}: the model ({}) reads no images", dir_.string(),
                          lm_->info().model_type);
  return vl->bind(prompt);
}

qwen_vl::Prompt Model::encode_with_images(std::string_view text,
                                          std::span<const fs::path> images) const {
  if (!reads_images())
    fail<InvalidArgument>("{}: the model ({}) reads no images", dir_.string(),
                          lm_->info().model_type);
  const auto& tok = need_tokenizer();
  // ref: transformers Qwen2_5_VLProcessor.__call__: each <|image_pad|> becomes
  // grid_t * grid_h * grid_w / merge_size^2 of them.
  constexpr std::string_view kImagePad = "<|image_pad|>";
  const auto pad = tok.token_to_id(kImagePad);
  if (!pad) fail<FormatError>("{}: the tokenizer has no {} token", dir_.string(), kImagePad);
  auto ids = encode(text, /*add_special_tokens=*/false);
  const auto pads = std::count(ids.begin(), ids.end(), static_cast<int>(*pad));
  if (pads != static_cast<std::ptrdiff_t>(images.size()))
    fail<InvalidArgument>("{}: the prompt has {} image placeholders ({}) for {} images",
                          dir_.string(), pads, kImagePad, images.size());
  qwen_vl::Prompt out;
  if (images.empty()) {
    out.ids = std::move(ids);
    return out;
  }
  const auto config = dir_ / "preprocessor_config.json";
  if (!fs::exists(config))
    fail<IoError>("{}: no preprocessor_config.json (the image processor's settings)",
                  dir_.string());
  const auto options = vision::Qwen2VLProcessorOptions::load(config);
  std::vector<vision::Image> loaded;
  loaded.reserve(images.size());
  for (const auto& p : images) loaded.push_back(vision::load_image(p));
  auto processed = vision::qwen2_vl_process_images(loaded, options);
  qwen_vl::Images media{.pixel_values = processed.pixel_values, .grids = {}};
  const auto merge = static_cast<std::int64_t>(options.merge_size) * options.merge_size;
  std::size_t next = 0;
  for (int id : ids) {
    if (id != static_cast<int>(*pad)) {
      out.ids.push_back(id);
      continue;
    }
    const auto& g = processed.image_grid_thw[next++];
    media.grids.push_back(
        {.t = static_cast<int>(g[0]), .h = static_cast<int>(g[1]), .w = static_cast<int>(g[2])});
    out.ids.insert(out.ids.end(), static_cast<std::size_t>(g[0] * g[1] * g[2] / merge), id);
  }
  out.images = std::move(media);
  return out;
}

qwen_vl::Prompt Model::encode_chat_with_media(const nlohmann::ordered_json& messages,
                                              const text::RenderOptions& options) const {
  if (!chat_template_) fail<InvalidArgument>("{}: the model has no chat template", dir_.string());
  const auto images = image_parts(messages);
  return encode_with_images(chat_template_->render(messages, options), images);
}

std::string Model::decode(const std::vector<int>& ids, bool skip_special_tokens) const {
  std::vector<text::TokenId> t(ids.begin(), ids.end());
  return need_tokenizer().decode(t, skip_special_tokens);
}

Model load_model(const fs::path& path, const ModelOptions& options) {
  register_builtin_families();
  const auto dir = resolve_gguf(path);
  std::optional<io::ScopedLoadProgress> progress;
  if (options.progress) progress.emplace(options.progress);
  if (is_gguf(dir)) return Model(generate::load_gguf_model(dir, {.dtype = options.dtype}), dir);
  if (!fs::is_directory(dir))
    fail<IoError>("{}: no such model directory or .gguf file", dir.string());
  return Model(generate::load_model(dir, {.dtype = options.dtype}), dir);
}

generate::TokenStream generate_tokens(const Model& model, generate::PromptCache& cache,
                                      generate::GenerateParams params, std::vector<int> prompt) {
  if (!params.tokenizer) params.tokenizer = model.tokenizer();
  return generate::TokenStream(
      generate::Generator(model.lm(), cache, std::move(prompt), std::move(params)));
}

generate::TextStream generate_text(const Model& model, generate::PromptCache& cache,
                                   generate::GenerateParams params, std::vector<int> prompt) {
  if (!params.tokenizer) params.tokenizer = model.tokenizer();
  if (!params.tokenizer)
    fail<InvalidArgument>("{}: generate_text needs a tokenizer.json", model.dir().string());
  return generate::TextStream(
      generate::Generator(model.lm(), cache, std::move(prompt), std::move(params)));
}

}  // namespace ominix
