// Speech recognition over any built-in ASR family, picked from the model directory:
//
//   auto asr = ominix::load_asr(dir);   // config.yaml's `model:` (FunASR layout) names the family
//   auto wav = ominix::audio::load_audio("talk.wav", {.sample_rate = asr->sample_rate()});
//   auto results = asr->transcribe({wav.samples});   // long audio is cut and joined
//
// Link ominix::all. A family joins by one line in lib/asr.cpp's table (and its adapter there).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <mlx/array.h>

#include "ominix/audio/chunk.h"

namespace ominix {

struct AsrOptions {
  int batch_size = 1;  ///< chunks per forward pass; 0: all at once
  /// How audio longer than chunking->max_seconds is cut; nullopt: the family's default
  /// (Paraformer 20 s, FunASR-Nano 30 s).
  std::optional<audio::ChunkOptions> chunking;
};

struct AsrResult {
  std::string text;
  std::vector<int> tokens;
  std::vector<double> token_times;  ///< seconds from the start (empty where a family has none)
  double audio_seconds = 0;
  double compute_seconds = 0;  ///< wall time of the call, shared by the inputs by length
  int chunks = 1;
};

/// A loaded speech recognition model.
class AsrModel {
 public:
  virtual ~AsrModel() = default;
  /// The family's name as config.yaml spells it (e.g. "Paraformer").
  virtual std::string family() const = 0;
  /// The sample rate the model takes; resample to it when loading audio.
  virtual int sample_rate() const = 0;
  /// Transcribes float32 samples [T] at sample_rate(), one result per input. Audio in which
  /// nothing is heard gives an empty text (Paraformer: a clip too short for a token, or no
  /// samples, as funasr; FunASR-Nano needs at least 2 samples). Throws only ominix::Error
  /// (InvalidArgument for a bad shape; anything unforeseen says which family failed); one bad
  /// input fails the call, so transcribe inputs apart to keep the others' results.
  virtual std::vector<AsrResult> transcribe(const std::vector<mlx::core::array>& samples,
                                            const AsrOptions& options = {}) const = 0;
};

/// The families load_asr knows, by config.yaml `model:` value.
std::vector<std::string> asr_families();

/// Loads the model in dir. IoError for a missing directory or config.yaml, FormatError for
/// unparsable YAML, UnsupportedError naming config.yaml's `model:` when no family takes it, and
/// the family's own errors (ConfigError, WeightError) for what it reads. Only ominix::Error
/// escapes: anything else (a filesystem or MLX exception) becomes one naming dir and the family.
std::unique_ptr<AsrModel> load_asr(const std::filesystem::path& dir);

}  // namespace ominix
