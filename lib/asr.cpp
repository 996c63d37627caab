// load_asr: the ASR families by config.yaml's `model:` value, each behind a small adapter.
#include "ominix/asr.h"

#include <exception>
#include <filesystem>
#include <map>
#include <new>
#include <string>
#include <system_error>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "ominix/base/error.h"
#include "ominix/models/funasr_nano.h"
#include "ominix/models/paraformer.h"

namespace ominix {

namespace fs = std::filesystem;

namespace {

// Runs f, letting an ominix::Error through and turning anything else (a filesystem, MLX or
// library exception the checks did not foresee) into one that says what was being done, so that a
// caller catching ominix::Error is never bypassed.
template <typename F>
auto guarded(F&& f, const std::string& doing) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::filesystem::filesystem_error& e) {
    fail<IoError>("{}: {}", doing, e.what());
  } catch (const std::bad_alloc&) {
    fail<Error>("{}: out of memory", doing);
  } catch (const std::exception& e) {
    fail<Error>("{}: {}", doing, e.what());
  }
}

class ParaformerAsr final : public AsrModel {
 public:
  explicit ParaformerAsr(const fs::path& dir)
      : model_(paraformer::load_model(dir)),
        vocab_(paraformer::Vocabulary::load(dir / "tokens.json")) {
    // An id the decoder can give must have a token: else the first transcript fails on it.
    if (vocab_.size() < static_cast<std::size_t>(paraformer::vocab_size(*model_)))
      fail<FormatError>("{}: {} tokens, fewer than the {} ids the model scores",
                        (dir / "tokens.json").string(), vocab_.size(),
                        paraformer::vocab_size(*model_));
  }
  std::string family() const override { return "Paraformer"; }
  int sample_rate() const override { return paraformer::sample_rate(*model_); }
  std::vector<AsrResult> transcribe(const std::vector<mlx::core::array>& samples,
                                    const AsrOptions& options) const override {
    std::vector<AsrResult> out;
    const auto transcripts = guarded(
        [&] {
          return paraformer::transcribe_batch(
              *model_, samples, vocab_,
              {.chunking = options.chunking.value_or(paraformer::TranscribeOptions{}.chunking),
               .batch_size = options.batch_size});
        },
        "Paraformer: transcription failed");
    for (auto t : transcripts)
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
      auto t = guarded(
          [&] {
            return funasr_nano::transcribe(
                *model_, s,
                {.chunking = options.chunking.value_or(funasr_nano::TranscribeOptions{}.chunking)});
          },
          "FunASRNano: transcription failed");
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
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail<IoError>("{}: no such model directory", dir.string());
  if (!fs::is_directory(dir, ec))
    fail<IoError>("{}: not a model directory (a FunASR model is a directory with config.yaml)",
                  dir.string());
  const auto config = dir / "config.yaml";
  if (!fs::exists(config, ec))
    fail<IoError>(
        "{}: no config.yaml (a FunASR model directory has config.yaml, am.mvn, "
        "tokens.json and model.pt or model.safetensors)",
        dir.string());
  if (!fs::is_regular_file(config, ec))
    fail<IoError>("{}: not a regular file (a directory?)", config.string());
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
  return guarded([&] { return it->second(dir); },
                 fmt::format("{}: cannot load the {} model", dir.string(), name));
}

}  // namespace ominix
