// The generation loop. ref: mlx-lm 0.32.2 mlx_lm/generate.py (generate_step: prefill in chunks
// of prefill_step_size up to the last prompt token, mx.eval of the cache after each chunk, then
// one-token-ahead decoding: step n+1 is queued with mx.async_eval before token n is returned).
#include "ominix/generate/generate.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <random>
#include <set>
#include <utility>

#include <mlx/memory.h>
#include <mlx/ops.h>
#include <mlx/transforms.h>
#include <mlx/utils.h>

#include "loop.h"
#include "ominix/base/error.h"

namespace ominix::generate {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Earliest position of any stop string in text (npos if none).
std::size_t find_stop(const std::string& text, const std::vector<std::string>& stops) {
  std::size_t best = std::string::npos;
  for (const auto& s : stops) best = std::min(best, text.find(s));
  return best;
}

// The longest suffix of text that is a proper prefix of a stop string (it may still grow into one).
std::size_t partial_stop(const std::string& text, const std::vector<std::string>& stops) {
  std::size_t best = 0;
  for (const auto& s : stops)
    for (std::size_t k = std::min(s.size() - 1, text.size()); k > best; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        best = k;
        break;
      }
  return best;
}

}  // namespace

const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::eos:
      return "eos";
    case FinishReason::stop_string:
      return "stop";
    case FinishReason::max_tokens:
    case FinishReason::context:
      return "length";
    case FinishReason::cancelled:
      return "cancelled";
    case FinishReason::none:
      break;
  }
  return "none";
}

// ------------------------------------------------------------------------------------------------
// PromptCache

PromptCache::PromptCache(const LanguageModel& model, const CacheOptions& options)
    : model_(&model), options_(options), cache_(model.make_cache(options)) {}

bool PromptCache::rotating() const {
  return cache_.num_layers() > 0 && dynamic_cast<const RotatingKVCache*>(&cache_[0]) != nullptr;
}

void PromptCache::reset() {
  cache_ = model_->make_cache(options_);
  tokens_.clear();
}

int PromptCache::keep(int n) {
  n = std::clamp(n, 0, size());
  const int drop = size() - n;
  if (drop == 0) return n;
  if (cache_.trim(drop) != drop) {
    reset();
    return 0;
  }
  tokens_.resize(n);
  return n;
}

// ------------------------------------------------------------------------------------------------
// Shared pieces

namespace detail {

mx::Stream generation_stream() {
  thread_local std::vector<std::pair<mx::Device, mx::Stream>> streams;
  const auto device = mx::default_device();
  for (const auto& [d, s] : streams)
    if (d == device) return s;
  streams.emplace_back(device, mx::new_stream(device));
  return streams.back().second;
}

mx::array as_tokens(std::span<const int> ids) {
  return mx::array(ids.data(), {1, static_cast<int>(ids.size())}, mx::int32);
}

mx::array last_logits(const mx::array& logits) {  // [1, L, V] -> [1, V]
  const int L = logits.shape(1);
  return mx::squeeze(mx::slice(logits, {0, L - 1, 0}, logits.shape()), 1);
}

int reuse_prefix(PromptCache& cache, std::span<const int> prompt) {
  const auto& have = cache.tokens();
  const std::size_t limit = std::min(have.size(), prompt.size() - 1);
  std::size_t common = 0;
  while (common < limit && have[common] == prompt[common]) ++common;
  return cache.keep(static_cast<int>(common));
}

void prefill(const LanguageModel& model, PromptCache& cache, std::span<const int> ids, int step) {
  while (!ids.empty()) {
    const auto chunk = ids.first(std::min<std::size_t>(ids.size(), step));
    model(as_tokens(chunk), cache.cache());
    mx::eval(cache.cache().state());
    cache.append(chunk);
    ids = ids.subspan(chunk.size());
    mx::clear_cache();
  }
}

Policy::Policy(const GenerateParams& params, int prompt_tokens, const std::vector<int>& banned)
    : processors_(make_logits_processors(params.logits, prompt_tokens)), filter_([&] {
        auto o = params.sampler;
        o.seed = 0;  // the filters draw nothing
        return o;
      }()) {
  for (int id : banned) banned_[id] = -std::numeric_limits<float>::infinity();
}

mx::array Policy::ban(const mx::array& logits) const {
  return apply_logit_bias(logits, banned_);  // identity when nothing is banned
}

mx::array Policy::logprobs(const mx::array& logits) const {
  return log_softmax(ban(logits));
}

mx::array Policy::logprobs(const mx::array& logits, const mx::array& history) const {
  return log_softmax(apply_logits_processors(processors_, history, ban(logits)));
}

mx::array Policy::draw_logits(const mx::array& logprobs) const {
  auto x = filter_.filter(logprobs);
  const auto& o = filter_.options();
  if (o.order == SamplingOrder::mlx_lm)
    x = mx::multiply(x, mx::array(1.0f / o.temperature, x.dtype()));
  return x;
}

mx::array Policy::probs(const mx::array& logprobs) const {
  return mx::softmax(mx::astype(draw_logits(logprobs), mx::float32), -1, true);
}

}  // namespace detail

// ------------------------------------------------------------------------------------------------
// Generator

namespace {

// The EOS ids: the model's, the params', the tokenizer's.
std::set<int> eos_ids(const LanguageModel& model, const GenerateParams& params) {
  const auto& info = model.info();
  std::set<int> eos(info.eos_token_ids.begin(), info.eos_token_ids.end());
  eos.insert(params.eos_token_ids.begin(), params.eos_token_ids.end());
  if (params.tokenizer)
    if (auto name = params.tokenizer->eos_token())
      if (auto id = params.tokenizer->token_to_id(*name)) eos.insert(*id);
  return eos;
}

// The ids ban_eos forbids (those inside the vocabulary).
std::vector<int> banned_ids(const LanguageModel& model, const GenerateParams& params) {
  std::vector<int> out;
  if (!params.ban_eos) return out;
  for (int id : eos_ids(model, params))
    if (id >= 0 && id < model.info().vocab_size) out.push_back(id);
  return out;
}

// A token's log-probability [1, 1] and the top-n alternatives, ids and values [1, n], lazily.
struct PendingLogprobs {
  mx::array chosen, top_ids, top_values;
};

PendingLogprobs pending_logprobs(const mx::array& logits, const mx::array& token, int n) {
  auto lp = log_softmax(logits);  // [1, V] float32
  auto chosen = mx::take_along_axis(lp, mx::reshape(mx::astype(token, mx::int32), {1, 1}), -1);
  n = std::min(n, lp.shape(-1));
  if (n == 0) return {chosen, mx::zeros({1, 0}, mx::int32), mx::zeros({1, 0}, mx::float32)};
  auto neg = mx::negative(lp);
  auto ids = mx::astype(mx::slice(mx::argpartition(neg, n - 1, -1), {0, 0}, {1, n}),
                        mx::int32);  // [1, n]
  auto vals = mx::take_along_axis(lp, ids, -1);
  auto order = mx::argsort(mx::negative(vals), -1);  // most probable first
  return {chosen, mx::take_along_axis(ids, order, -1), mx::take_along_axis(vals, order, -1)};
}

TokenLogprobs read_logprobs(const PendingLogprobs& p, int token) {
  mx::eval({p.chosen, p.top_ids, p.top_values});
  TokenLogprobs out{.token = token, .logprob = p.chosen.item<float>()};
  const int n = p.top_ids.shape(-1);
  const auto* id = p.top_ids.data<std::int32_t>();
  const auto* v = p.top_values.data<float>();
  for (int i = 0; i < n; ++i) out.top.emplace_back(id[i], v[i]);
  return out;
}

}  // namespace

struct Generator::Impl {
  const LanguageModel& model;
  PromptCache& cache;
  std::vector<int> prompt;
  GenerateParams params;
  std::vector<int> banned;
  detail::Policy policy;
  Sampler sampler;
  std::set<int> eos;
  std::optional<text::StreamingDetokenizer> detok;
  std::optional<detail::SpeculativeDecoder> spec;
  mx::Stream stream;

  bool started = false;
  FinishReason finish = FinishReason::none;
  int produced = 0;
  std::optional<mx::array> y;  // plain decoding: the token being computed, [1] uint32
  std::optional<PendingLogprobs> y_logprobs;  // with params.logprobs: y's, lazily
  int context = 0;                            // positions the cache may hold (0: no limit)
  std::optional<mx::array> history;  // plain decoding with processors: prompt + generated, lazily
  std::deque<int> ready;             // speculative: tokens verified but not yet processed
  std::vector<int> held;             // tokens that may begin a stop string
  std::vector<TokenLogprobs> held_logprobs;    // theirs, with params.logprobs
  std::optional<TokenLogprobs> last_logprobs;  // of the token produce() returned last
  std::string held_text;
  Chunk out;
  GenerationStats stats;
  Clock::time_point t_start, t_first;

  Impl(const LanguageModel& m, PromptCache& c, std::vector<int> p, GenerateParams gp)
      : model(m),
        cache(c),
        prompt(std::move(p)),
        params(std::move(gp)),
        banned(banned_ids(model, params)),
        policy(params, static_cast<int>(prompt.size()), banned),
        sampler(params.sampler),
        stream(detail::generation_stream()) {
    const auto& info = model.info();
    if (prompt.empty()) fail<InvalidArgument>("generate: the prompt is empty");
    for (int id : prompt)
      if (id < 0 || id >= info.vocab_size)
        fail<InvalidArgument>("generate: prompt token id {} is outside the vocabulary [0, {})", id,
                              info.vocab_size);
    if (params.max_tokens < -1)
      fail<InvalidArgument>("generate: max_tokens must be >= 0 (or -1: no limit), got {}",
                            params.max_tokens);
    if (params.logprobs && (*params.logprobs < 0 || *params.logprobs > 20))
      fail<InvalidArgument>("generate: logprobs must be in [0, 20], got {}", *params.logprobs);
    if (params.logprobs && params.draft.model)
      fail<InvalidArgument>("generate: logprobs are not available with speculative decoding");
    if (params.prefill_step_size < 1)
      fail<InvalidArgument>("generate: prefill_step_size must be >= 1, got {}",
                            params.prefill_step_size);
    if (!cache.rotating()) context = std::max(info.max_position_embeddings, 0);
    if (context > 0 && static_cast<int>(prompt.size()) > context)
      fail<InvalidArgument>(
          "the prompt has {} tokens, more than the model's context of {} tokens "
          "(max_position_embeddings); shorten it or use a rotating cache (max_kv_size)",
          prompt.size(), context);
    for (const auto& s : params.stop_strings)
      if (s.empty()) fail<InvalidArgument>("generate: a stop string is empty");
    if (!params.stop_strings.empty() && !params.tokenizer)
      fail<InvalidArgument>("generate: stop strings need a tokenizer");
    eos = eos_ids(model, params);
    if (params.tokenizer) detok.emplace(*params.tokenizer, params.skip_special_tokens);
    if (params.draft.model)
      spec.emplace(model, cache, params, static_cast<int>(prompt.size()), banned);
  }

  void start() {
    started = true;
    t_start = Clock::now();
    mx::reset_peak_memory();
    const int n = static_cast<int>(prompt.size());
    if (spec) {
      stats.cached_prompt_tokens = spec->start(prompt);
      stats.prompt_tokens = n - stats.cached_prompt_tokens;
      return;
    }
    mx::StreamContext ctx(stream);
    stats.cached_prompt_tokens = detail::reuse_prefix(cache, prompt);
    stats.prompt_tokens = n - stats.cached_prompt_tokens;
    if (policy.has_processors()) history = mx::array(prompt.data(), {n}, mx::int32);
    detail::prefill(
        model, cache,
        std::span(prompt).subspan(stats.cached_prompt_tokens, n - 1 - stats.cached_prompt_tokens),
        params.prefill_step_size);
    y = step(mx::array({prompt.back()}, {1}, mx::int32), /*record_history=*/false);
    cache.append(std::span(&prompt.back(), 1));
    async_eval_next();
  }

  void async_eval_next() {
    if (y_logprobs)
      mx::async_eval({*y, y_logprobs->chosen, y_logprobs->top_ids, y_logprobs->top_values});
    else
      mx::async_eval({*y});
  }

  // Tokens that may still be generated: max_tokens and the context's room (-1: no limit).
  int room() const {
    int n = params.max_tokens < 0 ? -1 : params.max_tokens - produced;
    if (context > 0) {
      const int left = context - static_cast<int>(prompt.size()) - produced;
      n = n < 0 ? left : std::min(n, left);
    }
    return n;
  }

  // Feeds token [1] to the model and returns the next token [1] (uint32), lazily.
  mx::array step(const mx::array& token, bool record_history = true) {
    auto ids = mx::reshape(mx::astype(token, mx::int32), {1, 1});
    auto logits = detail::last_logits(model(ids, cache.cache()));
    const auto raw = logits;
    if (history) {
      if (record_history) history = mx::concatenate({*history, mx::astype(token, mx::int32)});
      logits = policy.logprobs(logits, *history);
    } else {
      logits = policy.logprobs(logits);
    }
    auto next = sampler(logits);
    if (params.logprobs) y_logprobs = pending_logprobs(raw, next, *params.logprobs);
    return next;
  }

  void first_token_seen() {
    t_first = Clock::now();
    stats.time_to_first_token_s = seconds(t_start, t_first);
    if (stats.time_to_first_token_s > 0)
      stats.prompt_tps = stats.prompt_tokens / stats.time_to_first_token_s;
  }

  // The next token from the model, or nullopt at max_tokens or the context (see room()).
  std::optional<int> produce() {
    if (room() == 0) return std::nullopt;
    int tok = 0;
    if (spec) {
      if (ready.empty()) {
        const int n = room();
        auto round = spec->round(n < 0 ? std::numeric_limits<int>::max() : n, stats);
        ready.assign(round.begin(), round.end());
        if (produced == 0) first_token_seen();
      }
      tok = ready.front();
      ready.pop_front();
    } else {
      auto cur = *y;
      auto cur_logprobs = y_logprobs;
      {
        mx::StreamContext ctx(stream);
        y = step(cur);
      }
      async_eval_next();
      tok = static_cast<int>(cur.item<std::uint32_t>());
      if (cur_logprobs) last_logprobs = read_logprobs(*cur_logprobs, tok);
      cache.append(std::span(&tok, 1));
      if (produced == 0) first_token_seen();
      if (produced % 256 == 255) mx::clear_cache();
    }
    ++produced;
    stats.generation_tokens = produced;
    return tok;
  }

  // Emits the held tokens (and their logprobs) with `text`.
  void emit_held(std::string text) {
    out.tokens.insert(out.tokens.end(), held.begin(), held.end());
    out.logprobs.insert(out.logprobs.end(), held_logprobs.begin(), held_logprobs.end());
    out.text += text;
    held.clear();
    held_logprobs.clear();
  }

  // One step ahead, the next token is still being computed when generation ends (EOS, a stop
  // string, max_tokens, a cancelled callback, a range left early). Wait for it: otherwise the
  // stream's worker may still run the step while the caller frees the cache or the process exits
  // (seen as a rare SEGFAULT at exit on the CUDA build).
  void settle() noexcept {
    if (!y) return;
    try {
      mx::synchronize(stream);
    } catch (...) {  // nothing left to report to
    }
  }

  ~Impl() { settle(); }

  void finish_with(FinishReason reason) {
    settle();
    finish = reason;
    if (reason != FinishReason::stop_string) {
      std::string rest = held_text;
      if (detok) rest += detok->finish();
      emit_held(std::move(rest));
      held_text.clear();
    }
    const auto now = Clock::now();
    if (produced > 0) {
      const double t = seconds(t_first, now);
      if (t > 0) stats.generation_tps = produced / t;
    }
    stats.peak_memory_bytes = mx::get_peak_memory();
  }

  void accept(int tok) {
    if (!params.ignore_eos && eos.count(tok)) return finish_with(FinishReason::eos);
    held.push_back(tok);
    if (last_logprobs) held_logprobs.push_back(*last_logprobs);
    if (!detok) return emit_held({});
    held_text += detok->put(tok);
    if (params.stop_strings.empty()) {
      emit_held(std::move(held_text));
      held_text.clear();
      return;
    }
    if (auto pos = find_stop(held_text, params.stop_strings); pos != std::string::npos) {
      out.text += held_text.substr(0, pos);
      held.clear();
      held_logprobs.clear();
      held_text.clear();
      return finish_with(FinishReason::stop_string);
    }
    const std::size_t k = partial_stop(held_text, params.stop_strings);
    if (k)
      out.text += held_text.substr(0, held_text.size() - k);
    else
      emit_held(held_text);
    held_text.erase(0, held_text.size() - k);
  }

  std::optional<Chunk> next() {
    if (!started && finish == FinishReason::none) start();
    while (finish == FinishReason::none && out.tokens.empty() && out.text.empty()) {
      auto tok = produce();
      if (!tok) {
        const bool at_max = params.max_tokens >= 0 && produced >= params.max_tokens;
        finish_with(at_max ? FinishReason::max_tokens : FinishReason::context);
        break;
      }
      accept(*tok);
    }
    if (out.tokens.empty() && out.text.empty()) return std::nullopt;
    return std::exchange(out, Chunk{});
  }
};

Generator::Generator(const LanguageModel& model, PromptCache& cache, std::vector<int> prompt,
                     GenerateParams params)
    : impl_(std::make_unique<Impl>(model, cache, std::move(prompt), std::move(params))) {}
Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;
Generator& Generator::operator=(Generator&&) noexcept = default;

std::optional<Chunk> Generator::next() {
  return impl_->next();
}
void Generator::cancel() {
  if (impl_->finish == FinishReason::none) impl_->finish_with(FinishReason::cancelled);
}
bool Generator::done() const {
  return impl_->finish != FinishReason::none;
}
FinishReason Generator::finish_reason() const {
  return impl_->finish;
}
const GenerationStats& Generator::stats() const {
  return impl_->stats;
}

GenerationResult generate(const LanguageModel& model, PromptCache& cache, std::vector<int> prompt,
                          const GenerateParams& params, const ChunkCallback& on_chunk) {
  Generator gen(model, cache, std::move(prompt), params);
  GenerationResult result;
  while (auto chunk = gen.next()) {
    result.tokens.insert(result.tokens.end(), chunk->tokens.begin(), chunk->tokens.end());
    result.text += chunk->text;
    result.logprobs.insert(result.logprobs.end(), chunk->logprobs.begin(), chunk->logprobs.end());
    if (on_chunk && !on_chunk(*chunk)) {
      gen.cancel();
      break;
    }
  }
  result.finish_reason = gen.finish_reason();
  result.stats = gen.stats();
  return result;
}

// ------------------------------------------------------------------------------------------------
// Ranges

void TokenStream::fill() {
  while (buf_.empty()) {
    auto chunk = gen_.next();
    if (!chunk) return;
    buf_.insert(buf_.end(), chunk->tokens.begin(), chunk->tokens.end());
  }
}

TokenStream::iterator TokenStream::begin() {
  return iterator(this);
}

TokenStream::iterator& TokenStream::iterator::operator++() {
  s_->fill();
  if (!s_->buf_.empty()) s_->buf_.pop_front();
  return *this;
}

bool TokenStream::iterator::at_end() const {
  if (!s_) return true;
  s_->fill();
  return s_->buf_.empty();
}

TextStream::TextStream(Generator generator) : gen_(std::move(generator)) {}

void TextStream::fill() {
  if (!consumed_) return;
  consumed_ = false;
  piece_.reset();
  while (auto chunk = gen_.next())
    if (!chunk->text.empty()) {
      piece_ = std::move(chunk->text);
      return;
    }
}

TextStream::iterator TextStream::begin() {
  return iterator(this);
}

TextStream::iterator& TextStream::iterator::operator++() {
  s_->fill();
  s_->consumed_ = true;
  return *this;
}

}  // namespace ominix::generate
