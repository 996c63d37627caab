// load_asr: the ASR families by config.yaml's `model:` value, each behind a small adapter.
#include "ominix/asr.h"

#include <map>

#include <yaml-cpp/yaml.h>

#include "ominix/base/error.h"
#include "ominix/models/funasr_nano.h"
#include "ominix/models/paraformer.h"

namespace ominix {

namespace fs = std::filesystem;

namespace {

class ParaformerAsr final : public AsrModel {
 public:
  explicit ParaformerAsr(const fs::path& dir)
      : model_(paraformer::load_model(dir)),
        vocab_(paraformer::Vocabulary::load(dir / "tokens.json")) {}
  std::string family() const override { return "Paraformer"; }
  int sample_rate() const override { return paraformer::sample_rate(*model_); }
  std::vector<AsrResult> transcribe(const std::vector<mlx::core::array>& samples,
                                    const AsrOptions& options) const override {
    std::vector<AsrResult> out;
    for (auto& t : paraformer::transcribe_batch(
             *model_, samples, vocab_,
             {.chunking = options.chunking.value_or(paraformer::TranscribeOptions{}.chunking),
             .batch_size = options.batch_size}))
      out.push_back({.text = std::move(t.text),
                     .tokens = std::move(t.tokens),
                     .token_times = std::move(t.token_times),
                     .audio_seconds = t.audio_seconds,
                     .compute_seconds = t.compute_seconds,
                     .chunks = t.chunks});
    return out;
  }

 private:
  paraformer::ModelPtr model_;
  paraformer::Vocabulary vocab_;
};

class FunAsrNanoAsr final : public AsrModel {
 public:
  explicit FunAsrNanoAsr(const fs::path& dir) : model_(funasr_nano::load_model(dir)) {}
  std::string family() const override { return "FunASRNano"; }
  int sample_rate() const override { return funasr_nano::sample_rate(*model_); }
  std::vector<AsrResult> transcribe(const std::vector<mlx::core::array>& samples,
                                    const AsrOptions& options) const override {
    std::vector<AsrResult> out;  // one input at a time: the LLM decodes without batching
    for (const auto& s : samples) {
      auto t = funasr_nano::transcribe(
          *model_, s,
          {.chunking = options.chunking.value_or(funasr_nano::TranscribeOptions{}.chunking)});
      out.push_back({.text = std::move(t.text),
                     .tokens = std::move(t.tokens),
                     .token_times = {},
                     .audio_seconds = t.audio_seconds,
                     .compute_seconds = t.compute_seconds,
                     .chunks = t.chunks});
    }
    return out;
  }

 private:
  funasr_nano::ModelPtr model_;
};

template <typename Adapter>
std::unique_ptr<AsrModel> make(const fs::path& dir) {
  return std::make_unique<Adapter>(dir);
}

using AsrLoader = std::unique_ptr<AsrModel> (*)(const fs::path&);

// config.yaml `model:` -> loader. A new family is one line here (and its adapter above).
const std::map<std::string, AsrLoader>& registry() {
  static const std::map<std::string, AsrLoader> table = {
      {"FunASRNano", &make<FunAsrNanoAsr>},
      {"Paraformer", &make<ParaformerAsr>},
  };
  return table;
}

}  // namespace

std::vector<std::string> asr_families() {
  std::vector<std::string> out;
  for (const auto& [name, _] : registry()) out.push_back(name);
  return out;
}

std::unique_ptr<AsrModel> load_asr(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail<IoError>("{}: no such model directory", dir.string());
  const auto config = dir / "config.yaml";
  if (!fs::exists(config))
    fail<IoError>(
        "{}: no config.yaml (a FunASR model directory has config.yaml, am.mvn, "
        "tokens.json and model.pt or model.safetensors)",
        dir.string());
  std::string name;
  try {
    const auto y = YAML::LoadFile(config.string());
    if (!y.IsMap() || !y["model"] || !y["model"].IsScalar())
      fail<ConfigError>("{}: no `model:` naming the model family", config.string());
    name = y["model"].as<std::string>();
  } catch (const YAML::BadFile&) {
    fail<IoError>("{}: cannot open", config.string());
  } catch (const YAML::Exception& e) {
    fail<FormatError>("{}: {}", config.string(), e.what());
  }
  const auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : asr_families()) known += (known.empty() ? "" : ", ") + n;
    fail<UnsupportedError>("{}: model '{}' is not a supported speech recognition family ({})",
                           config.string(), name, known);
  }
  return it->second(dir);
}

}  // namespace ominix
