// Speculative decoding: draft N tokens, verify them in one target pass, roll back what was
// rejected. ref: mlx-lm 0.32.2 mlx_lm/generate.py speculative_generate_step (prefill of all but
// the last prompt token in both models, cache rewind of num_draft - accepted in the target and
// max(num_draft - accepted - 1, 0) in the draft, the last draft token re-fed to the draft after a
// full acceptance). mlx-lm accepts a sampled draft token only when the target's own sample equals
// it; we use the standard rule (Leviathan et al. 2023, Algorithm 1), which accepts more often.
#include "ominix/generate/speculative.h"

#include <algorithm>
#include <random>

#include <mlx/ops.h>
#include <mlx/random.h>
#include <mlx/transforms.h>
#include <mlx/utils.h>

#include "loop.h"
#include "ominix/base/error.h"

namespace ominix::generate {

namespace {

std::vector<int> to_ints(const mx::array& a) {
  auto v = mx::astype(mx::flatten(a), mx::int32);
  mx::eval(v);
  return {v.data<int>(), v.data<int>() + v.size()};
}

mx::array row(const mx::array& a, int i) {  // [R, V] -> [1, V]
  return mx::slice(a, {i, 0}, {i + 1, a.shape(1)});
}

std::uint64_t seed_of(const SamplerOptions& o) {
  if (o.seed) return *o.seed;
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) | rd();
}

}  // namespace

Verification verify_draft_greedy(std::span<const int> target_argmax,
                                 std::span<const int> draft_tokens) {
  if (target_argmax.size() != draft_tokens.size() + 1)
    fail<InvalidArgument>("verify_draft_greedy: {} target tokens for {} draft tokens",
                          target_argmax.size(), draft_tokens.size());
  int n = 0;
  const int N = static_cast<int>(draft_tokens.size());
  while (n < N && target_argmax[n] == draft_tokens[n]) ++n;
  return {.accepted = n, .token = target_argmax[n]};
}

Verification verify_draft(const mx::array& target_probs, const mx::array& draft_probs,
                          std::span<const int> draft_tokens, const mx::array& key) {
  const int n = static_cast<int>(draft_tokens.size());
  if (target_probs.ndim() != 2 || target_probs.shape(0) != n + 1 || draft_probs.ndim() != 2 ||
      draft_probs.shape(0) != n || (n > 0 && draft_probs.shape(1) != target_probs.shape(1)))
    fail<InvalidArgument>("verify_draft: expected target [n+1, V] and draft [n, V] for n = {}", n);
  const int V = target_probs.shape(1);
  auto keys = mx::random::split(key, 2);
  const auto p = mx::astype(target_probs, mx::float32);
  int accepted = 0;
  if (n > 0) {
    const auto q = mx::astype(draft_probs, mx::float32);
    const auto idx = mx::array(draft_tokens.data(), {n, 1}, mx::int32);
    const auto pd = mx::take_along_axis(mx::slice(p, {0, 0}, {n, V}), idx, 1);  // [n, 1]
    const auto qd = mx::take_along_axis(q, idx, 1);                             // [n, 1]
    const auto u = mx::random::uniform({n, 1}, mx::float32, mx::take(keys, 0, 0));
    // u < p/q, written without the division: accept when u * q(d) < p(d).
    for (int a : to_ints(mx::less(mx::multiply(u, qd), pd))) {
      if (!a) break;
      ++accepted;
    }
  }
  auto dist = row(p, accepted);
  if (accepted < n) {
    auto residual = mx::maximum(mx::subtract(dist, row(draft_probs, accepted)), mx::array(0.0f));
    dist = mx::where(mx::greater(mx::sum(residual), mx::array(0.0f)), residual, dist);
  }
  auto token = mx::random::categorical(mx::log(dist), -1, mx::take(keys, 1, 0));
  return {.accepted = accepted, .token = to_ints(token).at(0)};
}

namespace detail {

SpeculativeDecoder::SpeculativeDecoder(const LanguageModel& target, PromptCache& cache,
                                       const GenerateParams& params, int prompt_tokens,
                                       const std::vector<int>& banned)
    : target_(target),
      cache_(cache),
      draft_(*params.draft.model),
      draft_cache_([&]() -> PromptCache& {
        if (!params.draft.cache)
          fail<InvalidArgument>("speculative decoding: the draft has no cache");
        return *params.draft.cache;
      }()),
      num_draft_(params.draft.num_draft_tokens),
      prefill_step_(params.prefill_step_size),
      policy_(params, prompt_tokens, banned),
      key_(mx::random::key(seed_of(params.sampler))) {
  if (num_draft_ < 1)
    fail<InvalidArgument>("speculative decoding: num_draft_tokens must be >= 1, got {}",
                          num_draft_);
  if (&draft_cache_ == &cache_)
    fail<InvalidArgument>("speculative decoding: the draft needs its own cache");
  if (draft_.info().vocab_size != target_.info().vocab_size)
    fail<InvalidArgument>(
        "speculative decoding: the draft's vocabulary ({} tokens) differs from the target's ({})",
        draft_.info().vocab_size, target_.info().vocab_size);
}

int SpeculativeDecoder::start(const std::vector<int>& prompt) {
  for (const auto* c : {&cache_, &draft_cache_})
    if (c->rotating())
      fail<UnsupportedError>(
          "speculative decoding needs trimmable caches; a rotating cache (max_kv_size) is not");
  mx::StreamContext ctx(generation_stream());
  const auto all_but_last = std::span(prompt).first(prompt.size() - 1);
  const int kept = reuse_prefix(cache_, prompt);
  prefill(target_, cache_, all_but_last.subspan(kept), prefill_step_);
  const int draft_kept = reuse_prefix(draft_cache_, prompt);
  prefill(draft_, draft_cache_, all_but_last.subspan(draft_kept), prefill_step_);
  history_ = prompt;
  draft_pending_ = {prompt.back()};
  return kept;
}

std::vector<int> SpeculativeDecoder::round(int max_new, GenerationStats& stats) {
  const int N = std::min(num_draft_, max_new);
  const bool greedy = policy_.greedy();
  const bool processors = policy_.has_processors();
  const int T = static_cast<int>(history_.size());
  const auto history = mx::array(history_.data(), {T}, mx::int32);
  auto keys = mx::random::split(key_, 3);
  key_ = mx::take(keys, 0, 0);
  auto draft_keys = mx::random::split(mx::take(keys, 1, 0), N);

  mx::StreamContext ctx(generation_stream());
  // Draft N tokens, one at a time (lazily): d_i from the draft's distribution q_i.
  std::vector<mx::array> d, q;
  auto input = as_tokens(draft_pending_);
  for (int i = 0; i < N; ++i) {
    auto logits = last_logits(draft_(input, draft_cache_.cache()));
    auto lp =
        processors
            ? policy_.logprobs(
                  logits,
                  d.empty() ? history
                            : mx::concatenate({history, mx::astype(mx::concatenate(d), mx::int32)}))
            : policy_.logprobs(logits);
    if (greedy) {
      d.push_back(mx::argmax(lp, -1));
    } else {
      d.push_back(mx::random::categorical(policy_.draw_logits(lp), -1, mx::take(draft_keys, i, 0)));
      q.push_back(policy_.probs(lp));
    }
    if (i + 1 < N) input = mx::reshape(mx::astype(d.back(), mx::int32), {1, 1});
  }
  const auto drafted = mx::astype(mx::concatenate(d), mx::int32);  // [N]

  // Verify: one target pass over [y, d_1 .. d_N] gives N + 1 distributions.
  const auto y = mx::array({history_.back()}, {1}, mx::int32);
  auto logits = target_(mx::reshape(mx::concatenate({y, drafted}), {1, N + 1}), cache_.cache());
  logits = mx::squeeze(logits, 0);  // [N+1, V]
  mx::array lp = policy_.logprobs(logits);
  if (processors) {
    std::vector<mx::array> rows;
    for (int i = 0; i <= N; ++i) {
      auto h = i == 0 ? history : mx::concatenate({history, mx::slice(drafted, {0}, {i})});
      rows.push_back(policy_.logprobs(row(logits, i), h));
    }
    lp = mx::concatenate(rows, 0);
  }
  Verification v;
  std::vector<int> draft_ids;
  if (greedy) {
    auto t = mx::argmax(lp, -1);
    mx::eval({t, drafted});
    draft_ids = to_ints(drafted);
    v = verify_draft_greedy(to_ints(t), draft_ids);
  } else {
    auto p = policy_.probs(lp);
    auto qs = mx::concatenate(q, 0);
    mx::eval({p, qs, drafted});
    draft_ids = to_ints(drafted);
    v = verify_draft(p, qs, draft_ids, mx::take(keys, 2, 0));
  }
  const int n = v.accepted;

  // Roll back: the target keeps y, d_1 .. d_n; the draft keeps what it was fed up to d_n.
  std::vector<int> fed = {history_.back()};
  fed.insert(fed.end(), draft_ids.begin(), draft_ids.end());
  cache_.append(fed);
  cache_.keep(cache_.size() - (N - n));
  std::vector<int> draft_fed = draft_pending_;
  draft_fed.insert(draft_fed.end(), draft_ids.begin(), draft_ids.end() - 1);
  draft_cache_.append(draft_fed);
  if (n < N) {
    draft_cache_.keep(draft_cache_.size() - (N - 1 - n));
    draft_pending_ = {v.token};
  } else {
    draft_pending_ = {draft_ids.back(), v.token};
  }
  std::vector<int> out(draft_ids.begin(), draft_ids.begin() + n);
  out.push_back(v.token);
  history_.insert(history_.end(), out.begin(), out.end());
  stats.draft_tokens += N;
  stats.accepted_draft_tokens += n;
  return out;
}

}  // namespace detail

}  // namespace ominix::generate
