// The generation loop: chunked prefill, decode with one-token-ahead async_eval pipelining on a
// dedicated stream, stop rules (EOS ids, stop strings, max_tokens), prompt-cache reuse across
// requests, optional speculative decoding, and stats. Follows mlx-lm's generate_step /
// stream_generate (mlx_lm/generate.py, 0.32.2). Three ways to consume it: a Generator stepped by
// hand, a callback (generate()), or C++20 input ranges of token ids (TokenStream) or text pieces
// (TextStream).
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ominix/generate/cache.h"
#include "ominix/generate/model.h"
#include "ominix/generate/sampler.h"
#include "ominix/text/tokenizer.h"

namespace ominix::generate {

/// A model's KV cache together with the tokens it holds. Kept across requests (chat turns): a new
/// prompt sharing a prefix with `tokens` trims the cache to that prefix and prefills the rest.
class PromptCache {
 public:
  /// A fresh cache of the kind `options` asks for (growing, rotating or quantized).
  explicit PromptCache(const LanguageModel& model, const CacheOptions& options = {});

  Cache& cache() { return cache_; }
  const Cache& cache() const { return cache_; }
  /// Exactly the tokens whose keys and values the cache holds, in order.
  const std::vector<int>& tokens() const { return tokens_; }
  /// Positions held (== tokens().size()).
  int size() const { return static_cast<int>(tokens_.size()); }
  const CacheOptions& options() const { return options_; }
  /// True when the cache is rotating (a sliding window): prompts are then not checked against
  /// the model's context.
  bool rotating() const;

  /// Empties the cache (a new conversation).
  void reset();
  /// Keeps the first n tokens: trims the cache, or empties it if it cannot be trimmed. Returns the
  /// number of tokens kept.
  int keep(int n);
  /// Records that `ids` were fed to the model through cache().
  void append(std::span<const int> ids) { tokens_.insert(tokens_.end(), ids.begin(), ids.end()); }

 private:
  const LanguageModel* model_;
  CacheOptions options_;
  Cache cache_;
  std::vector<int> tokens_;
};

/// A draft model for speculative decoding (non-owning: both must outlive the generation). Its
/// vocabulary must match the target's.
struct Draft {
  const LanguageModel* model = nullptr;  ///< nullptr: no speculative decoding
  PromptCache* cache = nullptr;  ///< the draft's cache, kept across requests as the target's
  int num_draft_tokens = 3;      ///< tokens proposed per round
};

/// What to generate and when to stop. Generation also stops when the cache reaches the model's
/// context (ModelInfo::max_position_embeddings; not with a rotating cache):
/// FinishReason::context.
struct GenerateParams {
  int max_tokens = 256;                   ///< generated tokens at most (EOS included); -1: no limit
  SamplerOptions sampler;                 ///< temperature 0 (the default) is greedy; seedable
  LogitsOptions logits;                   ///< logit bias and penalties, applied before sampling
  std::vector<std::string> stop_strings;  ///< stop when the text contains one (needs a tokenizer)
  /// vLLM's ignore_eos: EOS tokens may be generated; they are emitted and generation goes on.
  bool ignore_eos = false;
  /// llama.cpp's --ignore-eos: EOS tokens are never generated (their logits set to -inf).
  bool ban_eos = false;
  /// With a value n: each emitted token carries its log-probability and the n most probable
  /// alternatives (Chunk::logprobs), from log_softmax of the model's logits before the logits
  /// processors and the sampler (as vLLM's default raw logprobs). 0 <= n <= 20.
  std::optional<int> logprobs;
  std::vector<int> eos_token_ids;  ///< added to ModelInfo::eos_token_ids (and the tokenizer's)
  int prefill_step_size = 2048;    ///< prompt tokens per prefill chunk (mlx-lm's default)
  /// Decodes the text (TextStream, Chunk::text), detects stop strings, adds its EOS token.
  std::optional<text::Tokenizer> tokenizer;
  bool skip_special_tokens = false;  ///< for the decoded text
  Draft draft;                       ///< speculative decoding when draft.model is set
};

/// Why generation ended.
enum class FinishReason {
  none,
  eos,          ///< an EOS token
  stop_string,  ///< a stop string
  max_tokens,   ///< max_tokens generated
  context,      ///< the cache reached the model's context (max_position_embeddings)
  cancelled,    ///< Generator::cancel, or the callback returned false
};

/// The names the CLI's JSON uses (OpenAI's where they exist): "eos", "stop" (a stop string),
/// "length" (max_tokens or the context), "cancelled", "none".
const char* to_string(FinishReason reason);

/// A generated token's log-probability and the most probable alternatives.
struct TokenLogprobs {
  int token = 0;
  float logprob = 0;
  std::vector<std::pair<int, float>> top;  ///< (id, logprob), most probable first
};

/// Timings and counts of one request.
struct GenerationStats {
  int prompt_tokens = 0;         ///< prompt tokens prefilled by this request
  int cached_prompt_tokens = 0;  ///< prompt tokens reused from the prompt cache
  double prompt_tps = 0;         ///< prompt_tokens / seconds until the first token
  double time_to_first_token_s = 0;
  int generation_tokens = 0;          ///< tokens the model produced (a stopping EOS included)
  double generation_tps = 0;          ///< generation_tokens / seconds since the first token
  std::size_t peak_memory_bytes = 0;  ///< mx::get_peak_memory() at the end
  int draft_tokens = 0;               ///< speculative: tokens the draft proposed
  int accepted_draft_tokens = 0;      ///< speculative: of those, accepted by the target
  /// accepted_draft_tokens / draft_tokens (0 without speculative decoding).
  double acceptance_rate() const {
    return draft_tokens ? static_cast<double>(accepted_draft_tokens) / draft_tokens : 0.0;
  }
};

/// What one step makes final: token ids and, with a tokenizer, their text. Tokens that might start
/// a stop string are held back until it is clear they do not; a stop string is never emitted (its
/// tokens are dropped; text before it in the same tokens is emitted).
struct Chunk {
  std::vector<int> tokens;
  std::string text;
  std::vector<TokenLogprobs> logprobs;  ///< one per token, with GenerateParams::logprobs
};

/// The generation loop, stepped by next(). The prompt is prefilled on the first call.
/// InvalidArgument: empty prompt, an id outside the vocabulary, a prompt longer than the model's
/// context (unless the cache is rotating), stop strings without a tokenizer, a bad draft,
/// logprobs with a draft.
class Generator {
 public:
  Generator(const LanguageModel& model, PromptCache& cache, std::vector<int> prompt,
            GenerateParams params = {});
  ~Generator();
  Generator(Generator&&) noexcept;
  Generator& operator=(Generator&&) noexcept;

  /// The next non-empty chunk, or nullopt once finished.
  std::optional<Chunk> next();
  /// Stops (FinishReason::cancelled unless already finished); the cache keeps what it computed.
  void cancel();
  bool done() const;
  FinishReason finish_reason() const;
  const GenerationStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Everything one request produced.
struct GenerationResult {
  std::vector<int> tokens;  ///< emitted token ids (no stopping EOS, no stop-string tokens)
  std::string text;         ///< their text (empty without a tokenizer)
  std::vector<TokenLogprobs> logprobs;  ///< one per token, with GenerateParams::logprobs
  FinishReason finish_reason = FinishReason::none;
  GenerationStats stats;
};

/// Called with every chunk as it is made; return false to stop.
using ChunkCallback = std::function<bool(const Chunk&)>;

/// Runs a whole request, streaming chunks to `on_chunk` (if given).
GenerationResult generate(const LanguageModel& model, PromptCache& cache, std::vector<int> prompt,
                          const GenerateParams& params = {}, const ChunkCallback& on_chunk = {});

/// An input range of generated token ids (int). Generation advances as it is iterated, lazily
/// (incrementing past a token generates nothing until the next is read or compared with end()),
/// so `stream | std::views::take(n)` generates n tokens.
class TokenStream {
 public:
  explicit TokenStream(Generator generator) : gen_(std::move(generator)) {}

  class iterator {
   public:
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;
    iterator() = default;
    int operator*() const {
      s_->fill();
      return s_->buf_.front();
    }
    iterator& operator++();
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    friend class TokenStream;
    explicit iterator(TokenStream* s) : s_(s) {}
    bool at_end() const;
    TokenStream* s_ = nullptr;
  };

  iterator begin();
  std::default_sentinel_t end() const { return {}; }
  Generator& generator() { return gen_; }
  const GenerationStats& stats() const { return gen_.stats(); }

 private:
  void fill();  // generates until buf_ holds a token or generation ends
  Generator gen_;
  std::deque<int> buf_;
};

/// An input range of text pieces (std::string, never empty) through the streaming detokenizer;
/// the generator needs GenerateParams::tokenizer.
class TextStream {
 public:
  explicit TextStream(Generator generator);

  class iterator {
   public:
    using value_type = std::string;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;
    iterator() = default;
    const std::string& operator*() const {
      s_->fill();
      return *s_->piece_;
    }
    iterator& operator++();
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    friend class TextStream;
    explicit iterator(TextStream* s) : s_(s) {}
    bool at_end() const { return !s_ || (s_->fill(), !s_->piece_); }
    TextStream* s_ = nullptr;
  };

  iterator begin();
  std::default_sentinel_t end() const { return {}; }
  Generator& generator() { return gen_; }
  const GenerationStats& stats() const { return gen_.stats(); }

 private:
  void fill();  // makes piece_ the next piece unless it holds one not yet consumed
  Generator gen_;
  std::optional<std::string> piece_;
  bool consumed_ = true;
};

}  // namespace ominix::generate
