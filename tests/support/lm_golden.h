// The golden tests every language-model family runs against its transformers fixtures: logits at
// every position, greedy continuations, the cache (incremental decode, chunked prefill, offsets).
// A family suite derives a fixture from LmGolden, adds OMINIX_LM_GOLDEN_TESTS(Suite) and
// instantiates it with lm_fixtures(...):
//
//   class Qwen3Golden : public tests::LmGolden {};
//   OMINIX_LM_GOLDEN_TESTS(Qwen3Golden)
//   INSTANTIATE_TEST_SUITE_P(Fixtures, Qwen3Golden,
//                            ::testing::ValuesIn(tests::lm_fixtures(dir_of, load, {"a", "b"})),
//                            tests::lm_fixture_name);
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/generate/model.h"
#include "support/lm_testing.h"

namespace ominix::tests {

/// Loads a family's checkpoint directory with default options.
using LmLoader =
    std::function<std::unique_ptr<generate::LanguageModel>(const std::filesystem::path& dir)>;

/// One golden fixture: its name (the test-name suffix), directory and the family's loader.
struct LmFixture {
  std::string name;
  std::filesystem::path dir;
  LmLoader load;
};

inline void PrintTo(const LmFixture& f, std::ostream* os) {
  *os << f.name;
}

/// The fixtures `names`, each in dir_of(name), loaded with `load`.
inline std::vector<LmFixture> lm_fixtures(
    const std::function<std::filesystem::path(const std::string&)>& dir_of, const LmLoader& load,
    const std::vector<std::string>& names) {
  std::vector<LmFixture> out;
  for (const auto& name : names) out.push_back({name, dir_of(name), load});
  return out;
}

/// Test-name suffix for INSTANTIATE_TEST_SUITE_P: the fixture's name.
inline std::string lm_fixture_name(const ::testing::TestParamInfo<LmFixture>& info) {
  return info.param.name;
}

/// Base of each family's golden suite; the parameter names the fixture.
class LmGolden : public ::testing::TestWithParam<LmFixture> {};

/// fp32 logits at every prompt position match transformers.
inline void golden_logits_at_every_position(const LmFixture& f) {
  auto model = f.load(f.dir);
  auto ref = load_expected(f.dir);
  expect_logits_close(forward(*model, ref.at("input_ids")), ref.at("logits"), kFp32Tol);
}

/// Greedy decoding through the cache reproduces transformers' generate, row by row.
inline void golden_greedy_continuation(const LmFixture& f) {
  auto model = f.load(f.dir);
  auto ref = load_expected(f.dir);
  for (int b = 0; b < 2; ++b) {
    SCOPED_TRACE(b);
    EXPECT_EQ(greedy(*model, row(ref.at("input_ids"), b), kNew),
              to_vector(row(ref.at("greedy"), b)));
  }
}

/// Prompt + continuation in one pass without a warm cache: argmax at each position is the next
/// greedy token, and the prompt positions keep the reference logits (for MoE, 2*44*2 routed pairs
/// take the sorted-by-expert path).
inline void golden_full_sequence_without_cache(const LmFixture& f) {
  auto model = f.load(f.dir);
  auto ref = load_expected(f.dir);
  auto tokens = mx::concatenate({ref.at("input_ids"), ref.at("greedy")}, 1);  // [2, 44]
  auto logits = forward(*model, tokens);
  expect_logits_close(mx::slice(logits, {0, 0, 0}, {2, kPrompt, logits.shape(2)}), ref.at("logits"),
                      kFp32Tol);
  auto next = mx::argmax(
      mx::slice(logits, {0, kPrompt - 1, 0}, {2, kPrompt + kNew - 1, logits.shape(2)}), -1);
  EXPECT_EQ(to_vector(next), to_vector(ref.at("greedy")));
}

/// Each one-token decode step equals the full forward at that position.
inline void golden_incremental_decode(const LmFixture& f) {
  auto model = f.load(f.dir);
  auto ref = load_expected(f.dir);
  auto tokens = mx::concatenate({ref.at("input_ids"), ref.at("greedy")}, 1);  // [2, 44]
  const int T = tokens.shape(1), V = model->info().vocab_size;
  auto full = forward(*model, tokens);
  auto cache = model->make_cache();
  (*model)(mx::slice(tokens, {0, 0}, {2, kPrompt}), cache);
  for (int t = kPrompt; t < T; ++t) {
    auto step = (*model)(mx::slice(tokens, {0, t}, {2, t + 1}), cache);  // [2, 1, V]
    mx::eval(cache.state());
    expect_logits_close(step, mx::slice(full, {0, t, 0}, {2, t + 1, V}), kFp32Tol);
  }
}

/// The prompt prefilled in chunks of 3 gives the reference logits.
inline void golden_chunked_prefill(const LmFixture& f) {
  auto model = f.load(f.dir);
  auto ref = load_expected(f.dir);
  auto cache = model->make_cache();
  std::vector<mx::array> chunks;
  for (int s = 0; s < kPrompt; s += 3) {
    chunks.push_back((*model)(mx::slice(ref.at("input_ids"), {0, s}, {2, s + 3}), cache));
    mx::eval(cache.state());
  }
  expect_logits_close(mx::concatenate(chunks, 1), ref.at("logits"), kFp32Tol);
}

/// One cache per layer; logits [2, L, V] float32; every layer's offset advances by exactly L.
inline void golden_cache_offset(const LmFixture& f) {
  auto model = f.load(f.dir);
  auto ids = load_expected(f.dir).at("input_ids");
  auto cache = model->make_cache();
  ASSERT_EQ(cache.num_layers(), std::size_t(model->info().num_layers));
  auto logits = (*model)(ids, cache);
  EXPECT_EQ(logits.shape(), (mx::Shape{2, kPrompt, model->info().vocab_size}));
  EXPECT_EQ(logits.dtype(), mx::float32);
  for (std::size_t l = 0; l < cache.num_layers(); ++l) EXPECT_EQ(cache[l].offset(), kPrompt) << l;
  (*model)(mx::slice(ids, {0, 0}, {2, 5}), cache);
  for (std::size_t l = 0; l < cache.num_layers(); ++l)
    EXPECT_EQ(cache[l].offset(), kPrompt + 5) << l;
}

}  // namespace ominix::tests

/// The six golden tests on `Suite`, a fixture derived from ominix::tests::LmGolden.
#define OMINIX_LM_GOLDEN_TESTS(Suite)                                \
  TEST_P(Suite, LogitsAtEveryPositionMatchTransformers) {            \
    ::ominix::tests::golden_logits_at_every_position(GetParam());    \
  }                                                                  \
  TEST_P(Suite, GreedyContinuationMatchesTransformersGenerate) {     \
    ::ominix::tests::golden_greedy_continuation(GetParam());         \
  }                                                                  \
  TEST_P(Suite, FullSequenceWithoutCacheReproducesGreedy) {          \
    ::ominix::tests::golden_full_sequence_without_cache(GetParam()); \
  }                                                                  \
  TEST_P(Suite, IncrementalDecodeEqualsFullForward) {                \
    ::ominix::tests::golden_incremental_decode(GetParam());          \
  }                                                                  \
  TEST_P(Suite, ChunkedPrefillMatchesOnePass) {                      \
    ::ominix::tests::golden_chunked_prefill(GetParam());             \
  }                                                                  \
  TEST_P(Suite, CacheOffsetAdvancesByExactlyL) {                     \
    ::ominix::tests::golden_cache_offset(GetParam());                \
  }
