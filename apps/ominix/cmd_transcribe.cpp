// ominix transcribe: speech recognition over audio files with any ASR family load_asr knows
// (picked from the model directory's config.yaml), in batches; long files are cut and joined.
#include <cstdio>
#include <exception>
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
#include "ominix/base/error.h"

namespace ominix::cli {

namespace {
struct TranscribeOptions {
  std::string model;
  std::vector<std::string> files;
  std::string format = "text";
  int batch = 1;
  std::optional<double> chunk_seconds;
};

// Runs f; "" when it succeeds, else what went wrong (any failure: one file must not stop the rest).
template <typename F>
std::string attempt(F&& f) {
  try {
    f();
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

// One file's JSON entry: the same keys, in this order, for every file (docs/models/paraformer.md,
// "JSON output"): a transcribed file has "error": null, a failed one null text and numbers.
nlohmann::ordered_json entry(const std::string& file, const AsrResult* r,
                             const std::string& error) {
  nlohmann::ordered_json e;
  e["file"] = file;
  if (r) {
    e["text"] = r->text;
    e["duration"] = r->audio_seconds;
    e["rtf"] = r->audio_seconds > 0 ? r->compute_seconds / r->audio_seconds : 0.0;
    e["chunks"] = r->chunks;
    e["error"] = nullptr;
  } else {
    e["text"] = nullptr;
    e["duration"] = nullptr;
    e["rtf"] = nullptr;
    e["chunks"] = nullptr;
    e["error"] = error;
  }
  return e;
}
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
    const bool json = o->format == "json";
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    std::size_t failed = 0;
    // One file's outcome, in the order of the command line: text mode prints it now (a failure to
    // stderr, naming the file), JSON mode adds its entry (every key always present).
    auto report = [&](const std::string& file, const AsrResult* r, const std::string& error) {
      if (!r) ++failed;
      if (json) {
        out.push_back(entry(file, r, error));
      } else if (r) {
        fmt::print("{}\t{}\n", file, r->text);
        std::fflush(stdout);
      } else {
        // Messages name their file already ("a.wav: not a readable audio file..."); others get it.
        fmt::print(stderr, "error: {}{}\n", error.starts_with(file + ":") ? "" : file + ": ",
                   error);
      }
    };
    const auto batch = static_cast<std::size_t>(o->batch);
    for (std::size_t i = 0; i < o->files.size(); i += batch) {
      const std::size_t end = std::min(o->files.size(), i + batch);
      // Decode the group's files; one that fails is reported and the others go on.
      std::vector<std::optional<mlx::core::array>> samples(end - i);
      std::vector<std::string> errors(end - i);
      for (std::size_t k = i; k < end; ++k)
        errors[k - i] = attempt([&] {
          samples[k - i] =
              audio::load_audio(o->files[k], {.sample_rate = asr->sample_rate()}).samples;
        });
      std::vector<std::size_t> good;
      std::vector<mlx::core::array> inputs;
      for (std::size_t k = i; k < end; ++k)
        if (samples[k - i]) good.push_back(k), inputs.push_back(*samples[k - i]);
      std::vector<std::optional<AsrResult>> results(end - i);
      std::string batch_error = attempt([&] {
        if (inputs.empty()) return;
        auto r = asr->transcribe(inputs, options);
        for (std::size_t g = 0; g < good.size(); ++g) results[good[g] - i] = std::move(r.at(g));
      });
      if (!batch_error.empty() && good.size() > 1) {  // find which file it was: one at a time
        for (const auto k : good)
          errors[k - i] = attempt([&] {
            results[k - i] = std::move(asr->transcribe({*samples[k - i]}, options).at(0));
          });
      } else if (!batch_error.empty()) {
        errors[good.at(0) - i] = batch_error;
      }
      for (std::size_t k = i; k < end; ++k)
        report(o->files[k], results[k - i] ? &*results[k - i] : nullptr, errors[k - i]);
    }
    if (json) fmt::print("{}\n", out.dump(2));
    if (failed)
      fail<Error>("{} of {} file(s) could not be transcribed{}", failed, o->files.size(),
                  json ? " (their entries carry \"error\")" : " (see above)");
  });
}

}  // namespace ominix::cli
