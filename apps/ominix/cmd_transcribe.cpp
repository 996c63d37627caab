// ominix transcribe: speech recognition over audio files with any ASR family load_asr knows
// (picked from the model directory's config.yaml), in batches; long files are cut and joined.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "ominix/asr.h"
#include "ominix/audio/io.h"
#include "ominix/base/device.h"

namespace ominix::cli {

namespace {
struct TranscribeOptions {
  std::string model;
  std::vector<std::string> files;
  std::string format = "text";
  int batch = 1;
  std::optional<double> chunk_seconds;
};
}  // namespace

void add_transcribe(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "transcribe",
      fmt::format("Transcribe audio files ({}; FunASR layout)", fmt::join(asr_families(), ", ")));
  auto o = std::make_shared<TranscribeOptions>();
  cmd->add_option("--model", o->model,
                  "model directory (config.yaml naming the family, and its files)")
      ->required();
  cmd->add_option("files", o->files, "audio files (WAV, FLAC, Ogg)")->required();
  cmd->add_option("--format", o->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--batch", o->batch, "files (or chunks of long files) per forward pass")
      ->check(CLI::PositiveNumber);
  cmd->add_option(
         "--chunk-seconds", o->chunk_seconds,
         "longest piece of audio per pass (default: the family's, Paraformer 20 s); longer "
         "files are cut at pauses or with overlaps")
      ->check(CLI::Range(0.5, 3600.0));
  cmd->callback([&global, o] {
    set_device(parse_device_kind(global.device));
    const auto asr = load_asr(o->model);
    AsrOptions options{.batch_size = o->batch};
    if (o->chunk_seconds) options.chunking = audio::chunk_options(*o->chunk_seconds);
    nlohmann::json out = nlohmann::json::array();
    const auto batch = static_cast<std::size_t>(o->batch);
    for (std::size_t i = 0; i < o->files.size(); i += batch) {
      std::vector<mlx::core::array> samples;
      const std::size_t end = std::min(o->files.size(), i + batch);
      for (std::size_t k = i; k < end; ++k)
        samples.push_back(
            audio::load_audio(o->files[k], {.sample_rate = asr->sample_rate()}).samples);
      const auto results = asr->transcribe(samples, options);
      for (std::size_t k = i; k < end; ++k) {
        const auto& r = results[k - i];
        if (o->format == "json")
          out.push_back({{"file", o->files[k]},
                         {"text", r.text},
                         {"duration", r.audio_seconds},
                         {"rtf", r.audio_seconds > 0 ? r.compute_seconds / r.audio_seconds : 0.0},
                         {"chunks", r.chunks}});
        else
          fmt::print("{}\t{}\n", o->files[k], r.text);
      }
    }
    if (o->format == "json") fmt::print("{}\n", out.dump(2));
  });
}

}  // namespace ominix::cli
