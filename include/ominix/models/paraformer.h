// Paraformer (FunASR): SAN-M encoder, CIF predictor, non-autoregressive SAN-M decoder, from
// FunASR's released layout (model.pt or model.safetensors, config.yaml, am.mvn, tokens.json).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <mlx/array.h>

#include "ominix/audio/chunk.h"

namespace ominix::paraformer {

namespace mx = mlx::core;

struct Model;  // defined in models/paraformer/paraformer.cpp
struct ModelDeleter {
  void operator()(Model* m) const;
};
using ModelPtr = std::unique_ptr<Model, ModelDeleter>;

/// Loads config.yaml, am.mvn and model.safetensors (else model.pt) from `dir`. ConfigError for
/// unsupported settings, WeightError naming missing or mis-shaped tensors.
ModelPtr load_model(const std::filesystem::path& dir);

/// The model's sample rate (frontend_conf.fs).
int sample_rate(const Model& model);
/// The number of token ids the decoder scores (decoder.output_layer's rows); tokens.json must
/// name at least these.
int vocab_size(const Model& model);

/// tokens.json: id -> token text, and FunASR's sentence_postprocess to join them.
class Vocabulary {
 public:
  static Vocabulary load(const std::filesystem::path& tokens_json);
  explicit Vocabulary(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}
  const std::string& token(int id) const;
  std::size_t size() const { return tokens_.size(); }
  /// Tokens joined as funasr's sentence_postprocess does: Chinese characters without spaces,
  /// "@@" BPE pieces glued to the next piece, words separated by one space, spelled-out letters
  /// ("a b c") as one upper-case abbreviation ("ABC", abbr_dispose).
  std::string text(const std::vector<int>& ids) const;

 private:
  std::vector<std::string> tokens_;
};

/// funasr's abbr_dispose on sentence_postprocess's word list (words and " " separators): each run
/// of single ASCII letters separated by " " becomes one upper-case word.
std::vector<std::string> abbr_dispose(const std::vector<std::string>& words);

/// The stages, for parity tests. Shapes: B batch, T LFR frames, D model width, N tokens, V vocab.
struct EncoderOutput {
  mx::array out;   ///< float32 [B, T, D]
  mx::array lens;  ///< int32 [B]
};
struct CifOutput {
  mx::array acoustic_embeds;  ///< float32 [B, N, D]
  mx::array token_num;        ///< int32 [B]
  mx::array alphas;           ///< float32 [B, T (+1 with a tail threshold)]
  mx::array peaks;            ///< float32 [B, T (+1)]: integrated weight, >= 1 where it fired
};
/// Features [B, T, lfr_m * n_mels] (after LFR and CMVN) with lengths int32 [B].
EncoderOutput encode(const Model& model, const mx::array& feats, const mx::array& lens);
CifOutput predict(const Model& model, const EncoderOutput& enc);
/// Log-probabilities float32 [B, N, V].
mx::array decode(const Model& model, const EncoderOutput& enc, const CifOutput& cif);
/// fbank -> LFR -> CMVN of float samples [T] at the model's rate: float32 [frames, lfr_m * n_mels].
mx::array features(const Model& model, const mx::array& samples);

struct Transcript {
  std::string text;
  std::vector<int> tokens;
  std::vector<double> token_times;  ///< seconds from the start: the CIF frame where each fired
  double audio_seconds = 0;
  double compute_seconds = 0;  ///< the call's wall time shared by its inputs by length
  int chunks = 1;              ///< pieces the audio was cut into
};

struct TranscribeOptions {
  /// Audio longer than chunking.max_seconds is cut (at pauses, else with overlaps) and the
  /// pieces' tokens joined by audio::merge_chunks. The default 20 s stays within the utterance
  /// lengths Paraformer-large was trained on, about 20-30 s (FunASR's fsmn-vad segments are at
  /// most 60 s by default; its CLI asks for 30 s with SenseVoice).
  audio::ChunkOptions chunking{};
  audio::MergeOptions merging{};
  int batch_size = 0;  ///< chunks per forward pass (padded batch); 0: all at once
};

/// Transcribes float samples [T] at the model's sample rate.
Transcript transcribe(const Model& model, const mx::array& samples, const Vocabulary& vocab,
                      const TranscribeOptions& options = {});
/// Transcribes several inputs: their chunks run as padded batches of options.batch_size.
std::vector<Transcript> transcribe_batch(const Model& model, const std::vector<mx::array>& samples,
                                         const Vocabulary& vocab,
                                         const TranscribeOptions& options = {});

}  // namespace ominix::paraformer
