// Chunk planning at pauses (with an overlap where there is none) and the joining of the chunks'
// timed tokens. See include/ominix/audio/chunk.h.
#include "ominix/audio/chunk.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <mlx/ops.h>
#include <mlx/transforms.h>

#include "ominix/base/error.h"

namespace ominix::audio {

namespace {

// Per-frame energy in dB (mean square, floored at -100 dB).
std::vector<double> frame_db(const float* x, std::int64_t n, std::int64_t frame) {
  std::vector<double> db(static_cast<std::size_t>(n / frame));
  for (std::size_t f = 0; f < db.size(); ++f) {
    double s = 0;
    for (std::int64_t k = 0; k < frame; ++k) {
      const double v = x[static_cast<std::int64_t>(f) * frame + k];
      s += v * v;
    }
    db[f] = 10.0 * std::log10(s / static_cast<double>(frame) + 1e-10);
  }
  return db;
}

// The middle frame of the longest quiet run of at least min_run frames inside frames [lo, hi),
// the later one on ties; -1 when there is none.
std::int64_t pause_middle(const std::vector<bool>& quiet, std::int64_t lo, std::int64_t hi,
                          std::int64_t min_run) {
  std::int64_t best = -1, best_len = 0;
  for (std::int64_t f = lo; f < hi;) {
    if (!quiet[f]) {
      ++f;
      continue;
    }
    std::int64_t e = f;
    while (e < hi && quiet[e]) ++e;
    if (e - f >= min_run && e - f >= best_len) best = (f + e) / 2, best_len = e - f;
    f = e;
  }
  return best;
}

}  // namespace

ChunkOptions chunk_options(double max_seconds) {
  return {.max_seconds = max_seconds,
          .min_seconds = max_seconds / 2,
          .overlap_seconds = max_seconds / 5};
}

std::vector<Chunk> plan_chunks(const mx::array& samples, int sample_rate, const ChunkOptions& o) {
  if (samples.ndim() != 1)
    fail<InvalidArgument>("plan_chunks: samples must be [T], got {} dimensions", samples.ndim());
  if (sample_rate <= 0 || o.max_seconds <= 0 || o.frame_seconds <= 0 || o.min_seconds < 0 ||
      o.min_seconds > o.max_seconds || o.overlap_seconds < 0 ||
      o.overlap_seconds >= o.max_seconds || o.min_pause_seconds < 0)
    fail<InvalidArgument>(
        "plan_chunks: need sample_rate > 0, 0 <= min_seconds <= max_seconds, "
        "0 <= overlap_seconds < max_seconds, frame_seconds > 0, min_pause_seconds >= 0");
  const std::int64_t n = samples.shape(0);
  const auto max_len = std::max<std::int64_t>(1, std::llround(o.max_seconds * sample_rate));
  if (n <= max_len) return {{0, n}};
  const auto frame = std::max<std::int64_t>(1, std::llround(o.frame_seconds * sample_rate));
  const auto x = mx::astype(samples, mx::float32);
  mx::eval(x);
  const auto db = frame_db(x.data<float>(), n, frame);
  // Loud reference: the 95th percentile frame; quiet frames are pause_below_db under it.
  std::vector<bool> quiet(db.size());
  if (!db.empty()) {
    auto sorted = db;
    const auto k = static_cast<std::size_t>(0.95 * static_cast<double>(sorted.size() - 1));
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
    const double threshold = sorted[k] - o.pause_below_db;
    for (std::size_t f = 0; f < db.size(); ++f) quiet[f] = db[f] < threshold;
  }

  const auto min_len = static_cast<std::int64_t>(std::llround(o.min_seconds * sample_rate));
  // At least one sample of progress per chunk, whatever the rounding of tiny options.
  const auto step =
      std::max<std::int64_t>(1, max_len - std::llround(o.overlap_seconds * sample_rate));
  const auto min_run =
      std::max<std::int64_t>(1, std::llround(o.min_pause_seconds / o.frame_seconds));
  const auto frames = static_cast<std::int64_t>(db.size());
  std::vector<Chunk> out;
  std::int64_t begin = 0;
  while (n - begin > max_len) {
    // Frames wholly inside [begin + min_len, begin + max_len).
    const std::int64_t lo = (begin + min_len + frame - 1) / frame;
    const std::int64_t hi = std::min(frames, (begin + max_len) / frame);
    const std::int64_t f = pause_middle(quiet, lo, hi, min_run);
    const std::int64_t cut = f >= 0 ? f * frame + frame / 2 : -1;
    if (cut > begin) {
      out.push_back({begin, cut});
      begin = cut;
    } else {
      out.push_back({begin, begin + max_len});
      begin += step;
    }
  }
  out.push_back({begin, n});
  return out;
}

namespace {

// An alignment of the two chunks' tokens in their overlap: the most matched pairs, and among
// those the smallest total time difference (so that runs of one repeated token align in place
// rather than shifted by one).
struct Score {
  int matches = 0;
  double cost = 0;
  bool operator>(const Score& o) const {
    return matches != o.matches ? matches > o.matches : cost < o.cost;
  }
};

std::vector<std::pair<std::size_t, std::size_t>> align(const std::vector<TimedToken>& a,
                                                       const std::vector<TimedToken>& b,
                                                       double tolerance) {
  const std::size_t na = a.size(), nb = b.size();
  auto match = [&](std::size_t i, std::size_t j) {
    return a[i].id == b[j].id && std::abs(a[i].time - b[j].time) <= tolerance;
  };
  std::vector<std::vector<Score>> S(na + 1, std::vector<Score>(nb + 1));
  for (std::size_t i = na; i-- > 0;)
    for (std::size_t j = nb; j-- > 0;) {
      Score best = S[i + 1][j] > S[i][j + 1] ? S[i + 1][j] : S[i][j + 1];
      if (match(i, j)) {
        const Score m{S[i + 1][j + 1].matches + 1,
                      S[i + 1][j + 1].cost + std::abs(a[i].time - b[j].time)};
        if (m > best) best = m;
      }
      S[i][j] = best;
    }
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t i = 0, j = 0; i < na && j < nb;) {
    const Score here = S[i][j];
    if (match(i, j) && here.matches == S[i + 1][j + 1].matches + 1 &&
        here.cost == S[i + 1][j + 1].cost + std::abs(a[i].time - b[j].time)) {
      pairs.emplace_back(i++, j++);
    } else if (!(S[i][j + 1] > S[i + 1][j])) {
      ++i;
    } else {
      ++j;
    }
  }
  return pairs;
}

}  // namespace

std::vector<TimedToken> merge_chunks(const std::vector<Chunk>& chunks,
                                     const std::vector<std::vector<TimedToken>>& tokens,
                                     int sample_rate, const MergeOptions& o) {
  if (chunks.size() != tokens.size())
    fail<InvalidArgument>("merge_chunks: {} chunks but {} token lists", chunks.size(),
                          tokens.size());
  if (sample_rate <= 0) fail<InvalidArgument>("merge_chunks: sample_rate must be > 0");
  std::vector<TimedToken> out;
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    const auto& next = tokens[c];
    if (c > 0 && (chunks[c].begin < chunks[c - 1].begin || chunks[c].end < chunks[c - 1].end))
      fail<InvalidArgument>("merge_chunks: chunk {} does not follow chunk {}", c, c - 1);
    if (c == 0 || chunks[c].begin >= chunks[c - 1].end) {  // no overlap: concatenate
      out.insert(out.end(), next.begin(), next.end());
      continue;
    }
    const double ov_begin = static_cast<double>(chunks[c].begin) / sample_rate;
    const double ov_end = static_cast<double>(chunks[c - 1].end) / sample_rate;
    const double middle = 0.5 * (ov_begin + ov_end);
    // Both sides' tokens inside the overlap: out[a0, a1) and next[b0, b1).
    std::size_t a0 = out.size();
    while (a0 > 0 && out[a0 - 1].time >= ov_begin) --a0;
    std::size_t b0 = 0, b1 = 0;
    while (b0 < next.size() && next[b0].time < ov_begin) ++b0;
    b1 = b0;
    while (b1 < next.size() && next[b1].time <= ov_end) ++b1;
    const std::vector<TimedToken> a(out.begin() + static_cast<std::ptrdiff_t>(a0), out.end());
    const std::vector<TimedToken> b(next.begin() + static_cast<std::ptrdiff_t>(b0),
                                    next.begin() + static_cast<std::ptrdiff_t>(b1));
    const auto pairs = align(a, b, o.time_tolerance);
    if (pairs.empty()) {  // nothing agreed (e.g. silence): each side keeps its half
      std::size_t keep = out.size();
      while (keep > 0 && out[keep - 1].time >= middle) --keep;
      out.resize(keep);
      for (const auto& t : next)
        if (t.time >= middle) out.push_back(t);
      continue;
    }
    // Splice at the agreed token nearest the middle, the farthest from both chunks' edges.
    auto best = pairs.front();
    double best_dist = INFINITY;
    for (const auto& [i, j] : pairs) {
      const double d = std::abs(0.5 * (a[i].time + b[j].time) - middle);
      if (d < best_dist) best = {i, j}, best_dist = d;
    }
    out.resize(a0 + best.first + 1);
    out.insert(out.end(), next.begin() + static_cast<std::ptrdiff_t>(b0 + best.second) + 1,
               next.end());
  }
  return out;
}

std::vector<int> merge_untimed(const std::vector<int>& earlier, const std::vector<int>& later,
                               int expected_overlap) {
  const int n = static_cast<int>(earlier.size()), m = static_cast<int>(later.size());
  const int expected = std::clamp(expected_overlap, 0, std::min(n, m));
  // Each shift scores its equal ids less its distance from the expected overlap (in units of
  // that overlap): a long shift gathers chance matches, so the raw count alone misplaces short
  // overlaps (about 1 in 100 of the synthetic cases in tests/audio/test_chunk.cpp).
  int best_k = expected;
  double best_score = 0;
  bool found = false;
  for (int k = 1; k <= std::min(n, m); ++k) {  // later[0, k) against earlier[n - k, n)
    int matches = 0;
    for (int j = 0; j < k; ++j) matches += earlier[n - k + j] == later[j];
    if (matches == 0) continue;
    const double score = matches - std::abs(k - expected) / double(std::max(1, expected));
    if (!found || score > best_score ||
        (score == best_score && std::abs(k - expected) < std::abs(best_k - expected))) {
      found = true;
      best_score = score;
      best_k = k;
    }
  }
  const int mid = best_k / 2;  // the overlap's first `mid` tokens from the earlier chunk
  std::vector<int> out(earlier.begin(), earlier.begin() + (n - best_k + mid));
  out.insert(out.end(), later.begin() + mid, later.end());
  return out;
}

}  // namespace ominix::audio
