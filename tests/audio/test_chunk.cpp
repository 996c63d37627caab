// Chunk planning and the joining of chunk transcripts (core/audio/chunk.cpp) on synthetic token
// sequences: whatever the chunks see near their edges, the joined tokens are the true ones, none
// dropped and none doubled, also through runs of one repeated token.
#include <random>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/audio/chunk.h"
#include "ominix/base/error.h"

namespace mx = mlx::core;
namespace audio = ominix::audio;

namespace {

constexpr int kRate = 16000;

std::vector<int> ids(const std::vector<audio::TimedToken>& t) {
  std::vector<int> out;
  for (const auto& x : t) out.push_back(x.id);
  return out;
}

// A talker: tokens at random spacing over `seconds`, ids from [1, alphabet].
std::vector<audio::TimedToken> truth(std::mt19937& rng, double seconds, int alphabet,
                                     double min_gap, double max_gap) {
  std::uniform_real_distribution<double> gap(min_gap, max_gap);
  std::uniform_int_distribution<int> id(1, alphabet);
  std::vector<audio::TimedToken> out;
  for (double t = gap(rng); t < seconds; t += gap(rng)) out.push_back({id(rng), t});
  return out;
}

// What a recogniser run on one chunk reports: the tokens inside it, times jittered; within
// `edge` seconds of a cut edge (not the ends of the audio) tokens are lost or misrecognised.
std::vector<audio::TimedToken> observe(const std::vector<audio::TimedToken>& all,
                                       const audio::Chunk& c, double total, double jitter,
                                       double edge, std::mt19937& rng) {
  std::uniform_real_distribution<double> j(-jitter, jitter);
  std::uniform_int_distribution<int> damage(0, 2);  // 0 keep, 1 drop, 2 garbage id
  const double b = double(c.begin) / kRate, e = double(c.end) / kRate;
  std::vector<audio::TimedToken> out;
  for (const auto& t : all) {
    if (t.time < b || t.time >= e) continue;
    const bool near_edge = (b > 0 && t.time < b + edge) || (e < total && t.time > e - edge);
    const int d = near_edge ? damage(rng) : 0;
    if (d == 1) continue;
    out.push_back({d == 2 ? 1000 + damage(rng) : t.id, std::clamp(t.time + j(rng), b, e)});
  }
  std::sort(out.begin(), out.end(), [](auto& x, auto& y) { return x.time < y.time; });
  return out;
}

std::vector<audio::Chunk> overlapping(double total, double len, double overlap) {
  std::vector<audio::Chunk> c;
  const auto n = static_cast<std::int64_t>(total * kRate),
             L = static_cast<std::int64_t>(len * kRate),
             O = static_cast<std::int64_t>(overlap * kRate);
  std::int64_t b = 0;
  for (; n - b > L; b += L - O) c.push_back({b, b + L});
  c.push_back({b, n});
  return c;
}

}  // namespace

TEST(Chunk, MergeRecoversTokensThroughDamagedEdges) {
  // Many random talkers: few distinct ids (many repeats), fast and slow speech, jittered times,
  // a second of damage at every cut edge. Chunks of 20 s with 4 s of overlap, as the default.
  // A plain cut at the middle of each overlap (no alignment: tolerance < 0) loses or doubles
  // tokens on some of them.
  int naive_wrong = 0;
  for (int seed = 0; seed < 200; ++seed) {
    std::mt19937 rng(seed);
    const double total = 95.0;
    const int alphabet = seed % 4 == 0 ? 1 : 3 + seed % 7;  // alphabet 1: one repeated token
    const auto all = truth(rng, total, alphabet, 0.08 + 0.002 * (seed % 50), 0.5);
    const auto chunks = overlapping(total, 20.0, 4.0);
    std::vector<std::vector<audio::TimedToken>> seen;
    for (const auto& c : chunks) seen.push_back(observe(all, c, total, 0.03, 1.0, rng));
    const auto merged = audio::merge_chunks(chunks, seen, kRate);
    ASSERT_EQ(ids(merged), ids(all)) << "seed " << seed << ", alphabet " << alphabet;
    naive_wrong +=
        ids(audio::merge_chunks(chunks, seen, kRate, {.time_tolerance = -1})) != ids(all);
  }
  EXPECT_GT(naive_wrong, 0);
  std::printf("middle cut without alignment: %d of 200 talkers wrong\n", naive_wrong);
}

TEST(Chunk, MergeOneRepeatedTokenExactly) {
  // "the the the ...": 0.2 s apart, 6 s chunks overlapping by 2 s; no token may shift by one.
  std::vector<audio::TimedToken> all;
  for (int i = 0; i < 100; ++i) all.push_back({7, 0.1 + 0.2 * i});
  const auto chunks = overlapping(20.0, 6.0, 2.0);
  std::mt19937 rng(1);
  std::vector<std::vector<audio::TimedToken>> seen;
  for (const auto& c : chunks) seen.push_back(observe(all, c, 20.0, 0.04, 0.0, rng));
  EXPECT_EQ(audio::merge_chunks(chunks, seen, kRate).size(), all.size());
}

TEST(Chunk, MergeConcatenatesChunksCutAtPauses) {
  const std::vector<audio::Chunk> chunks{{0, 3 * kRate}, {3 * kRate, 5 * kRate}};
  const std::vector<std::vector<audio::TimedToken>> seen{{{1, 0.5}, {2, 2.9}}, {{2, 3.1}, {3, 4}}};
  EXPECT_EQ(ids(audio::merge_chunks(chunks, seen, kRate)), (std::vector<int>{1, 2, 2, 3}));
}

TEST(Chunk, MergeWithoutAgreementCutsAtTheMiddle) {
  // Overlap [8, 10): the chunks disagree there; each keeps its side of 9 s.
  const std::vector<audio::Chunk> chunks{{0, 10 * kRate}, {8 * kRate, 16 * kRate}};
  const std::vector<std::vector<audio::TimedToken>> seen{{{1, 1}, {2, 8.5}, {3, 9.5}},
                                                         {{4, 8.2}, {5, 9.2}, {6, 12}}};
  EXPECT_EQ(ids(audio::merge_chunks(chunks, seen, kRate)), (std::vector<int>{1, 2, 5, 6}));
  EXPECT_THROW(audio::merge_chunks(chunks, {seen[0]}, kRate), ominix::InvalidArgument);
}

TEST(Chunk, PlanCutsInPausesElseOverlaps) {
  // 50 s: noise bursts (speech stand-in) with 0.5 s pauses every 7 s; the cuts land in pauses.
  const int n = 50 * kRate;
  std::vector<float> x(n);
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (int i = 0; i < n; ++i) {
    const double t = double(i) / kRate, p = std::fmod(t, 7.0);
    x[i] = (p > 6.5 ? 1e-4f : 1.0f) * noise(rng);
  }
  auto plan = audio::plan_chunks(mx::array(x.data(), {n}), kRate);
  ASSERT_GE(plan.size(), 3u);
  EXPECT_EQ(plan.front().begin, 0);
  EXPECT_EQ(plan.back().end, n);
  for (std::size_t i = 0; i + 1 < plan.size(); ++i) {
    EXPECT_EQ(plan[i].end, plan[i + 1].begin);  // no overlap
    const double cut = double(plan[i].end) / kRate;
    EXPECT_GT(std::fmod(cut, 7.0), 6.5) << cut;
    EXPECT_LE(plan[i].end - plan[i].begin, 20 * kRate);
    EXPECT_GE(plan[i].end - plan[i].begin, 10 * kRate);
  }
  // Without pauses: 20 s chunks overlapping by 4 s.
  for (auto& v : x) v = noise(rng);
  plan = audio::plan_chunks(mx::array(x.data(), {n}), kRate);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].begin, 0);
  EXPECT_EQ(plan[0].end, 20 * kRate);
  EXPECT_EQ(plan[1].begin, 16 * kRate);
  EXPECT_EQ(plan[2].begin, 32 * kRate);
  EXPECT_EQ(plan[2].end, n);
  // Tiny chunks (shorter than an energy frame) still cover the input and end.
  plan = audio::plan_chunks(mx::zeros({1000}), kRate,
                            {.max_seconds = 1e-3, .min_seconds = 0, .overlap_seconds = 5e-4});
  ASSERT_FALSE(plan.empty());
  EXPECT_EQ(plan.back().end, 1000);
  // Short audio is one chunk; bad options are named.
  EXPECT_EQ(audio::plan_chunks(mx::zeros({100}), kRate).size(), 1u);
  EXPECT_THROW(audio::plan_chunks(mx::zeros({100}), kRate, {.overlap_seconds = 30}),
               ominix::InvalidArgument);
}

// Untimed joining (an LLM decoder gives no token times): the overlap is found by aligning ids.
TEST(Chunk, MergeUntimedRecoversTokensThroughDamagedEdges) {
  std::mt19937 rng(7);
  int exact = 0;
  for (int talker = 0; talker < 200; ++talker) {
    std::uniform_int_distribution<int> id(1, 50), len(30, 60), ov(4, 12);
    std::vector<int> truth(len(rng));
    for (auto& t : truth) t = id(rng);
    const int overlap = ov(rng);
    const int cut = static_cast<int>(truth.size()) / 2;
    std::vector<int> earlier(truth.begin(), truth.begin() + cut + overlap / 2 + overlap % 2);
    std::vector<int> later(truth.begin() + cut - overlap / 2, truth.end());
    earlier.back() = 99;  // each chunk hears its cut edge wrong
    later.front() = 98;
    exact += audio::merge_untimed(earlier, later, overlap) == truth;
  }
  EXPECT_EQ(exact, 200);
}

TEST(Chunk, MergeUntimedEdgeCases) {
  // no id in common: the expected overlap is split at its middle
  EXPECT_EQ(audio::merge_untimed({1, 2, 3, 4}, {5, 6, 7, 8}, 2),
            (std::vector<int>{1, 2, 3, 6, 7, 8}));
  // no overlap expected and none found: concatenated
  EXPECT_EQ(audio::merge_untimed({1, 2}, {3, 4}, 0), (std::vector<int>{1, 2, 3, 4}));
  // an empty side
  EXPECT_EQ(audio::merge_untimed({}, {3, 4}, 3), (std::vector<int>{3, 4}));
  EXPECT_EQ(audio::merge_untimed({1, 2}, {}, 3), (std::vector<int>{1, 2}));
  // a run of one repeated token keeps its length
  EXPECT_EQ(audio::merge_untimed({1, 5, 5, 5, 5}, {5, 5, 5, 5, 2}, 3),
            (std::vector<int>{1, 5, 5, 5, 5, 2}));
}
