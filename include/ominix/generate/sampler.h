// Token selection as a chain of small steps, in mlx-lm's order and semantics
// (mlx_lm/sample_utils.py, 0.32.2): logits processors (logit bias, repetition, presence and
// frequency penalties) on the raw logits, then the sampler: argmax at temperature 0, otherwise
// top-p, min-p and top-k filters on the log-probabilities and a categorical draw at the
// temperature from a seeded key. docs/generate.md compares this with transformers' order.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include <mlx/array.h>

namespace ominix::generate {

namespace mx = mlx::core;

// ----------------------------------------------------------------------------------------------
// Logits processors: (tokens so far [T] int, logits [B, V] or [V]) -> logits of the same shape.

/// One processing step; `tokens` is the whole history (prompt and generated), 1-D integer.
using LogitsProcessor = std::function<mx::array(const mx::array& tokens, const mx::array& logits)>;

/// Which tokens the presence and frequency penalties count.
enum class PenaltyScope {
  history,    ///< prompt and generated tokens (mlx-lm's make_logits_processors)
  generated,  ///< generated tokens only (OpenAI's and vLLM's presence/frequency penalties)
};

/// The processors make_logits_processors builds. A context size limits a penalty to the last
/// that many tokens (nullopt: the whole history, as transformers' repetition penalty does).
struct LogitsOptions {
  std::map<int, float> logit_bias;  ///< token id -> added to its logit
  float repetition_penalty = 1.0f;  ///< > 0; 1 (or 0, as mlx-lm) is off
  std::optional<int> repetition_context_size = 20;
  float presence_penalty = 0.0f;  ///< subtracted once from every token present; 0 is off
  std::optional<int> presence_context_size = 20;
  float frequency_penalty = 0.0f;  ///< subtracted once per occurrence; 0 is off
  std::optional<int> frequency_context_size = 20;
  /// generated with nullopt context sizes is OpenAI's semantics: logit[j] -= presence * (c[j] > 0)
  /// + frequency * c[j], c[j] the count of j among the tokens generated so far.
  PenaltyScope penalty_scope = PenaltyScope::history;
};

/// The processors that `options` turns on, in mlx-lm's order: logit bias, repetition, presence,
/// frequency. `prompt_tokens` is the length of the prompt at the head of the history the
/// processors receive (used by PenaltyScope::generated). InvalidArgument on a negative
/// repetition penalty or context size.
std::vector<LogitsProcessor> make_logits_processors(const LogitsOptions& options,
                                                    int prompt_tokens = 0);

/// Applies processors in turn.
mx::array apply_logits_processors(const std::vector<LogitsProcessor>& processors,
                                  const mx::array& tokens, const mx::array& logits);

/// The last n entries of a 1-D token array (all of them when n is nullopt or >= its length).
mx::array last_tokens(const mx::array& tokens, std::optional<int> n);

/// logits[..., id] += bias for each entry of `bias`.
mx::array apply_logit_bias(const mx::array& logits, const std::map<int, float>& bias);

/// CTRL's repetition penalty (as transformers and mlx-lm): the logit x of every token in `tokens`
/// becomes x * penalty if x < 0, else x / penalty; a repeated token is penalised once.
mx::array apply_repetition_penalty(const mx::array& logits, const mx::array& tokens, float penalty);

/// OpenAI's presence penalty: subtracts `penalty` once from each token that occurs in `tokens`.
mx::array apply_presence_penalty(const mx::array& logits, const mx::array& tokens, float penalty);

/// OpenAI's frequency penalty: subtracts `penalty` times the count of each token in `tokens`.
mx::array apply_frequency_penalty(const mx::array& logits, const mx::array& tokens, float penalty);

// ----------------------------------------------------------------------------------------------
// Sampling filters: x [..., V] log-probabilities (or logits: each step is shift-invariant) ->
// x with removed tokens set to -inf. Ties at the cut are kept.

/// log_softmax over the last axis: logits - logsumexp(logits), computed in float32.
mx::array log_softmax(const mx::array& logits);

/// Keeps the k largest (and any tied with the k-th); k <= 0 or k >= V keeps everything.
mx::array apply_top_k(const mx::array& x, int k);

/// Nucleus filter: keeps the most probable tokens whose mass reaches top_p (the smallest such
/// set) and at least min_tokens_to_keep; top_p outside (0, 1) keeps everything.
mx::array apply_top_p(const mx::array& x, float top_p, int min_tokens_to_keep = 1);

/// Keeps tokens with probability >= min_p * (top probability), and at least min_tokens_to_keep.
mx::array apply_min_p(const mx::array& x, float min_p, int min_tokens_to_keep = 1);

// ----------------------------------------------------------------------------------------------
// Sampler.

/// Where the temperature goes and in which order the filters run.
enum class SamplingOrder {
  /// mlx-lm: top-p, min-p, top-k on the untempered log-probs; temperature in the draw.
  mlx_lm,
  /// transformers: temperature first, then top-k, top-p, min-p on the tempered logits.
  transformers,
};

/// Sampler settings; a filter at its default value is off.
struct SamplerOptions {
  float temperature = 0.0f;  ///< 0: greedy (argmax), the filters are then ignored
  int top_k = 0;             ///< 0: off
  float top_p = 1.0f;        ///< (0, 1) turns it on
  float min_p = 0.0f;        ///< (0, 1] turns it on
  int min_tokens_to_keep = 1;
  std::optional<std::uint64_t> seed;  ///< nullopt: seeded from std::random_device
  SamplingOrder order = SamplingOrder::mlx_lm;
};

/// Picks token ids from log-probabilities. Stateful: each draw advances its random key, so a seed
/// gives a reproducible sequence.
class Sampler {
 public:
  /// InvalidArgument on out-of-range options.
  explicit Sampler(const SamplerOptions& options = {});

  /// logprobs [..., V] (float) -> token ids [...] (uint32).
  mx::array operator()(const mx::array& logprobs);
  /// The logits the draw uses: filters applied (and, in transformers order, the temperature);
  /// removed tokens are -inf. Identity for a greedy sampler.
  mx::array filter(const mx::array& logprobs) const;

  bool greedy() const { return options_.temperature == 0.0f; }
  const SamplerOptions& options() const { return options_; }

 private:
  SamplerOptions options_;
  std::vector<std::function<mx::array(const mx::array&)>> steps_;
  mx::array key_;
};

}  // namespace ominix::generate
