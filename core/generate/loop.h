// Pieces shared by the plain and the speculative decoding loops (private to core).
#pragma once

#include <map>
#include <optional>
#include <span>
#include <vector>

#include <mlx/array.h>
#include <mlx/stream.h>

#include "ominix/generate/generate.h"

namespace ominix::generate::detail {

/// The current thread's generation stream on the default device (created once per device).
mx::Stream generation_stream();

/// ids as a [1, L] int32 batch.
mx::array as_tokens(std::span<const int> ids);

/// logits [1, L, V] -> the last position's logits [1, V].
mx::array last_logits(const mx::array& logits);

/// Trims `cache` to its common prefix with prompt[:-1] (the last prompt token is always fed, so
/// that it yields logits); returns the number of tokens kept.
int reuse_prefix(PromptCache& cache, std::span<const int> prompt);

/// Feeds ids through the model in chunks of `step` tokens, evaluating the cache after each chunk.
void prefill(const LanguageModel& model, PromptCache& cache, std::span<const int> ids, int step);

/// Logits -> what the sampler draws from: the logits processors on the history, log_softmax.
class Policy {
 public:
  /// `prompt_tokens`: the prompt's length at the head of the histories given to logprobs();
  /// `banned`: token ids never drawn (their logits set to -inf; ids must be in the vocabulary).
  Policy(const GenerateParams& params, int prompt_tokens, const std::vector<int>& banned = {});
  /// logits [1, V], history [T] (prompt and generated so far) -> log-probabilities [1, V].
  mx::array logprobs(const mx::array& logits, const mx::array& history) const;
  /// The same without processors (none, or has_processors() false): the banned tokens' logits
  /// set to -inf, log_softmax. logits [..., V].
  mx::array logprobs(const mx::array& logits) const;
  bool has_processors() const { return !processors_.empty(); }
  bool greedy() const { return filter_.greedy(); }
  /// The distribution a draw at these log-probabilities samples from [..., V] (float32).
  mx::array probs(const mx::array& logprobs) const;
  /// The logits a draw uses (filters and temperature applied).
  mx::array draw_logits(const mx::array& logprobs) const;

 private:
  mx::array ban(const mx::array& logits) const;
  std::vector<LogitsProcessor> processors_;
  std::map<int, float> banned_;  // id -> -inf
  Sampler filter_;               // only its filters are used
};

/// Draft-and-verify rounds over a target and a draft model.
class SpeculativeDecoder {
 public:
  /// `banned`: token ids never drawn (see Policy).
  SpeculativeDecoder(const LanguageModel& target, PromptCache& cache, const GenerateParams& params,
                     int prompt_tokens, const std::vector<int>& banned);
  /// Prefills both caches with prompt[:-1]; returns the target's reused prompt tokens.
  int start(const std::vector<int>& prompt);
  /// One round: the accepted draft tokens, then the target's token (at least one token).
  std::vector<int> round(int max_new, GenerationStats& stats);

 private:
  const LanguageModel& target_;
  PromptCache& cache_;
  const LanguageModel& draft_;
  PromptCache& draft_cache_;
  int num_draft_;
  int prefill_step_;
  Policy policy_;
  mx::array key_;
  std::vector<int> history_;        // prompt and generated tokens; the last is not yet in cache_
  std::vector<int> draft_pending_;  // tokens not yet fed to the draft
};

}  // namespace ominix::generate::detail
