// The umbrella library: load_model over the built-in families, tokenizer and chat template.
#include "ominix/ominix.h"

#include <fstream>

#include "ominix/io/gguf.h"
#include "ominix/models/gemma3.h"
#include "ominix/models/glm4.h"
#include "ominix/models/mixtral.h"
#include "ominix/models/qwen3.h"
#include "ominix/models/qwen_vl.h"
#include "ominix/text/gguf_tokenizer.h"

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
  if (!fs::exists(dir))
    fail<IoError>("{}: no such model directory or .gguf file", dir.string());
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
  return encode(chat_template_->render(messages, options), /*add_special_tokens=*/false);
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
