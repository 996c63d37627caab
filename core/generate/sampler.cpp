// ref: mlx-lm 0.32.2, mlx_lm/sample_utils.py (make_sampler, make_logits_processors, apply_top_p,
// apply_min_p, apply_top_k, categorical_sampling); transformers 5.24,
// generation/logits_process.py for the transformers order and the repetition penalty.
#include "ominix/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include <mlx/ops.h>
#include <mlx/random.h>

#include "ominix/base/error.h"

namespace ominix::generate {

namespace {

mx::array neg_inf(mx::Dtype dtype) {
  return mx::array(-std::numeric_limits<float>::infinity(), dtype);
}

void check_logits(const mx::array& x, const char* who) {
  if (x.ndim() == 0 || x.shape(-1) == 0)
    fail<InvalidArgument>("{}: expected logits [..., V] with V > 0", who);
}

/// The k-th largest value along the last axis, keepdims: [..., 1]. 1 <= k <= V.
mx::array kth_largest(const mx::array& x, int k) {
  return mx::min(mx::topk(x, k, -1), -1, /*keepdims=*/true);
}

/// Runs `f(padded_logits, idx)` where idx [..., T] holds the token ids broadcast over the leading
/// axes of logits, ids outside [0, V) sent to an extra padded column that is dropped afterwards
/// (as transformers does for ids beyond the LM head).
template <typename F>
mx::array at_tokens(const mx::array& logits, const mx::array& tokens, F&& f) {
  if (tokens.ndim() != 1) fail<InvalidArgument>("logits processor: tokens must be 1-D");
  check_logits(logits, "logits processor");
  const int V = logits.shape(-1);
  auto pad_shape = logits.shape();
  pad_shape.back() = 1;
  auto padded = mx::concatenate({logits, mx::zeros(pad_shape, logits.dtype())}, -1);  // [..., V+1]
  auto ids = mx::astype(tokens, mx::int32);
  auto outside = mx::logical_or(mx::less(ids, mx::array(0)), mx::greater_equal(ids, mx::array(V)));
  ids = mx::where(outside, mx::array(V), ids);
  auto idx_shape = logits.shape();
  idx_shape.back() = tokens.shape(0);
  auto idx = mx::broadcast_to(ids, idx_shape);  // [T] -> [..., T]
  auto out = f(padded, idx);
  auto start = mx::Shape(logits.ndim(), 0);
  auto stop = logits.shape();
  return mx::slice(out, start, stop);  // [..., V+1] -> [..., V]
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Logits processors.

mx::array last_tokens(const mx::array& tokens, std::optional<int> n) {
  if (tokens.ndim() != 1) fail<InvalidArgument>("last_tokens: tokens must be 1-D");
  const int T = tokens.shape(0);
  if (!n || *n >= T) return tokens;
  return mx::slice(tokens, {T - std::max(*n, 0)}, {T});
}

mx::array apply_logit_bias(const mx::array& logits, const std::map<int, float>& bias) {
  if (bias.empty()) return logits;
  check_logits(logits, "logit bias");
  const int V = logits.shape(-1);
  std::vector<int> ids;
  std::vector<float> values;
  for (const auto& [id, b] : bias) {
    if (id < 0 || id >= V) fail<InvalidArgument>("logit bias: token id {} outside [0, {})", id, V);
    ids.push_back(id);
    values.push_back(b);
  }
  const int n = static_cast<int>(ids.size());
  auto shape = logits.shape();
  shape.back() = n;
  auto idx = mx::broadcast_to(mx::array(ids.begin(), {n}, mx::int32), shape);  // [n] -> [..., n]
  auto val = mx::broadcast_to(mx::astype(mx::array(values.begin(), {n}), logits.dtype()), shape);
  return mx::scatter_add_axis(logits, idx, val, -1);
}

mx::array apply_repetition_penalty(const mx::array& logits, const mx::array& tokens,
                                   float penalty) {
  if (tokens.size() == 0) return logits;
  return at_tokens(logits, tokens, [&](const mx::array& x, const mx::array& idx) {
    auto sel = mx::take_along_axis(x, idx, -1);
    auto p = mx::array(penalty, x.dtype());
    sel =
        mx::where(mx::less(sel, mx::array(0, x.dtype())), mx::multiply(sel, p), mx::divide(sel, p));
    return mx::put_along_axis(x, idx, sel, -1);
  });
}

mx::array apply_presence_penalty(const mx::array& logits, const mx::array& tokens, float penalty) {
  if (tokens.size() == 0) return logits;
  return at_tokens(logits, tokens, [&](const mx::array& x, const mx::array& idx) {
    auto sel = mx::subtract(mx::take_along_axis(x, idx, -1), mx::array(penalty, x.dtype()));
    return mx::put_along_axis(x, idx, sel, -1);  // a repeated id writes the same value
  });
}

mx::array apply_frequency_penalty(const mx::array& logits, const mx::array& tokens, float penalty) {
  if (tokens.size() == 0) return logits;
  return at_tokens(logits, tokens, [&](const mx::array& x, const mx::array& idx) {
    return mx::scatter_add_axis(x, idx, mx::full(idx.shape(), -penalty, x.dtype()), -1);
  });
}

std::vector<LogitsProcessor> make_logits_processors(const LogitsOptions& o, int prompt_tokens) {
  for (auto ctx : {o.repetition_context_size, o.presence_context_size, o.frequency_context_size})
    if (ctx && *ctx < 0) fail<InvalidArgument>("penalty context size must be >= 0, got {}", *ctx);
  if (o.repetition_penalty < 0 || !std::isfinite(o.repetition_penalty))
    fail<InvalidArgument>("repetition penalty must be a non-negative number, got {}",
                          o.repetition_penalty);
  // The tokens the presence and frequency penalties count: the generated ones only, or all.
  const int skip = o.penalty_scope == PenaltyScope::generated ? std::max(prompt_tokens, 0) : 0;
  auto counted = [skip](const mx::array& tokens, std::optional<int> n) {
    if (skip == 0) return last_tokens(tokens, n);
    const int T = tokens.shape(0);
    return last_tokens(mx::slice(tokens, {std::min(skip, T)}, {T}), n);
  };
  std::vector<LogitsProcessor> out;
  if (!o.logit_bias.empty()) {
    out.push_back([bias = o.logit_bias](const mx::array&, const mx::array& logits) {
      return apply_logit_bias(logits, bias);
    });
  }
  if (o.repetition_penalty != 0.0f && o.repetition_penalty != 1.0f) {
    out.push_back([p = o.repetition_penalty, n = o.repetition_context_size](
                      const mx::array& tokens, const mx::array& logits) {
      return apply_repetition_penalty(logits, last_tokens(tokens, n), p);
    });
  }
  if (o.presence_penalty != 0.0f) {
    out.push_back([p = o.presence_penalty, n = o.presence_context_size, counted](
                      const mx::array& tokens, const mx::array& logits) {
      return apply_presence_penalty(logits, counted(tokens, n), p);
    });
  }
  if (o.frequency_penalty != 0.0f) {
    out.push_back([p = o.frequency_penalty, n = o.frequency_context_size, counted](
                      const mx::array& tokens, const mx::array& logits) {
      return apply_frequency_penalty(logits, counted(tokens, n), p);
    });
  }
  return out;
}

mx::array apply_logits_processors(const std::vector<LogitsProcessor>& processors,
                                  const mx::array& tokens, const mx::array& logits) {
  auto x = logits;
  for (const auto& p : processors) x = p(tokens, x);
  return x;
}

// ----------------------------------------------------------------------------------------------
// Filters.

mx::array log_softmax(const mx::array& logits) {
  auto x = mx::astype(logits, mx::float32);
  return mx::subtract(x, mx::logsumexp(x, -1, /*keepdims=*/true));
}

mx::array apply_top_k(const mx::array& x, int k) {
  check_logits(x, "top_k");
  if (k <= 0 || k >= x.shape(-1)) return x;
  return mx::where(mx::less(x, kth_largest(x, k)), neg_inf(x.dtype()), x);
}

mx::array apply_top_p(const mx::array& x, float top_p, int min_tokens_to_keep) {
  check_logits(x, "top_p");
  if (!(top_p > 0.0f && top_p < 1.0f)) return x;
  const int V = x.shape(-1);
  auto sorted = mx::sort(x, -1);                                        // ascending
  auto probs = mx::softmax(mx::astype(sorted, mx::float32), -1, true);  // of the sorted logits
  // Mass of the tokens more probable than each one; a token goes when they already reach top_p.
  auto mass_above = mx::cumsum(probs, -1, /*reverse=*/true, /*inclusive=*/false);
  auto first = [](const mx::array& a) {
    auto stop = a.shape();
    stop.back() = 1;
    return mx::slice(a, mx::Shape(a.ndim(), 0), stop);  // [..., V] -> [..., 1]
  };
  auto total = mx::add(first(mass_above), first(probs));
  auto dropped = mx::sum(mx::greater_equal(mass_above, mx::multiply(mx::array(top_p), total)), -1,
                         /*keepdims=*/true);
  const int max_dropped = V - std::clamp(min_tokens_to_keep, 1, V);
  dropped = mx::minimum(mx::astype(dropped, mx::int32), mx::array(max_dropped));
  auto threshold = mx::take_along_axis(sorted, dropped, -1);  // the least probable kept
  return mx::where(mx::less(x, threshold), neg_inf(x.dtype()), x);
}

mx::array apply_min_p(const mx::array& x, float min_p, int min_tokens_to_keep) {
  check_logits(x, "min_p");
  if (!(min_p > 0.0f)) return x;
  const int V = x.shape(-1);
  auto top = mx::max(x, -1, /*keepdims=*/true);
  auto remove = mx::less(x, mx::add(top, mx::array(std::log(min_p))));
  const int keep = std::clamp(min_tokens_to_keep, 1, V);
  if (keep > 1) remove = mx::logical_and(remove, mx::less(x, kth_largest(x, keep)));
  return mx::where(remove, neg_inf(x.dtype()), x);
}

// ----------------------------------------------------------------------------------------------
// Sampler.

namespace {

std::uint64_t seed_or_random(const std::optional<std::uint64_t>& seed) {
  if (seed) return *seed;
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

Sampler::Sampler(const SamplerOptions& options)
    : options_(options), key_(mx::random::key(seed_or_random(options.seed))) {
  const auto& o = options_;
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature))
    fail<InvalidArgument>("temperature must be >= 0, got {}", o.temperature);
  if (o.top_k < 0) fail<InvalidArgument>("top_k must be >= 0, got {}", o.top_k);
  if (!(o.top_p >= 0.0f && o.top_p <= 1.0f))
    fail<InvalidArgument>("top_p must be in [0, 1], got {}", o.top_p);
  if (!(o.min_p >= 0.0f && o.min_p <= 1.0f))
    fail<InvalidArgument>("min_p must be in [0, 1], got {}", o.min_p);
  if (o.min_tokens_to_keep < 1)
    fail<InvalidArgument>("min_tokens_to_keep must be >= 1, got {}", o.min_tokens_to_keep);
  if (greedy()) return;

  const bool use_top_p = o.top_p > 0.0f && o.top_p < 1.0f;
  const bool use_min_p = o.min_p > 0.0f;
  const int mtk = o.min_tokens_to_keep;
  if (o.order == SamplingOrder::mlx_lm) {
    if (use_top_p)
      steps_.push_back([p = o.top_p](const mx::array& x) { return apply_top_p(x, p); });
    if (use_min_p)
      steps_.push_back([p = o.min_p, mtk](const mx::array& x) { return apply_min_p(x, p, mtk); });
    if (o.top_k > 0)
      steps_.push_back([k = o.top_k](const mx::array& x) { return apply_top_k(x, k); });
  } else {
    steps_.push_back([inv_t = 1.0f / o.temperature](const mx::array& x) {
      return mx::multiply(x, mx::array(inv_t, x.dtype()));
    });
    if (o.top_k > 0)
      steps_.push_back(
          [k = std::max(o.top_k, mtk)](const mx::array& x) { return apply_top_k(x, k); });
    if (use_top_p)
      steps_.push_back([p = o.top_p, mtk](const mx::array& x) { return apply_top_p(x, p, mtk); });
    if (use_min_p)
      steps_.push_back([p = o.min_p, mtk](const mx::array& x) { return apply_min_p(x, p, mtk); });
  }
}

mx::array Sampler::filter(const mx::array& logprobs) const {
  check_logits(logprobs, "sampler");
  auto x = logprobs;
  for (const auto& step : steps_) x = step(x);
  return x;
}

mx::array Sampler::operator()(const mx::array& logprobs) {
  if (greedy()) {
    check_logits(logprobs, "sampler");
    return mx::argmax(logprobs, -1);
  }
  auto x = filter(logprobs);
  if (options_.order == SamplingOrder::mlx_lm)
    x = mx::multiply(x, mx::array(1.0f / options_.temperature, x.dtype()));
  auto [next, sub] = mx::random::split(key_);
  key_ = next;
  return mx::random::categorical(x, -1, sub);
}

}  // namespace ominix::generate
