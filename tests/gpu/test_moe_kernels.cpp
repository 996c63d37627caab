// MoE kernels (core/nn/moe.cpp): the fused router and combine against the plain-ops path on the
// same GPU, over many shapes and dtypes (skipped where MLX has no GPU), and the plain path's own
// semantics (tie-breaking, groups, weights) on the CPU.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "ominix/base/device.h"
#include "ominix/base/error.h"
#include "ominix/nn/moe.h"
#include "ominix/nn/switch.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;

namespace {

std::vector<uint32_t> to_u32(const mx::array& a) {
  auto c = mx::contiguous(mx::astype(a, mx::uint32, mx::Device::cpu), false, mx::Device::cpu);
  mx::eval(c);
  return {c.data<uint32_t>(), c.data<uint32_t>() + c.size()};
}

std::vector<float> to_f32(const mx::array& a) {
  auto c = mx::contiguous(mx::astype(a, mx::float32, mx::Device::cpu), false, mx::Device::cpu);
  mx::eval(c);
  return {c.data<float>(), c.data<float>() + c.size()};
}

std::string name(nn::Routing r) {
  switch (r) {
    case nn::Routing::softmax:
      return "softmax";
    case nn::Routing::softmax_topk:
      return "softmax_topk";
    case nn::Routing::sigmoid_grouped:
      return "sigmoid_grouped";
  }
  return "?";
}

// Graph nodes (arrays with a primitive) reachable from `outputs` and not yet evaluated.
int count_nodes(const std::vector<mx::array>& outputs) {
  std::unordered_set<std::uintptr_t> seen;
  std::vector<mx::array> stack(outputs.begin(), outputs.end());
  int n = 0;
  while (!stack.empty()) {
    auto a = stack.back();
    stack.pop_back();
    if (!seen.insert(a.id()).second || !a.has_primitive()) continue;
    ++n;
    for (const auto& in : a.inputs()) stack.push_back(in);
  }
  return n;
}

// --- the plain path on the CPU ------------------------------------------------------------------

class MoePlain : public ::testing::Test {
 protected:
  void SetUp() override { set_device(DeviceKind::cpu); }
};

TEST_F(MoePlain, TiesGoToTheLowerIndexBestFirst) {
  auto logits = mx::array({1.0f, 3.0f, 3.0f, 2.0f, 3.0f, 0.0f}, {1, 6});
  for (auto r : {nn::Routing::softmax, nn::Routing::softmax_topk}) {
    auto routes = nn::route(logits, {.routing = r, .top_k = 4, .path = nn::KernelPath::plain});
    EXPECT_EQ(to_u32(routes.indices), (std::vector<uint32_t>{1, 2, 4, 3})) << name(r);
  }
}

TEST_F(MoePlain, SoftmaxWeights) {
  const std::vector<float> l{0.5f, -1.0f, 2.0f, 1.0f};
  auto logits = mx::array(l.data(), {1, 4});
  double z = 0;
  for (float v : l) z += std::exp(double(v));
  auto raw = nn::route(
      logits, {.routing = nn::Routing::softmax, .top_k = 2, .path = nn::KernelPath::plain});
  EXPECT_EQ(to_u32(raw.indices), (std::vector<uint32_t>{2, 3}));
  auto w = to_f32(raw.weights);
  EXPECT_NEAR(w[0], std::exp(2.0) / z, 1e-6);
  EXPECT_NEAR(w[1], std::exp(1.0) / z, 1e-6);
  for (auto r : {nn::Routing::softmax, nn::Routing::softmax_topk}) {
    auto norm = nn::route(
        logits, {.routing = r, .top_k = 2, .norm_topk_prob = true, .path = nn::KernelPath::plain});
    auto wn = to_f32(norm.weights);
    EXPECT_NEAR(wn[0], std::exp(2.0) / (std::exp(2.0) + std::exp(1.0)), 1e-6) << name(r);
    EXPECT_NEAR(wn[0] + wn[1], 1.0, 1e-6) << name(r);
  }
  EXPECT_EQ(raw.weights.dtype(), mx::float32);
  EXPECT_EQ(raw.indices.dtype(), mx::uint32);
}

TEST_F(MoePlain, SigmoidGroupedKeepsTheBestGroups) {
  // 8 experts in 4 groups of 2, keep 2 groups. The bias moves the choice, not the weights.
  const std::vector<float> l{0.0f, 0.1f, 3.0f, -3.0f, 1.0f, 1.0f, -1.0f, 2.5f};
  std::vector<float> b(8, 0.0f);
  b[3] = 10.0f;  // group 1 (experts 2, 3) scores sigmoid(3) + sigmoid(-3) + 10: kept
  auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  auto routes = nn::route(mx::array(l.data(), {1, 1, 8}),
                          {.routing = nn::Routing::sigmoid_grouped,
                           .top_k = 3,
                           .norm_topk_prob = true,
                           .n_group = 4,
                           .topk_group = 2,
                           .routed_scaling_factor = 2.5f,
                           .path = nn::KernelPath::plain},
                          mx::array(b.data(), {8}));
  // Groups: g0 = s(0)+s(.1) = 1.025, g1 = 11, g2 = 2 s(1) = 1.462, g3 = s(-1)+s(2.5) = 1.193.
  // Kept g1, g2 -> experts 2, 3, 4, 5; by choice: 3 (10.05), 2, then 4 and 5 tie -> 4.
  EXPECT_EQ(to_u32(routes.indices), (std::vector<uint32_t>{3, 2, 4}));
  auto w = to_f32(routes.weights);
  const double s = sig(-3) + sig(3) + sig(1);
  EXPECT_NEAR(w[0], 2.5 * sig(-3) / s, 1e-6);
  EXPECT_NEAR(w[1], 2.5 * sig(3) / s, 1e-6);
  EXPECT_NEAR(w[2], 2.5 * sig(1) / s, 1e-6);
}

TEST_F(MoePlain, GroupTiesGoToTheLowerGroup) {
  // Groups 0 and 2 score the same; with one kept, group 0 wins.
  const std::vector<float> l{1.0f, 0.0f, -2.0f, -2.0f, 1.0f, 0.0f, -2.0f, -2.0f};
  auto routes = nn::route(mx::array(l.data(), {1, 8}),
                          {.routing = nn::Routing::sigmoid_grouped,
                           .top_k = 2,
                           .n_group = 4,
                           .topk_group = 1,
                           .path = nn::KernelPath::plain},
                          mx::zeros({8}));
  EXPECT_EQ(to_u32(routes.indices), (std::vector<uint32_t>{0, 1}));
}

TEST_F(MoePlain, CombineIsTheWeightedSumInYsDtype) {
  auto y = mx::astype(mx::array({1.0f, 2.0f, 10.0f, 20.0f, -1.0f, 4.0f}, {1, 3, 2}),
                      mx::bfloat16);  // [1,k=3,D=2]
  auto w = mx::array({0.5f, 0.25f, 1.0f}, {1, 3});
  auto out = nn::combine_experts(y, w, nn::KernelPath::plain);
  EXPECT_EQ(out.dtype(), mx::bfloat16);
  EXPECT_EQ(out.shape(), (mx::Shape{1, 2}));
  EXPECT_EQ(to_f32(out), (std::vector<float>{2.0f, 10.0f}));
}

TEST_F(MoePlain, BadArgumentsAreNamed) {
  auto logits = mx::zeros({2, 8});
  EXPECT_THROW(nn::route(logits, {.top_k = 9}), InvalidArgument);
  EXPECT_THROW(nn::route(logits, {.routing = nn::Routing::sigmoid_grouped, .top_k = 2}),
               InvalidArgument);  // no bias
  EXPECT_THROW(
      nn::route(logits, {.routing = nn::Routing::sigmoid_grouped, .top_k = 2, .n_group = 3},
                mx::zeros({8})),
      InvalidArgument);
  EXPECT_THROW(nn::combine_experts(mx::zeros({2, 3, 4}), mx::zeros({2, 4})), InvalidArgument);
}

TEST_F(MoePlain, FusedNeedsAGpu) {
  EXPECT_FALSE(nn::use_fused_moe(nn::KernelPath::automatic));
  EXPECT_THROW(nn::use_fused_moe(nn::KernelPath::fused), UnsupportedError);
}

// Without a GPU the router with its logits is left to the caller (nullopt), and route_linear is
// route(gate(x)) exactly.
TEST_F(MoePlain, RouteGateIsTheCallersOnTheCpu) {
  auto x = mx::random::normal({1, 3, 64});
  auto w = mx::random::normal({16, 64});
  const nn::RouterOptions o{.routing = nn::Routing::softmax, .top_k = 4, .norm_topk_prob = true};
  EXPECT_FALSE(nn::route_gate(x, w, mx::float32, o).has_value());
  const nn::LinearLayer gate(nn::Linear{w, std::nullopt});
  auto got = nn::route_linear(x, gate, o);
  auto want = nn::route(gate(x), o);
  mx::eval(got.indices, got.weights, want.indices, want.weights);
  EXPECT_EQ(to_u32(got.indices), to_u32(want.indices));
  EXPECT_EQ(to_f32(got.weights), to_f32(want.weights));
  EXPECT_THROW(nn::route_gate(x, mx::zeros({16, 32}), mx::float32, o), InvalidArgument);  // D
  EXPECT_THROW(nn::route_gate(x, w, mx::float32, {.top_k = 17}), InvalidArgument);
}

// The graph nodes one MoE layer's router and combine add at decode (Qwen3-30B-A3B: E 128, k 8).
TEST_F(MoePlain, NodeCounts) {
  auto logits = mx::random::normal({1, 1, 128});
  auto y = mx::random::normal({1, 1, 8, 2048});
  mx::eval(logits, y);
  for (auto r : {nn::Routing::softmax, nn::Routing::softmax_topk, nn::Routing::sigmoid_grouped}) {
    auto routes = nn::route(
        logits, {.routing = r, .top_k = 8, .norm_topk_prob = true, .path = nn::KernelPath::plain},
        mx::zeros({128}));
    auto out = nn::combine_experts(y, routes.weights, nn::KernelPath::plain);
    const int router = count_nodes({routes.indices, routes.weights});
    const int total = count_nodes({out, routes.indices});
    RecordProperty("plain_router_nodes_" + name(r), router);
    RecordProperty("plain_router_and_combine_nodes_" + name(r), total);
    std::printf("plain %s: router %d nodes, router + combine %d\n", name(r).c_str(), router, total);
  }
}

// The long-prompt route of quantized experts (dequantized, then gather_mm; taken on CUDA from
// OMINIX_MOE_DEQUANT_PAIRS pairs on) computes what gather_qmm computes: both on the CPU here, for
// sorted and unsorted pairs, 4 and 8 bits.
TEST_F(MoePlain, DequantizedExpertsEqualGatherQmm) {
  const int E = 8, in = 128, out = 96, pairs = 40;
  for (int bits : {4, 8}) {
    auto q =
        mx::quantize(mx::multiply(mx::random::normal({E, out, in}), mx::array(0.05f)), 64, bits);
    nn::SwitchLinear lin{q[0], q[1], q[2], io::QuantSpec{64, bits, io::QuantMode::affine}};
    auto x = mx::random::normal({pairs, 1, in});
    auto idx = mx::astype(mx::random::randint(0, E, {pairs}), mx::uint32);
    for (bool sorted : {false, true}) {
      SCOPED_TRACE(::testing::Message() << bits << " bits, sorted " << sorted);
      auto ids = sorted ? mx::sort(idx) : idx;
      auto want = lin(x, ids, sorted);
      auto got = lin(x, ids, sorted, std::nullopt, /*dequantized=*/true);
      ASSERT_EQ(got.shape(), want.shape());
      EXPECT_LE(tests::diff(got, want).rel, 1e-5);
    }
  }
}

// --- fused against plain on the GPU -------------------------------------------------------------

class MoeGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gpu_available()) GTEST_SKIP() << "no GPU (MLX backend: " << mlx_backend() << ")";
    set_device(DeviceKind::gpu);
    mx::random::seed(4321);
  }
  void TearDown() override { set_device(DeviceKind::cpu); }
};

struct RouterCase {
  nn::Routing routing;
  int E, k;
  bool norm;
  int n_group = 1, topk_group = 1;
  float scale = 1.0f;
};

// Routes of one router on two paths: identical indices in the same order, weights within `atol`.
// Returns the number of rows compared.
int compare_routes(const nn::Routes& plain, const nn::Routes& fused, int k, double atol) {
  mx::eval({plain.indices, plain.weights, fused.indices, fused.weights});
  EXPECT_EQ(fused.indices.shape(), plain.indices.shape());
  EXPECT_EQ(fused.weights.shape(), plain.weights.shape());
  EXPECT_EQ(fused.indices.dtype(), mx::uint32);
  EXPECT_EQ(fused.weights.dtype(), mx::float32);
  const auto pi = to_u32(plain.indices), fi = to_u32(fused.indices);
  const auto pw = to_f32(plain.weights), fw = to_f32(fused.weights);
  const int rows = int(pi.size()) / k;
  int bad_sets = 0, bad_order = 0, bad_weights = 0;
  double max_err = 0;
  for (int r = 0; r < rows; ++r) {
    std::vector<uint32_t> a(pi.begin() + r * k, pi.begin() + (r + 1) * k);
    std::vector<uint32_t> b(fi.begin() + r * k, fi.begin() + (r + 1) * k);
    bad_order += a != b;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    bad_sets += a != b;
    if (a != b) continue;
    for (int j = 0; j < k; ++j) {
      const double e = std::abs(double(pw[r * k + j]) - fw[r * k + j]);
      max_err = std::max(max_err, e);
      bad_weights += !(e <= atol);
    }
  }
  EXPECT_EQ(bad_sets, 0) << "rows whose expert sets differ, of " << rows;
  EXPECT_EQ(bad_order, 0) << "rows whose expert order differs, of " << rows;
  EXPECT_EQ(bad_weights, 0) << "weights off by more than " << atol << "; max " << max_err;
  return rows;
}

// Compares the fused router with the plain one on the same GPU (compare_routes).
int compare_router(const RouterCase& c, const mx::Shape& lead, mx::Dtype dtype, float spread) {
  auto shape = lead;
  shape.push_back(c.E);
  auto logits = mx::astype(mx::multiply(mx::random::normal(shape), mx::array(spread)), dtype);
  auto bias = mx::multiply(mx::random::normal({c.E}), mx::array(0.1f));
  nn::RouterOptions o{.routing = c.routing,
                      .top_k = c.k,
                      .norm_topk_prob = c.norm,
                      .n_group = c.n_group,
                      .topk_group = c.topk_group,
                      .routed_scaling_factor = c.scale};
  auto ob =
      c.routing == nn::Routing::sigmoid_grouped ? std::optional<mx::array>(bias) : std::nullopt;
  o.path = nn::KernelPath::plain;
  auto plain = nn::route(logits, o, ob);
  o.path = nn::KernelPath::fused;
  auto fused = nn::route(logits, o, ob);
  // MLX's CUDA softmax uses __expf (a few ulp per exp); the kernel uses expf.
  return compare_routes(plain, fused, c.k, 1e-5 * std::max(1.0f, c.scale));
}

TEST_F(MoeGpu, RouterFusedEqualsPlain) {
  using R = nn::Routing;
  const std::vector<RouterCase> cases{
      {R::softmax, 8, 1, false},
      {R::softmax, 8, 2, true},
      {R::softmax, 60, 4, true},
      {R::softmax, 64, 6, false},
      {R::softmax, 128, 8, true},
      {R::softmax, 160, 8, false},
      {R::softmax, 33, 3, true},
      {R::softmax_topk, 8, 2, true},
      {R::softmax_topk, 16, 1, true},
      {R::softmax_topk, 128, 8, true},
      {R::softmax_topk, 160, 6, true},
      // GLM-4.5 / Air: one group; DeepSeek-like groups; GLM fixture-like 8 experts in 4 groups.
      {R::sigmoid_grouped, 128, 8, true, 1, 1, 1.0f},
      {R::sigmoid_grouped, 160, 8, true, 1, 1, 2.5f},
      {R::sigmoid_grouped, 8, 2, true, 4, 2, 2.5f},
      {R::sigmoid_grouped, 64, 6, false, 8, 4, 1.0f},
      {R::sigmoid_grouped, 160, 8, true, 8, 3, 2.5f},
      {R::sigmoid_grouped, 96, 4, true, 32, 4, 1.5f},
      {R::sigmoid_grouped, 16, 1, false, 2, 1, 1.0f},
  };
  const std::vector<mx::Shape> leads{{1, 1}, {1, 7}, {3, 37}, {1, 512}, {5}};
  int rows = 0;
  for (auto dt : {mx::float32, mx::bfloat16, mx::float16})
    for (const auto& c : cases)
      for (const auto& lead : leads) {
        SCOPED_TRACE(
            name(c.routing) + " E " + std::to_string(c.E) + " k " + std::to_string(c.k) +
            " groups " + std::to_string(c.n_group) + "/" + std::to_string(c.topk_group) +
            " dtype " + std::to_string(int(dt.val())) + " rows " +
            std::to_string(std::accumulate(lead.begin(), lead.end(), 1, std::multiplies<int>())));
        rows += compare_router(c, lead, dt, 2.0f);
      }
  RecordProperty("rows_compared", rows);
}

// bf16 logits near each other: many exact ties, which both paths must break alike.
TEST_F(MoeGpu, RouterTiesBreakAlike) {
  using R = nn::Routing;
  for (const auto& c : std::vector<RouterCase>{{R::softmax, 128, 8, true},
                                               {R::softmax_topk, 8, 2, true},
                                               {R::sigmoid_grouped, 160, 8, true, 8, 3, 2.5f}})
    for (auto dt : {mx::bfloat16, mx::float16}) {
      SCOPED_TRACE(name(c.routing));
      compare_router(c, {4, 128}, dt, 0.02f);
    }
  // Every logit equal: the first k experts, in order.
  auto logits = mx::zeros({3, 64}, mx::bfloat16);
  auto fused =
      nn::route(logits, {.routing = R::softmax, .top_k = 4, .path = nn::KernelPath::fused});
  auto idx = to_u32(fused.indices);
  for (int r = 0; r < 3; ++r)
    EXPECT_EQ(std::vector<uint32_t>(idx.begin() + 4 * r, idx.begin() + 4 * r + 4),
              (std::vector<uint32_t>{0, 1, 2, 3}));
}

// The router with its logits in one kernel (route_gate) against the plain path: the matmul on the
// same GPU, then route(). x and the gate hold multiples of 1/32 below 1/4 in magnitude, so every
// product and every partial sum is exact in float32 and both paths get the same logits, ties
// included, whatever their order of summation: indices must match exactly.
TEST_F(MoeGpu, GateRouteFusedEqualsPlain) {
  using R = nn::Routing;
  struct Case {
    RouterCase router;
    int D;
    mx::Dtype x_dtype, w_dtype, logits_dtype;
  };
  const auto bf = mx::bfloat16, f16 = mx::float16, f32 = mx::float32;
  const std::vector<Case> cases{
      {{R::softmax, 128, 8, true}, 2048, bf, bf, bf},                       // Qwen3-30B-A3B
      {{R::softmax_topk, 8, 2, true}, 4096, bf, bf, bf},                    // Mixtral-8x7B
      {{R::sigmoid_grouped, 128, 8, true, 1, 1, 1.0f}, 4096, bf, bf, f32},  // GLM-4.5-Air
      {{R::sigmoid_grouped, 160, 8, true, 8, 3, 2.5f}, 1024, bf, f32, f32},
      {{R::softmax, 60, 4, false}, 256, f16, f16, f16},
      {{R::softmax_topk, 33, 3, true}, 512, f32, f32, f32},
  };
  auto multiples = [](const mx::Shape& shape, mx::Dtype dt) {  // k / 32, |k| <= 8
    auto k = mx::clip(mx::round(mx::multiply(mx::random::normal(shape), mx::array(3.0f))),
                      mx::array(-8.0f), mx::array(8.0f));
    return mx::astype(mx::divide(k, mx::array(32.0f)), dt);
  };
  for (const auto& c : cases)
    for (int rows : {1, 3, 16}) {
      const auto& rc = c.router;
      SCOPED_TRACE(
          fmt::format("{} E {} k {} D {} rows {}", name(rc.routing), rc.E, rc.k, c.D, rows));
      auto x = multiples({1, rows, c.D}, c.x_dtype);
      auto w = multiples({rc.E, c.D}, c.w_dtype);
      auto bias = mx::multiply(mx::random::normal({rc.E}), mx::array(0.1f));
      mx::eval(x, w, bias);
      nn::RouterOptions o{.routing = rc.routing,
                          .top_k = rc.k,
                          .norm_topk_prob = rc.norm,
                          .n_group = rc.n_group,
                          .topk_group = rc.topk_group,
                          .routed_scaling_factor = rc.scale,
                          .path = nn::KernelPath::fused};
      auto ob = rc.routing == R::sigmoid_grouped ? std::optional<mx::array>(bias) : std::nullopt;
      auto fused = nn::route_gate(x, w, c.logits_dtype, o, ob);
      ASSERT_TRUE(fused.has_value());
      EXPECT_EQ(count_nodes({fused->indices, fused->weights}), 2);  // one kernel, two outputs
      EXPECT_EQ(fused->indices.shape(), (mx::Shape{1, rows, rc.k}));
      auto logits = mx::astype(
          mx::matmul(mx::astype(x, c.logits_dtype), mx::transpose(mx::astype(w, c.logits_dtype))),
          c.logits_dtype);
      o.path = nn::KernelPath::plain;
      compare_routes(nn::route(logits, o, ob), *fused, rc.k, 1e-5 * std::max(1.0f, rc.scale));
    }
  // Where the kernel does not apply, nullopt: more than 16 rows, a width it cannot split.
  nn::RouterOptions o{.routing = R::softmax, .top_k = 2};
  EXPECT_FALSE(nn::route_gate(mx::zeros({1, 17, 256}, bf), mx::zeros({8, 256}, bf), bf, o));
  EXPECT_FALSE(nn::route_gate(mx::zeros({1, 1, 200}, bf), mx::zeros({8, 200}, bf), bf, o));
}

TEST_F(MoeGpu, CombineFusedEqualsPlain) {
  for (auto dt : {mx::float32, mx::bfloat16, mx::float16})
    for (int k : {1, 2, 6, 8})
      for (int D : {64, 100, 2048})
        for (const auto& lead : std::vector<mx::Shape>{{1, 1}, {2, 9}, {1, 512}}) {
          auto ys = lead;
          ys.push_back(k);
          auto ws = ys;
          ys.push_back(D);
          auto y = mx::astype(mx::random::normal(ys), dt);
          auto w = mx::softmax(mx::random::normal(ws), -1);
          auto plain = nn::combine_experts(y, w, nn::KernelPath::plain);
          auto fused = nn::combine_experts(y, w, nn::KernelPath::fused);
          mx::eval(plain, fused);
          SCOPED_TRACE("k " + std::to_string(k) + " D " + std::to_string(D) + " dtype " +
                       std::to_string(int(dt.val())));
          ASSERT_EQ(fused.shape(), plain.shape());
          ASSERT_EQ(fused.dtype(), dt);
          // fp32: summation order only; fp16/bf16: at most one rounding step of the output.
          const double tol = dt == mx::float32 ? 1e-5 : dt == mx::float16 ? 2e-3 : 1.6e-2;
          const auto a = to_f32(plain), b = to_f32(fused);
          int bad = 0;
          for (std::size_t i = 0; i < a.size(); ++i)
            bad += !(std::abs(a[i] - b[i]) <= tol * std::max(1.0f, std::abs(a[i])));
          EXPECT_EQ(bad, 0) << "of " << a.size();
        }
}

// The fused kernels accept what the models hand them: a non-contiguous y, 1-D logits.
TEST_F(MoeGpu, LayoutsAndShapes) {
  auto y = mx::transpose(mx::random::normal({2, 64, 4, 3}), {0, 3, 2, 1});  // [2,3,4,64]
  auto w = mx::random::uniform({2, 3, 4});
  auto plain = nn::combine_experts(y, w, nn::KernelPath::plain);
  auto fused = nn::combine_experts(y, w, nn::KernelPath::fused);
  OMINIX_EXPECT_CLOSE(fused, plain, 1e-5);
  auto logits = mx::random::normal({40});
  auto a = nn::route(logits,
                     {.routing = nn::Routing::softmax, .top_k = 3, .path = nn::KernelPath::plain});
  auto b = nn::route(logits,
                     {.routing = nn::Routing::softmax, .top_k = 3, .path = nn::KernelPath::fused});
  EXPECT_EQ(to_u32(a.indices), to_u32(b.indices));
  EXPECT_EQ(b.indices.shape(), (mx::Shape{3}));
  OMINIX_EXPECT_CLOSE(b.weights, a.weights, 1e-5);
}

nn::SwitchLinear random_experts(int E, int out, int in) {
  auto q = mx::quantize(mx::multiply(mx::random::normal({E, out, in}), mx::array(0.05f)), 64, 4);
  return {q[0], q[1], q[2], io::QuantSpec{64, 4, io::QuantMode::affine}};
}

// A whole MoE block (router, 4-bit experts, combine) on the GPU with the fused kernels against
// the CPU's plain ops: at decode (unsorted pairs, host-made row indices) and prefill (sorted).
TEST_F(MoeGpu, MoeBlockGpuFusedEqualsCpuPlain) {
  const int E = 16, D = 256, I = 128, k = 4;
  nn::SwitchGLU glu{random_experts(E, I, D), random_experts(E, I, D), random_experts(E, D, I), {}};
  auto gate = mx::random::normal({D, E});
  for (auto dt : {mx::float32, mx::bfloat16})
    for (int L : {1, 3, 40}) {
      SCOPED_TRACE("L " + std::to_string(L) + (dt == mx::float32 ? " float32" : " bfloat16"));
      auto x = mx::astype(mx::random::normal({2, L, D}), dt);
      auto logits = mx::matmul(x, gate, mx::Device::cpu);  // the same logits on both devices
      mx::eval(x, logits, glu.gate_proj.weight, glu.up_proj.weight, glu.down_proj.weight);
      auto block = [&](nn::KernelPath path) {
        auto r = nn::route(
            logits,
            {.routing = nn::Routing::softmax, .top_k = k, .norm_topk_prob = true, .path = path});
        return nn::combine_experts(glu(x, r.indices), r.weights, path);
      };
      try {
        set_device(DeviceKind::cpu);
        auto cpu = block(nn::KernelPath::plain);
        mx::eval(cpu);
        set_device(DeviceKind::gpu);
        auto gpu = block(nn::KernelPath::fused);
        mx::eval(gpu);
        auto d = tests::diff(gpu, cpu);
        EXPECT_LT(d.rel, dt == mx::float32 ? 1e-3 : 2e-2) << "max abs " << d.max_abs;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
}

TEST_F(MoeGpu, NodeCountsFused) {
  auto logits = mx::random::normal({1, 1, 128});
  auto y = mx::random::normal({1, 1, 8, 2048});
  mx::eval(logits, y);
  auto routes = nn::route(logits, {.routing = nn::Routing::softmax,
                                   .top_k = 8,
                                   .norm_topk_prob = true,
                                   .path = nn::KernelPath::fused});
  auto out = nn::combine_experts(y, routes.weights, nn::KernelPath::fused);
  EXPECT_EQ(count_nodes({routes.indices, routes.weights}), 2);  // one kernel, two outputs
  EXPECT_EQ(count_nodes({out, routes.indices}), 3);
  mx::eval(out);
}

}  // namespace

// The decode-time expert kernels (core/nn/experts_fused.cpp) against the exact computation: the
// same quantized experts dequantized to float32 and run in plain float32 ops on the CPU, and
// against MLX's own gather_qmm path on the GPU. Shapes cover the real MoE models (Qwen3-30B-A3B,
// Mixtral) and rows that do not fill a warp's last chunk stride.
TEST_F(MoeGpu, QuantizedExpertsFusedMatchFloat32) {
  struct Case {
    int E, D, I, k, tokens, bits, group;
  };
  const std::vector<Case> cases{{8, 256, 128, 2, 1, 4, 64},    {16, 512, 96, 4, 3, 4, 32},
                                {16, 384, 160, 8, 1, 8, 32},   {128, 2048, 768, 8, 1, 4, 64},
                                {4, 4096, 1408, 2, 2, 4, 128}, {8, 2048, 768, 8, 1, 8, 64},
                                {2, 4096, 14336, 2, 1, 4, 64}};
  // Every kernel instance is compiled on first use (seconds each): all dtypes on the two small
  // cases, bfloat16 (the checkpoints' dtype) on the rest.
  for (std::size_t ci = 0; ci < cases.size(); ++ci)
    for (auto dt : {mx::bfloat16, mx::float16, mx::float32}) {
      const auto& c = cases[ci];
      if (ci >= 2 && dt != mx::bfloat16) continue;
      SCOPED_TRACE(fmt::format("E {} D {} I {} k {} tokens {} bits {} group {} {}", c.E, c.D, c.I,
                               c.k, c.tokens, c.bits, c.group,
                               dt == mx::float32   ? "float32"
                               : dt == mx::float16 ? "float16"
                                                   : "bfloat16"));
      // Quantized experts with scales/biases in the activation dtype, and their float32 twins.
      auto experts = [&](int out, int in) {
        auto w = mx::multiply(mx::random::normal({c.E, out, in}), mx::array(0.05f));
        auto q = mx::quantize(w, c.group, c.bits);
        nn::SwitchLinear lin{q[0], mx::astype(q[1], dt), mx::astype(q[2], dt),
                             io::QuantSpec{c.group, c.bits, io::QuantMode::affine}};
        auto dense = mx::dequantize(lin.weight, *lin.scales, lin.biases, c.group, c.bits);
        return std::pair{lin, nn::SwitchLinear{mx::astype(dense, mx::float32), {}, {}, {}}};
      };
      auto [gate, gate32] = experts(c.I, c.D);
      auto [up, up32] = experts(c.I, c.D);
      auto [down, down32] = experts(c.D, c.I);
      nn::SwitchGLU fused{gate, up, down, {.path = nn::KernelPath::fused}};
      nn::SwitchGLU plain{gate, up, down, {.path = nn::KernelPath::plain}};
      nn::SwitchGLU exact{gate32, up32, down32, {.path = nn::KernelPath::plain}};
      auto x = mx::astype(mx::random::normal({1, c.tokens, c.D}), dt);
      auto routes =
          nn::route(mx::random::normal({1, c.tokens, c.E}), {.routing = nn::Routing::softmax,
                                                             .top_k = c.k,
                                                             .norm_topk_prob = true,
                                                             .path = nn::KernelPath::plain});
      mx::eval(x, routes.indices, routes.weights, gate.weight, up.weight, down.weight,
               gate32.weight, up32.weight, down32.weight);
      auto y = fused(x, routes);
      EXPECT_LE(count_nodes({y}), 2);  // the gate_up kernel and the down kernel
      auto y_plain = plain(x, routes);
      mx::eval(y, y_plain);
      set_device(DeviceKind::cpu);
      auto y_exact = exact(mx::astype(x, mx::float32), routes);
      mx::eval(y_exact);
      set_device(DeviceKind::gpu);
      EXPECT_EQ(y.dtype(), dt);
      EXPECT_EQ(y.shape(), x.shape());
      const double tol = dt == mx::float32 ? 1e-5 : dt == mx::float16 ? 4e-3 : 2e-2;
      const auto to_exact = tests::diff(y, y_exact), plain_to_exact = tests::diff(y_plain, y_exact);
      EXPECT_LE(to_exact.rel, tol) << "max abs " << to_exact.max_abs;
      // No further from the exact result than MLX's own path (which rounds more often), give or
      // take one rounding of the output.
      EXPECT_LE(to_exact.rel, plain_to_exact.rel * 1.25 + (dt == mx::float32 ? 1e-6 : 4e-3))
          << "MLX gather_qmm path: " << plain_to_exact.rel;
    }
}
