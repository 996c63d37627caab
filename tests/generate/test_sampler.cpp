// Logits processors and sampler: parity with mlx-lm 0.32.2 and transformers 5.24 on fixed logits
// (tests/fixtures/generate/logits.*), hand-computed cases, and the distribution of seeded draws
// against the analytically filtered and renormalised probabilities.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include <gtest/gtest.h>
#include <mlx/ops.h>
#include <mlx/random.h>

#include "fixture.h"
#include "ominix/base/error.h"
#include "ominix/generate/sampler.h"

namespace ominix::generate {
namespace {

using testing::Fixture;
using testing::json;
using testing::same_filtered;

constexpr double kAtol = 1e-5;

std::vector<float> to_vector(const mx::array& a) {
  auto f = mx::contiguous(mx::astype(a, mx::float32));
  mx::eval(f);
  return {f.data<float>(), f.data<float>() + f.size()};
}

std::vector<int> to_ints(const mx::array& a) {
  auto f = mx::contiguous(mx::astype(a, mx::int32));
  mx::eval(f);
  return {f.data<int>(), f.data<int>() + f.size()};
}

std::optional<int> context(const json& o, const char* key) {
  if (!o.contains(key)) return 20;  // mlx-lm's default
  if (o.at(key).is_null()) return std::nullopt;
  return o.at(key).get<int>();
}

LogitsOptions logits_options(const json& o) {
  LogitsOptions out;
  if (o.contains("logit_bias"))
    for (const auto& [id, b] : o.at("logit_bias").items()) out.logit_bias[std::stoi(id)] = b;
  out.repetition_penalty = o.value("repetition_penalty", 1.0f);
  out.repetition_context_size = context(o, "repetition_context_size");
  out.presence_penalty = o.value("presence_penalty", 0.0f);
  out.presence_context_size = context(o, "presence_context_size");
  out.frequency_penalty = o.value("frequency_penalty", 0.0f);
  out.frequency_context_size = context(o, "frequency_context_size");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parity with the references.

TEST(LogitsParity, ProcessorsMatchMlxLmAndTransformers) {
  auto f = Fixture::load("logits");
  auto logits = f["logits"], tokens = f["tokens"];
  ASSERT_FALSE(f.meta.at("processors").empty());
  for (const auto& p : f.meta.at("processors")) {
    SCOPED_TRACE(p.at("name").get<std::string>() + " vs " + p.at("reference").get<std::string>());
    auto procs = make_logits_processors(logits_options(p.at("options")));
    EXPECT_TRUE(
        same_filtered(apply_logits_processors(procs, tokens, logits), f[p.at("expected")], kAtol));
  }
}

TEST(LogitsParity, FiltersMatchMlxLmAndTransformers) {
  auto f = Fixture::load("logits");
  ASSERT_FALSE(f.meta.at("filters").empty());
  for (const auto& c : f.meta.at("filters")) {
    SCOPED_TRACE(c.at("name").get<std::string>() + " vs " + c.at("reference").get<std::string>());
    auto x = f[c.at("input")];
    const auto& prm = c.at("params");
    const auto kind = c.at("kind").get<std::string>();
    const int keep = prm.value("min_tokens_to_keep", 1);
    auto got = kind == "top_k"   ? apply_top_k(x, prm.at("k"))
               : kind == "top_p" ? apply_top_p(x, prm.at("top_p"), keep)
                                 : apply_min_p(x, prm.at("min_p"), keep);
    EXPECT_TRUE(same_filtered(got, f[c.at("expected")], kAtol));
  }
}

TEST(LogitsParity, SamplerChainsMatchMlxLmAndTransformersOrder) {
  auto f = Fixture::load("logits");
  for (const auto& c : f.meta.at("chains")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const auto& o = c.at("options");
    Sampler s(
        {.temperature = o.at("temperature"),
         .top_k = o.at("top_k"),
         .top_p = o.at("top_p"),
         .min_p = o.at("min_p"),
         .min_tokens_to_keep = o.at("min_tokens_to_keep"),
         .seed = 0,
         .order = c.at("order") == "mlx_lm" ? SamplingOrder::mlx_lm : SamplingOrder::transformers});
    EXPECT_TRUE(same_filtered(s.filter(f[c.at("input")]), f[c.at("expected")], kAtol));
  }
}

TEST(LogitsParity, SeededDrawsReproduceMlxLmTokens) {
  // mlx-lm draws with keys split off the global sequence mx.random.seed(seed) starts; our
  // Sampler splits its own key(seed) the same way, so the token sequences agree exactly.
  auto f = Fixture::load("logits");
  ASSERT_FALSE(f.meta.at("draws").empty());
  for (const auto& d : f.meta.at("draws")) {
    SCOPED_TRACE(d.at("name").get<std::string>());
    const auto& o = d.at("options");
    Sampler s({.temperature = o.at("temperature"),
               .top_k = o.at("top_k"),
               .top_p = o.at("top_p"),
               .min_p = o.at("min_p"),
               .seed = d.at("seed").get<std::uint64_t>()});
    auto x = f[d.at("input")];
    std::vector<mx::array> ids;
    for (int i = 0; i < f[d.at("expected")].shape(0); ++i) ids.push_back(s(x));
    EXPECT_TRUE(testing::same_array(mx::stack(ids), f[d.at("expected")]));
  }
}

// ---------------------------------------------------------------------------------------------
// Processors by hand.

TEST(LogitsProcessors, RepetitionPenaltyIsSignAwareAndAppliedOncePerToken) {
  auto logits = mx::array({2.0f, -2.0f, 1.0f, 0.5f}, {1, 4});
  auto tokens = mx::array({0, 1, 0, 0, 9, -1}, {6});  // 9 and -1 are outside the vocabulary
  EXPECT_EQ(to_vector(apply_repetition_penalty(logits, tokens, 2.0f)),
            (std::vector<float>{1.0f, -4.0f, 1.0f, 0.5f}));
  EXPECT_EQ(to_vector(apply_repetition_penalty(logits, mx::zeros({0}, mx::int32), 2.0f)),
            to_vector(logits));
}

TEST(LogitsProcessors, PresenceOnceFrequencyPerOccurrence) {
  auto logits = mx::zeros({4});
  auto tokens = mx::array({2, 2, 2, 0}, {4});
  EXPECT_EQ(to_vector(apply_presence_penalty(logits, tokens, 0.5f)),
            (std::vector<float>{-0.5f, 0.0f, -0.5f, 0.0f}));
  EXPECT_EQ(to_vector(apply_frequency_penalty(logits, tokens, 0.5f)),
            (std::vector<float>{-0.5f, 0.0f, -1.5f, 0.0f}));
}

TEST(LogitsProcessors, ContextWindowAndOrder) {
  auto tokens = mx::array({1, 1, 2, 3}, {4});
  EXPECT_EQ(to_ints(last_tokens(tokens, 2)), (std::vector<int>{2, 3}));
  EXPECT_EQ(to_ints(last_tokens(tokens, std::nullopt)), (std::vector<int>{1, 1, 2, 3}));
  EXPECT_EQ(to_ints(last_tokens(tokens, 10)), (std::vector<int>{1, 1, 2, 3}));
  // Bias first, then the multiplicative penalty: (1 + 1) / 2 for token 3.
  auto procs = make_logits_processors(
      {.logit_bias = {{3, 1.0f}}, .repetition_penalty = 2.0f, .repetition_context_size = 1});
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(to_vector(apply_logits_processors(procs, tokens, mx::ones({1, 4}))),
            (std::vector<float>{1.0f, 1.0f, 1.0f, 1.0f}));
  EXPECT_TRUE(make_logits_processors({}).empty());
  EXPECT_THROW(apply_logit_bias(mx::zeros({4}), {{4, 1.0f}}), InvalidArgument);
  EXPECT_THROW(make_logits_processors({.repetition_penalty = -1.0f}), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Filters by hand.

TEST(Filters, TopKTopPMinPByHand) {
  const std::vector<float> p = {0.41f, 0.24f, 0.16f, 0.1f, 0.05f, 0.04f};
  std::vector<float> lp(p.size());
  std::transform(p.begin(), p.end(), lp.begin(), [](float x) { return std::log(x); });
  auto x = mx::array(lp.data(), {6});
  auto kept = [](const mx::array& y) {
    std::vector<int> out;
    auto v = to_vector(y);
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isinf(v[i])) out.push_back(static_cast<int>(i));
    return out;
  };
  EXPECT_EQ(kept(apply_top_k(x, 2)), (std::vector<int>{0, 1}));
  EXPECT_EQ(kept(apply_top_k(x, 0)).size(), 6u);
  EXPECT_EQ(kept(apply_top_k(x, 6)).size(), 6u);
  // Mass of the more probable tokens: 0, .41, .65, .81, .91, .96.
  EXPECT_EQ(kept(apply_top_p(x, 0.7f)), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(kept(apply_top_p(x, 0.3f)), (std::vector<int>{0}));
  EXPECT_EQ(kept(apply_top_p(x, 0.3f, 2)), (std::vector<int>{0, 1}));
  // min_p 0.3 keeps p >= 0.123.
  EXPECT_EQ(kept(apply_min_p(x, 0.3f)), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(kept(apply_min_p(x, 0.9f, 3)), (std::vector<int>{0, 1, 2}));
  // Ties at the cut are kept.
  auto tied = mx::array({1.0f, 3.0f, 3.0f, 0.0f}, {4});
  EXPECT_EQ(kept(apply_top_k(tied, 1)), (std::vector<int>{1, 2}));
}

// ---------------------------------------------------------------------------------------------
// Sampler.

/// The probabilities a sampler with these options draws from, computed in double by the
/// documented rules (docs/generate.md).
std::vector<double> expected_probs(const std::vector<double>& p, const SamplerOptions& o) {
  const size_t V = p.size();
  std::vector<bool> keep(V, true);
  auto normalised = [&](std::vector<double> q) {
    double s = 0;
    for (size_t i = 0; i < V; ++i) s += keep[i] ? q[i] : 0.0;
    for (size_t i = 0; i < V; ++i) q[i] = keep[i] ? q[i] / s : 0.0;
    return q;
  };
  auto ranked = [&](const std::vector<double>& q) {  // indices, most probable first
    std::vector<size_t> idx(V);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return q[a] > q[b]; });
    return idx;
  };
  auto top_k = [&](const std::vector<double>& q, int k) {
    auto idx = ranked(q);
    for (size_t r = static_cast<size_t>(k); r < V; ++r) keep[idx[r]] = false;
  };
  auto top_p = [&](const std::vector<double>& q0, int mtk) {
    auto q = normalised(q0);
    auto idx = ranked(q);
    double above = 0;
    for (size_t r = 0; r < V; ++r) {
      if (above >= o.top_p && r >= static_cast<size_t>(mtk)) keep[idx[r]] = false;
      above += q[idx[r]];
    }
  };
  auto min_p = [&](const std::vector<double>& q, int mtk) {
    auto idx = ranked(q);
    for (size_t r = static_cast<size_t>(mtk); r < V; ++r)
      if (q[idx[r]] < o.min_p * q[idx[0]]) keep[idx[r]] = false;
  };
  auto tempered = p;
  for (auto& t : tempered) t = std::pow(t, 1.0 / o.temperature);
  const bool use_top_p = o.top_p > 0 && o.top_p < 1;
  if (o.order == SamplingOrder::mlx_lm) {
    if (use_top_p) top_p(p, 1);
    if (o.min_p > 0) min_p(p, o.min_tokens_to_keep);
    if (o.top_k > 0) top_k(p, o.top_k);
  } else {
    if (o.top_k > 0) top_k(tempered, std::max(o.top_k, o.min_tokens_to_keep));
    if (use_top_p) top_p(tempered, o.min_tokens_to_keep);
    if (o.min_p > 0) min_p(tempered, o.min_tokens_to_keep);
  }
  return normalised(tempered);
}

/// Draws n tokens at once (n rows of the same log-probabilities) and compares the empirical
/// frequencies with `want`: each within 5 standard errors sqrt(p (1 - p) / n); p = 0 never drawn.
void expect_distribution(Sampler& s, const std::vector<double>& p, const std::vector<double>& want,
                         int n = 20000) {
  std::vector<float> lp(p.size());
  std::transform(p.begin(), p.end(), lp.begin(), [](double x) { return std::log(x); });
  const int V = static_cast<int>(p.size());
  auto x = mx::broadcast_to(mx::array(lp.data(), {1, V}), {n, V});
  auto ids = to_ints(s(x));
  ASSERT_EQ(ids.size(), static_cast<size_t>(n));
  std::vector<int> counts(p.size(), 0);
  for (int id : ids) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, V);
    ++counts[static_cast<size_t>(id)];
  }
  for (size_t i = 0; i < p.size(); ++i) {
    const double freq = static_cast<double>(counts[i]) / n;
    if (want[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " was filtered out";
    } else {
      const double sigma = std::sqrt(want[i] * (1 - want[i]) / n);
      EXPECT_NEAR(freq, want[i], 5 * sigma) << "token " << i;
    }
  }
}

const std::vector<double> kProbs = {0.41, 0.24, 0.16, 0.1, 0.05, 0.04};

TEST(Sampler, ExpectedProbabilitiesByHand) {
  auto w = expected_probs(kProbs, {.temperature = 1.0f, .top_k = 2});
  EXPECT_NEAR(w[0], 0.41 / 0.65, 1e-12);
  EXPECT_NEAR(w[1], 0.24 / 0.65, 1e-12);
  EXPECT_EQ(w[2], 0.0);
  w = expected_probs(kProbs, {.temperature = 1.0f, .top_p = 0.7f});
  EXPECT_NEAR(w[2], 0.16 / 0.81, 1e-12);
  EXPECT_EQ(w[3], 0.0);
  w = expected_probs(kProbs, {.temperature = 0.5f});
  EXPECT_NEAR(w[0],
              0.41 * 0.41 / (0.41 * 0.41 + 0.24 * 0.24 + 0.16 * 0.16 + 0.01 + 0.0025 + 0.0016),
              1e-12);
}

TEST(Sampler, EmpiricalFrequenciesMatchTheFilteredDistribution) {
  const std::vector<SamplerOptions> cases = {
      {.temperature = 1.0f},
      {.temperature = 0.5f},
      {.temperature = 1.0f, .top_k = 2},
      {.temperature = 1.0f, .top_p = 0.7f},
      {.temperature = 1.0f, .min_p = 0.2f},
      {.temperature = 1.0f, .min_p = 0.9f, .min_tokens_to_keep = 3},
      {.temperature = 1.5f, .top_p = 0.9f},
      {.temperature = 1.5f, .top_p = 0.9f, .order = SamplingOrder::transformers},
      {.temperature = 0.8f, .top_k = 4, .top_p = 0.8f, .min_p = 0.1f},
      {.temperature = 2.0f, .top_k = 4, .top_p = 0.6f, .order = SamplingOrder::transformers},
  };
  std::uint64_t seed = 1000;
  for (auto o : cases) {
    o.seed = seed++;
    SCOPED_TRACE("case with seed " + std::to_string(*o.seed));
    Sampler s(o);
    expect_distribution(s, kProbs, expected_probs(kProbs, o));
  }
  // The two orders really differ here: tempering first lets a fifth token into the nucleus.
  auto a = expected_probs(kProbs, {.temperature = 1.5f, .top_p = 0.9f});
  auto b = expected_probs(
      kProbs, {.temperature = 1.5f, .top_p = 0.9f, .order = SamplingOrder::transformers});
  EXPECT_EQ(a[4], 0.0);
  EXPECT_GT(b[4], 0.0);
}

TEST(Sampler, SequentialDrawsFollowTheDistribution) {
  Sampler s({.temperature = 1.0f, .top_k = 3, .seed = 77});
  std::vector<float> lp(kProbs.size());
  std::transform(kProbs.begin(), kProbs.end(), lp.begin(), [](double x) { return std::log(x); });
  auto x = mx::array(lp.data(), {1, 6});
  const int n = 3000;
  std::vector<int> counts(6, 0);
  for (int i = 0; i < n; ++i) ++counts[static_cast<size_t>(s(x).item<uint32_t>())];
  auto want = expected_probs(kProbs, s.options());
  for (size_t i = 0; i < 6; ++i) {
    const double sigma = std::sqrt(want[i] * (1 - want[i]) / n);
    EXPECT_NEAR(static_cast<double>(counts[i]) / n, want[i], 5 * sigma + 1e-12) << "token " << i;
  }
}

TEST(Sampler, GreedyIsArgmaxAndIgnoresFilters) {
  mx::random::seed(4);
  auto logits = mx::random::normal({3, 100});
  Sampler g({.top_k = 5, .top_p = 0.5f});
  EXPECT_TRUE(g.greedy());
  EXPECT_EQ(to_ints(g(logits)), to_ints(mx::argmax(logits, -1)));
  EXPECT_EQ(to_vector(g.filter(logits)), to_vector(logits));
}

std::vector<int> draw_sequence(Sampler& s, const mx::array& logprobs, int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<int>(s(logprobs).item<uint32_t>()));
  return out;
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferent) {
  auto logprobs = log_softmax(mx::zeros({1, 50}));  // uniform over 50 tokens
  Sampler a({.temperature = 1.0f, .seed = 42}), b({.temperature = 1.0f, .seed = 42});
  Sampler c({.temperature = 1.0f, .seed = 43});
  auto sa = draw_sequence(a, logprobs, 64);
  EXPECT_EQ(sa, draw_sequence(b, logprobs, 64));
  EXPECT_NE(sa, draw_sequence(c, logprobs, 64));
  // Successive draws of one sampler differ (the key advances).
  EXPECT_GT(std::set<int>(sa.begin(), sa.end()).size(), 10u);
}

TEST(Sampler, RejectsBadOptions) {
  EXPECT_THROW(Sampler({.temperature = -1.0f}), InvalidArgument);
  EXPECT_THROW(Sampler({.temperature = 1.0f, .top_k = -1}), InvalidArgument);
  EXPECT_THROW(Sampler({.temperature = 1.0f, .top_p = 1.5f}), InvalidArgument);
  EXPECT_THROW(Sampler({.temperature = 1.0f, .min_p = -0.1f}), InvalidArgument);
  EXPECT_THROW(Sampler({.temperature = 1.0f, .min_tokens_to_keep = 0}), InvalidArgument);
}

TEST(Sampler, LogSoftmaxNormalises) {
  auto lp = log_softmax(mx::array({1.0f, 2.0f, 3.0f}, {3}));
  EXPECT_NEAR(mx::sum(mx::exp(lp)).item<float>(), 1.0f, 1e-6f);
}

}  // namespace
}  // namespace ominix::generate
