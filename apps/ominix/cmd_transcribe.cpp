// ominix transcribe: Paraformer speech recognition over audio files, in batches.
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "ominix/audio/io.h"
#include "ominix/base/device.h"
#include "ominix/models/paraformer.h"

namespace ominix::cli {

namespace {
struct TranscribeOptions {
  std::string model;
  std::vector<std::string> files;
  std::string format = "text";
  int batch = 1;
};
}  // namespace

void add_transcribe(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("transcribe", "Transcribe audio files with a Paraformer model");
  auto o = std::make_shared<TranscribeOptions>();
  cmd->add_option("--model", o->model,
                  "model directory (config.yaml, am.mvn, tokens.json, model.pt)")
      ->required();
  cmd->add_option("files", o->files, "audio files (WAV, FLAC, Ogg)")->required();
  cmd->add_option("--format", o->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--batch", o->batch, "files per batch")->check(CLI::PositiveNumber);
  cmd->callback([&global, o] {
    set_device(parse_device_kind(global.device));
    const std::filesystem::path dir(o->model);
    auto model = paraformer::load_model(dir);
    auto vocab = paraformer::Vocabulary::load(dir / "tokens.json");
    const int fs = paraformer::sample_rate(*model);
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < o->files.size(); i += static_cast<std::size_t>(o->batch)) {
      std::vector<mlx::core::array> samples;
      const std::size_t end = std::min(o->files.size(), i + static_cast<std::size_t>(o->batch));
      for (std::size_t k = i; k < end; ++k)
        samples.push_back(audio::load_audio(o->files[k], {.sample_rate = fs}).samples);
      auto results = paraformer::transcribe_batch(*model, samples, vocab);
      for (std::size_t k = i; k < end; ++k) {
        const auto& r = results[k - i];
        if (o->format == "json")
          out.push_back({{"file", o->files[k]},
                         {"text", r.text},
                         {"duration", r.audio_seconds},
                         {"rtf", r.audio_seconds > 0 ? r.compute_seconds / r.audio_seconds : 0.0}});
        else
          fmt::print("{}\t{}\n", o->files[k], r.text);
      }
    }
    if (o->format == "json") fmt::print("{}\n", out.dump(2));
  });
}

}  // namespace ominix::cli
