// KV caches: semantics checked directly, and step-by-step parity with mlx-lm 0.32.2's caches
// (tests/fixtures/generate/caches.*, from tools/fixtures/gen_generate.py).
#include <memory>
#include <numeric>

#include <gtest/gtest.h>
#include <mlx/ops.h>
#include <mlx/random.h>

#include "fixture.h"
#include "ominix/base/error.h"
#include "ominix/generate/cache.h"
#include "ominix/nn/attention.h"

namespace ominix::generate {
namespace {

using testing::Fixture;
using testing::json;
using testing::same_array;

/// [B, H, L, D] float32 whose entries all equal their absolute position (first + l).
mx::array positions(int first, int L, int B = 1, int H = 2, int D = 4) {
  auto pos = mx::astype(mx::arange(first, first + L), mx::float32);  // [L]
  return mx::broadcast_to(mx::reshape(pos, {1, 1, L, 1}), {B, H, L, D});
}

/// The positions held along the sequence axis of x [B, H, S, D] (read from x[0, 0, :, 0]).
std::vector<int> held(const mx::array& x) {
  auto col =
      mx::contiguous(mx::astype(mx::slice(x, {0, 0, 0, 0}, {1, 1, x.shape(2), 1}), mx::int32));
  mx::eval(col);
  return {col.data<int>(), col.data<int>() + col.size()};
}

std::vector<int> range(int a, int b) {
  std::vector<int> v(static_cast<size_t>(std::max(b - a, 0)));
  std::iota(v.begin(), v.end(), a);
  return v;
}

std::vector<int> concat(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

::testing::AssertionResult same_mask(const nn::AttentionMask& got, const json& want,
                                     const Fixture& f) {
  const auto kind = want.at("kind").get<std::string>();
  if (kind == "none") {
    if (std::holds_alternative<nn::NoMask>(got)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected no mask";
  }
  if (kind == "causal") {
    if (std::holds_alternative<nn::CausalMask>(got)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected the causal mask";
  }
  const auto* a = std::get_if<mx::array>(&got);
  if (!a) return ::testing::AssertionFailure() << "expected an array mask";
  return same_array(*a, f[want.at("name").get<std::string>()]);
}

std::unique_ptr<LayerCache> make_float_cache(const json& spec) {
  if (spec.at("type") == "KVCache") return std::make_unique<KVCache>();
  return std::make_unique<RotatingKVCache>(spec.at("max_size").get<int>(),
                                           spec.at("keep").get<int>());
}

/// Replays one float-cache scenario of the fixture against our cache.
void replay_float(const std::string& name) {
  auto f = Fixture::load("caches");
  const auto& spec = f.meta.at(name);
  auto cache = make_float_cache(spec);
  int i = 0;
  for (const auto& step : spec.at("steps")) {
    SCOPED_TRACE(name + " step " + std::to_string(i++));
    if (step.at("op") == "trim") {
      ASSERT_EQ(cache->is_trimmable(), step.at("trimmable").get<bool>());
      if (cache->is_trimmable()) {
        EXPECT_EQ(cache->trim(step.at("n")), step.at("trimmed").get<int>());
      }
      EXPECT_EQ(cache->offset(), step.at("offset").get<int>());
      continue;
    }
    const int L = step.at("L");
    for (const auto& [mname, want] : step.at("masks").items()) {
      SCOPED_TRACE("mask " + mname);
      MaskOptions opts;
      if (mname == "array") opts.return_array = true;
      if (mname.rfind("window", 0) == 0) opts.window_size = std::stoi(mname.substr(6));
      EXPECT_TRUE(same_mask(cache->make_mask(L, opts), want, f));
    }
    const int before = cache->offset();
    auto [k, v] = cache->update_and_fetch(f[step.at("keys")], f[step.at("values")]);
    EXPECT_EQ(cache->offset(), before + L);
    EXPECT_EQ(cache->offset(), step.at("offset").get<int>());
    EXPECT_EQ(cache->size(), step.at("size").get<int>());
    EXPECT_TRUE(same_array(k, f[step.at("out_keys")]));
    EXPECT_TRUE(same_array(v, f[step.at("out_values")]));
  }
}

// ---------------------------------------------------------------------------------------------
// Parity with mlx-lm.

TEST(CacheParity, KVCacheMatchesMlxLm) {
  replay_float("kv");
}
TEST(CacheParity, RotatingKeep2MatchesMlxLm) {
  replay_float("rot_keep2");
}
TEST(CacheParity, RotatingKeep0MatchesMlxLm) {
  replay_float("rot_keep0");
}
TEST(CacheParity, RotatingLongPrefillMatchesMlxLm) {
  replay_float("rot_long");
}

void replay_quantized(const std::string& name) {
  auto f = Fixture::load("caches");
  const auto& spec = f.meta.at(name);
  QuantizedKVCache cache({.bits = spec.at("bits"), .group_size = spec.at("group_size")});
  int i = 0;
  for (const auto& step : spec.at("steps")) {
    SCOPED_TRACE(name + " step " + std::to_string(i++));
    if (step.at("op") == "trim") {
      EXPECT_EQ(cache.trim(step.at("n")), step.at("trimmed").get<int>());
      EXPECT_EQ(cache.offset(), step.at("offset").get<int>());
      continue;
    }
    const int L = step.at("L");
    auto mask = cache.make_mask(L);
    EXPECT_TRUE(same_mask(mask, step.at("masks").at("default"), f));
    auto [qk, qv] = cache.update_and_fetch_quantized(f[step.at("keys")], f[step.at("values")]);
    EXPECT_EQ(cache.offset(), step.at("offset").get<int>());
    const auto& ok = step.at("out_keys");
    const auto& ov = step.at("out_values");
    EXPECT_TRUE(same_array(qk.data, f[ok[0]]));
    EXPECT_TRUE(same_array(qk.scales, f[ok[1]]));
    EXPECT_TRUE(same_array(qk.biases, f[ok[2]]));
    EXPECT_TRUE(same_array(qv.data, f[ov[0]]));
    EXPECT_TRUE(same_array(qv.scales, f[ov[1]]));
    EXPECT_TRUE(same_array(qv.biases, f[ov[2]]));

    // Attention over the quantized cache, against mlx-lm's quantized_scaled_dot_product_attention.
    auto q = f[step.at("queries")];
    const float scale = step.at("scale");
    EXPECT_LE(testing::max_abs_diff(quantized_sdpa(q, qk, qv, scale, mask), f[step.at("sdpa")]),
              1e-5);
    if (step.contains("window_mask")) {
      auto out = quantized_sdpa(q, qk, qv, scale, f[step.at("window_mask")]);
      EXPECT_LE(testing::max_abs_diff(out, f[step.at("sdpa_window")]), 1e-5);
    }
  }
}

TEST(CacheParity, QuantizedKVCache8BitMatchesMlxLm) {
  replay_quantized("quant8");
}
TEST(CacheParity, QuantizedKVCache4BitMatchesMlxLm) {
  replay_quantized("quant4");
}

// ---------------------------------------------------------------------------------------------
// Growing cache.

TEST(KVCache, OffsetAdvancesByLAndReturnsEverything) {
  KVCache cache;
  EXPECT_TRUE(cache.empty());
  int offset = 0;
  for (int L : {5, 1, 1, 250, 1, 300, 2}) {
    auto [k, v] = cache.update_and_fetch(positions(offset, L), positions(offset, L));
    offset += L;
    ASSERT_EQ(cache.offset(), offset);
    EXPECT_EQ(k.shape(), (mx::Shape{1, 2, offset, 4}));
    EXPECT_EQ(held(k), range(0, offset));
    EXPECT_EQ(held(v), range(0, offset));
  }
  // Preallocated: capacity grows by whole steps of 256 past the offset where it ran out.
  EXPECT_GE(cache.state()[0].shape(2), offset);
  EXPECT_LT(cache.state()[0].shape(2), offset + 256);
  EXPECT_EQ(cache.nbytes(), 2u * cache.state()[0].nbytes());
}

TEST(KVCache, TrimDropsTheLastPositions) {
  KVCache cache;
  cache.update_and_fetch(positions(0, 10), positions(0, 10));
  EXPECT_TRUE(cache.is_trimmable());
  EXPECT_EQ(cache.trim(3), 3);
  EXPECT_EQ(cache.offset(), 7);
  // Overwrites from position 7 on: the trimmed entries never come back.
  auto [k, v] = cache.update_and_fetch(positions(100, 2), positions(100, 2));
  EXPECT_EQ(held(k), concat(range(0, 7), {100, 101}));
  EXPECT_EQ(cache.trim(100), 9);
  EXPECT_EQ(cache.offset(), 0);
  EXPECT_EQ(cache.trim(-1), 0);
}

TEST(KVCache, DifferentValueDim) {
  KVCache cache;
  auto [k, v] = cache.update_and_fetch(mx::zeros({2, 3, 4, 8}), mx::ones({2, 3, 4, 5}));
  EXPECT_EQ(k.shape(), (mx::Shape{2, 3, 4, 8}));
  EXPECT_EQ(v.shape(), (mx::Shape{2, 3, 4, 5}));
  EXPECT_THROW(cache.update_and_fetch(mx::zeros({2, 3, 4}), mx::zeros({2, 3, 4})), InvalidArgument);
}

TEST(KVCache, Masks) {
  KVCache cache;
  EXPECT_TRUE(std::holds_alternative<nn::CausalMask>(cache.make_mask(4)));
  EXPECT_TRUE(std::holds_alternative<nn::NoMask>(cache.make_mask(1)));
  cache.update_and_fetch(positions(0, 4), positions(0, 4));
  auto m = cache.make_mask(3, {.return_array = true});
  ASSERT_TRUE(std::holds_alternative<mx::array>(m));
  EXPECT_TRUE(same_array(std::get<mx::array>(m), nn::causal_mask(3, 4)));
  auto w = cache.make_mask(1, {.window_size = 2});
  ASSERT_TRUE(std::holds_alternative<mx::array>(w));
  EXPECT_TRUE(same_array(std::get<mx::array>(w), nn::causal_mask(1, 4, 2)));
}

TEST(KVCache, UpdateAndAttendEqualsSdpaOverEverything) {
  mx::random::seed(3);
  KVCache cache;
  auto k1 = mx::random::normal({1, 2, 5, 16}), v1 = mx::random::normal({1, 2, 5, 16});
  auto q1 = mx::random::normal({1, 4, 5, 16});
  auto out1 = cache.update_and_attend(q1, k1, v1, 0.25f, cache.make_mask(5));
  EXPECT_LE(testing::max_abs_diff(out1, nn::sdpa(q1, k1, v1, 0.25f, nn::CausalMask{})), 1e-6);
  auto k2 = mx::random::normal({1, 2, 1, 16}), v2 = mx::random::normal({1, 2, 1, 16});
  auto q2 = mx::random::normal({1, 4, 1, 16});
  auto out2 = cache.update_and_attend(q2, k2, v2, 0.25f, cache.make_mask(1));
  auto ref = nn::sdpa(q2, mx::concatenate({k1, k2}, 2), mx::concatenate({v1, v2}, 2), 0.25f);
  EXPECT_LE(testing::max_abs_diff(out2, ref), 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Rotating cache.

TEST(RotatingKVCache, SingleTokenUpdatesKeepThePrefixAndTheLatestWindow) {
  const int max_size = 6, keep = 2;
  RotatingKVCache cache(max_size, keep);
  for (int t = 0; t < 20; ++t) {
    auto [k, v] = cache.update_and_fetch(positions(t, 1), positions(t, 1));
    const int offset = t + 1;
    ASSERT_EQ(cache.offset(), offset);
    EXPECT_EQ(cache.size(), std::min(offset, max_size));
    ASSERT_EQ(k.shape(2), std::min(offset, max_size));
    auto got = held(k);
    std::sort(got.begin(), got.end());  // held in rotated order
    auto want = offset <= max_size
                    ? range(0, offset)
                    : concat(range(0, keep), range(offset - (max_size - keep), offset));
    EXPECT_EQ(got, want) << "offset " << offset;
    EXPECT_EQ(held(v), held(k));
  }
}

TEST(RotatingKVCache, MultiTokenUpdateAfterRotationIsInTemporalOrder) {
  const int max_size = 6, keep = 2;
  RotatingKVCache cache(max_size, keep);
  int offset = 0;
  for (; offset < 9; ++offset) cache.update_and_fetch(positions(offset, 1), positions(offset, 1));
  // Wrapped: a prefill of 3 sees keep + the last max_size - 1 - keep old positions + the new.
  auto [k, v] = cache.update_and_fetch(positions(offset, 3), positions(offset, 3));
  EXPECT_EQ(held(k), concat(concat(range(0, keep), range(offset - (max_size - 1 - keep), offset)),
                            range(offset, offset + 3)));
  offset += 3;
  EXPECT_EQ(cache.offset(), offset);
  // The next single token trims back to max_size and keeps rotating.
  auto [k2, v2] = cache.update_and_fetch(positions(offset, 1), positions(offset, 1));
  auto got = held(k2);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, concat(range(0, keep), range(offset + 1 - (max_size - keep), offset + 1)));
}

TEST(RotatingKVCache, TrimOnlyBeforeTheWindowFills) {
  RotatingKVCache cache(8, 2);
  cache.update_and_fetch(positions(0, 3), positions(0, 3));
  ASSERT_TRUE(cache.is_trimmable());
  EXPECT_EQ(cache.trim(1), 1);
  auto [k, v] = cache.update_and_fetch(positions(50, 1), positions(50, 1));
  EXPECT_EQ(held(k), (std::vector<int>{0, 1, 50}));
  cache.update_and_fetch(positions(0, 6), positions(0, 6));
  EXPECT_FALSE(cache.is_trimmable());
  EXPECT_THROW(RotatingKVCache(4, 4), InvalidArgument);
}

TEST(RotatingKVCache, MaskOfAPrefillIsWindowedOnceItOverflows) {
  RotatingKVCache cache(4, 0);
  EXPECT_TRUE(std::holds_alternative<nn::CausalMask>(cache.make_mask(4)));
  auto m = cache.make_mask(5);
  ASSERT_TRUE(std::holds_alternative<mx::array>(m));
  EXPECT_TRUE(same_array(std::get<mx::array>(m), nn::causal_mask(5, 0, 4)));
}

// ---------------------------------------------------------------------------------------------
// Quantized cache.

/// The affine bound: per group of `gs`, |x - dequant(x)| <= step = (max - min) / (2^bits - 1).
/// Half a step for a plain min/max grid; MLX snaps the grid so that 0 is exact (scale = edge / q0
/// with the larger-magnitude extreme as edge), which can cost up to a whole step (measured max
/// 0.99 step over 20000 random groups).
void expect_within_affine_bound(const mx::array& x, const mx::array& deq, int bits, int gs) {
  auto shape = x.shape();
  shape.back() /= gs;
  shape.push_back(gs);
  auto g = mx::reshape(x, shape);  // [..., D] -> [..., D/gs, gs]
  auto err = mx::reshape(mx::abs(mx::subtract(deq, x)), shape);
  auto step = mx::divide(mx::subtract(mx::max(g, -1, true), mx::min(g, -1, true)),
                         mx::array(static_cast<float>((1 << bits) - 1)));
  auto bound = mx::add(mx::multiply(step, mx::array(1.001f)), mx::array(1e-5f));
  EXPECT_TRUE(mx::all(mx::less_equal(err, bound)).item<bool>())
      << "max error " << mx::max(err).item<float>() << ", bits " << bits;
}

TEST(QuantizedKVCache, RoundTripWithinTheAffineBound) {
  mx::random::seed(11);
  for (int bits : {8, 4}) {
    QuantizedKVCache cache({.bits = bits, .group_size = 64});
    auto k = mx::random::normal({2, 2, 7, 128});
    auto v = mx::multiply(mx::random::normal({2, 2, 7, 64}), mx::array(3.0f));
    auto [dk, dv] = cache.update_and_fetch(k, v);
    EXPECT_EQ(cache.offset(), 7);
    EXPECT_EQ(dk.shape(), k.shape());
    EXPECT_EQ(dv.shape(), v.shape());
    expect_within_affine_bound(k, dk, bits, 64);
    expect_within_affine_bound(v, dv, bits, 64);
  }
}

/// ||a - b|| / ||b|| over all entries.
double relative_error(const mx::array& a, const mx::array& b) {
  auto num = mx::sqrt(mx::sum(mx::square(mx::subtract(a, b))));
  auto den = mx::sqrt(mx::sum(mx::square(b)));
  return mx::divide(num, den).item<float>();
}

TEST(QuantizedKVCache, AttentionCloseToFloatAttention) {
  mx::random::seed(5);
  // Relative error of the output. N(0, 1) groups of 64 span ~5: a step of 5/255 (8-bit) or 5/15
  // (4-bit) gives errors of std step/sqrt(12) ~ 0.6% / 10%; allowed: about 3x / 2.5x that.
  for (auto [bits, tol] : {std::pair{8, 0.02}, std::pair{4, 0.25}}) {
    SCOPED_TRACE("bits " + std::to_string(bits));
    QuantizedKVCache qcache({.bits = bits, .group_size = 64});
    KVCache fcache;
    for (int L : {9, 1, 1, 4}) {
      auto k = mx::random::normal({1, 2, L, 64}), v = mx::random::normal({1, 2, L, 64});
      auto q = mx::random::normal({1, 6, L, 64});  // GQA: 3 query heads per kv head
      const float scale = 0.125f;
      auto mask = fcache.make_mask(L);
      auto got = qcache.update_and_attend(q, k, v, scale, qcache.make_mask(L));
      auto want = fcache.update_and_attend(q, k, v, scale, mask);
      EXPECT_EQ(got.shape(), (mx::Shape{1, 6, L, 64}));
      EXPECT_LE(relative_error(got, want), tol) << "max abs " << testing::max_abs_diff(got, want);
    }
  }
}

TEST(QuantizedKVCache, ExplicitPerHeadMaskWithGqa) {
  mx::random::seed(8);
  auto k = mx::random::normal({1, 2, 6, 64}), v = mx::random::normal({1, 2, 6, 64});
  auto q = mx::random::normal({1, 4, 6, 64});
  auto qk = QuantizedTensor::quantize(k, {.bits = 8});
  auto qv = QuantizedTensor::quantize(v, {.bits = 8});
  // A different mask per query head: [1, 4, 6, 6].
  auto base = nn::causal_mask(6);
  auto mask = mx::stack({base, nn::causal_mask(6, 0, 2), base, nn::causal_mask(6, 0, 3)}, 0);
  mask = mx::expand_dims(mask, 0);
  auto got = quantized_sdpa(q, qk, qv, 0.125f, mask);
  auto want = nn::sdpa(q, qk.dequantize(), qv.dequantize(), 0.125f, mask);
  EXPECT_LE(testing::max_abs_diff(got, want), 1e-4);
}

TEST(QuantizedKVCache, FromGrowingCacheAndTrim) {
  mx::random::seed(2);
  KVCache cache;
  auto k = mx::random::normal({1, 2, 5, 64});
  cache.update_and_fetch(k, k);
  auto q = cache.to_quantized({.bits = 8});
  EXPECT_EQ(q->offset(), 5);
  auto [dk, dv] = q->update_and_fetch(mx::zeros({1, 2, 1, 64}), mx::zeros({1, 2, 1, 64}));
  EXPECT_EQ(dk.shape(2), 6);
  expect_within_affine_bound(k, mx::slice(dk, {0, 0, 0, 0}, {1, 2, 5, 64}), 8, 64);
  EXPECT_EQ(q->trim(2), 2);
  EXPECT_EQ(q->offset(), 4);
  EXPECT_THROW(q->update_and_fetch(mx::zeros({1, 2, 1, 48}), mx::zeros({1, 2, 1, 48})),
               InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// The whole-model container.

TEST(Cache, FactoryPicksTheKind) {
  auto plain = Cache::make(3);
  EXPECT_EQ(plain.num_layers(), 3u);
  EXPECT_NE(dynamic_cast<KVCache*>(&plain[0]), nullptr);
  auto rot = Cache::make(2, {.max_kv_size = 16});
  auto* r = dynamic_cast<RotatingKVCache*>(&rot[1]);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->max_size(), 16);
  EXPECT_EQ(r->keep(), 4);
  auto quant = Cache::make(2, {.kv_bits = 4, .kv_group_size = 32});
  auto* qc = dynamic_cast<QuantizedKVCache*>(&quant[0]);
  ASSERT_NE(qc, nullptr);
  EXPECT_EQ(qc->quantization().bits, 4);
  EXPECT_EQ(qc->quantization().group_size, 32);
  EXPECT_THROW(Cache::make(1, {.max_kv_size = 8, .kv_bits = 8}), UnsupportedError);
  EXPECT_THROW(Cache::make(1, {.kv_bits = 3}), InvalidArgument);
}

TEST(Cache, TrimAcrossLayersAndClone) {
  auto cache = Cache::make(3);
  for (size_t l = 0; l < cache.num_layers(); ++l)
    cache[l].update_and_fetch(positions(0, 8), positions(0, 8));
  EXPECT_EQ(cache.offset(), 8);
  auto snapshot = cache.clone();
  EXPECT_EQ(cache.trim(3), 3);
  for (size_t l = 0; l < cache.num_layers(); ++l) EXPECT_EQ(cache[l].offset(), 5);
  EXPECT_EQ(snapshot.offset(), 8);  // the clone is independent
  auto [k, v] = snapshot[1].update_and_fetch(positions(8, 1), positions(8, 1));
  EXPECT_EQ(held(k), range(0, 9));
  EXPECT_EQ(cache.state().size(), 6u);
}

TEST(Cache, FullRotatingCacheRefusesTrim) {
  auto cache = Cache::make(2, {.max_kv_size = 4, .keep = 0});
  for (size_t l = 0; l < 2; ++l) cache[l].update_and_fetch(positions(0, 5), positions(0, 5));
  EXPECT_FALSE(cache.is_trimmable());
  EXPECT_EQ(cache.trim(2), 0);
  EXPECT_EQ(cache.offset(), 5);
}

TEST(Cache, QuantizeFromAStartOffset) {
  auto cache = Cache::make(2);
  cache[0].update_and_fetch(mx::zeros({1, 1, 4, 64}), mx::zeros({1, 1, 4, 64}));
  cache.quantize({.bits = 8}, 4);  // layer 1 is still empty: offset 0 < 4
  EXPECT_NE(dynamic_cast<QuantizedKVCache*>(&cache[0]), nullptr);
  EXPECT_NE(dynamic_cast<KVCache*>(&cache[1]), nullptr);
  EXPECT_EQ(cache[0].offset(), 4);
}

}  // namespace
}  // namespace ominix::generate
