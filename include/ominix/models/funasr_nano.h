// Fun-ASR-Nano (FunASR's FunASRNano): a SenseVoice SAN-M audio encoder, a Transformer audio
// adaptor and a Qwen3 LLM that writes the transcript after a ChatML speech prompt, from FunASR's
// released layout (config.yaml, model.pt or model.safetensors, Qwen3-0.6B/ with the LLM's
// config.json and tokenizer).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <mlx/array.h>

#include "ominix/audio/chunk.h"

namespace ominix::funasr_nano {

namespace mx = mlx::core;

struct Model;  // defined in models/funasr_nano/funasr_nano.cpp
struct ModelDeleter {
  void operator()(Model* m) const;
};
using ModelPtr = std::unique_ptr<Model, ModelDeleter>;

/// Loads config.yaml, the LLM's config.json and tokenizer (the directories llm_conf and
/// tokenizer_conf name), am.mvn when present, and model.safetensors (else model.pt). Errors name
/// the file, field or tensor (ConfigError, UnsupportedError, WeightError, IoError).
ModelPtr load_model(const std::filesystem::path& dir);

/// The model's sample rate (frontend_conf.fs).
int sample_rate(const Model& model);

/// What to ask for: FunASRNano.get_prompt's hotwords, language and itn.
struct TranscribeOptions {
  std::vector<std::string> hotwords;
  std::string language;      ///< empty: any ("语音转写：")
  bool itn = true;           ///< false asks for text without normalisation
  int max_new_tokens = 512;  ///< per chunk
  /// Longer audio is cut at pauses (core's chunk planner, as funasr cuts with a VAD) into pieces
  /// transcribed one by one, their texts joined by a space as funasr joins VAD segments. Without
  /// a pause the pieces abut: overlap_seconds is not used (no token times to align an overlap).
  audio::ChunkOptions chunking = audio::chunk_options(30.0);
};

struct Transcript {
  std::string text;         ///< whitespace runs collapsed, "/sil" removed, as funasr returns it
  std::vector<int> tokens;  ///< the generated ids (with the closing EOS id when one was generated)
  double audio_seconds = 0;
  double compute_seconds = 0;
  int chunks = 1;
};

/// Transcribes float samples [T] (mono, at sample_rate(model)) by greedy decoding, in chunks when
/// longer than options.chunking.max_seconds.
Transcript transcribe(const Model& model, const mx::array& samples,
                      const TranscribeOptions& options = {});

// ---- The stages, for parity tests. T LFR frames, D encoder width, E the LLM's hidden size. ----

/// fbank -> LFR (-> CMVN with am.mvn) of samples [T]: float32 [frames, n_mels * lfr_m].
mx::array features(const Model& model, const mx::array& samples);
/// Encoder: features [B, T, n_mels * lfr_m], lengths int32 [B] -> float32 [B, T, D].
mx::array encode(const Model& model, const mx::array& feats, const mx::array& lens);
/// Adaptor: encoder output [B, T, D], lengths [B] -> [B, ceil(T / downsample_rate), E].
mx::array adapt(const Model& model, const mx::array& encoder_out, const mx::array& lens);

/// The LLM prompt of one utterance.
struct Prompt {
  std::vector<int> ids;   ///< token ids, the speech slots holding id 0
  int speech_begin = 0;   ///< first speech slot
  int speech_length = 0;  ///< slots (fake_token_len)
  mx::array embeddings;   ///< float32 [1, L, E]: the ids' embeddings, the slots overwritten by
                          ///< the adaptor's frames
};
/// The ChatML prompt around an utterance of `feature_frames` LFR frames, with the adaptor's output
/// [1, T', E] spliced into its speech slots.
Prompt build_prompt(const Model& model, int feature_frames, const mx::array& adaptor_out,
                    const TranscribeOptions& options = {});
/// The LLM's logits over a whole prompt, float32 [1, L, vocab] (no cache kept).
mx::array prompt_logits(const Model& model, const Prompt& prompt);

}  // namespace ominix::funasr_nano
