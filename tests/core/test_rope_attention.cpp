#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/error.h"
#include "ominix/nn/attention.h"
#include "ominix/nn/rope.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;

TEST(RoPE, MatchesTransformersForEveryVariant) {
  auto cases = tests::load_json(tests::fixture("core/rope_cases.json"));
  auto t = io::load_safetensors(tests::fixture("core/rope.safetensors"));
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    auto config = io::RopeConfig::parse(io::ConfigReader(c["config"], name));
    nn::RoPE rope(config, c["head_dim"].get<int>());
    const int offset = c["offset"], L = c["L"];
    EXPECT_EQ(rope.dims(), c["dims"].get<int>());
    EXPECT_NEAR(rope.attention_scaling(), c["attention_scaling"].get<double>(), 1e-6);
    auto inv = rope.inv_freq(offset + L);
    auto inv_ref = t.at(name + ".inv_freq");
    OMINIX_EXPECT_CLOSE(mx::array(inv.data(), {int(inv.size())}), inv_ref, 1e-7);
    // fp32 angles at large positions lose ~1e-7 * position radians in either implementation.
    double atol = offset + L > 1000 ? 2e-3 : 2e-5;
    OMINIX_EXPECT_CLOSE(rope(t.at(name + ".x"), offset), t.at(name + ".out"), atol);
  }
}

TEST(RoPE, OddRotaryDimsAreRejected) {
  io::RopeConfig c;
  c.partial_rotary_factor = 0.3;
  EXPECT_THROW(nn::RoPE(c, 10), ConfigError);
}

namespace {
const io::TensorMap& attn() {
  static io::TensorMap t = io::load_safetensors(tests::fixture("core/attention.safetensors"));
  return t;
}
}  // namespace

TEST(Masks, MatchTransformersMaskFunctions) {
  auto cases = tests::load_json(tests::fixture("core/attention_cases.json"));
  int checked = 0;
  for (const auto& c : cases) {
    if (c["kind"] != "mask") continue;
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    std::optional<int> window;
    if (!c["window"].is_null()) window = c["window"].get<int>();
    auto mask = nn::causal_mask(c["L"], c["offset"], window);
    auto ref = mx::astype(attn().at("mask_" + name), mx::bool_);
    ASSERT_EQ(mask.shape(), ref.shape());
    EXPECT_TRUE(mx::array_equal(mask, ref).item<bool>());
    ++checked;
  }
  EXPECT_EQ(checked, 4);
  auto lengths = mx::array({3, 5});
  EXPECT_TRUE(
      mx::array_equal(nn::padding_mask(lengths, 5), mx::astype(attn().at("pad_right"), mx::bool_))
          .item<bool>());
  EXPECT_TRUE(mx::array_equal(nn::padding_mask(lengths, 5, true),
                              mx::astype(attn().at("pad_left"), mx::bool_))
                  .item<bool>());
}

TEST(Sdpa, MatchesTorchWithGqa) {
  auto cases = tests::load_json(tests::fixture("core/attention_cases.json"));
  int checked = 0;
  for (const auto& c : cases) {
    if (c["kind"] != "sdpa") continue;
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const auto& t = attn();
    auto q = t.at("sdpa_" + name + ".q"), k = t.at("sdpa_" + name + ".k"),
         v = t.at("sdpa_" + name + ".v");
    const int L = q.shape(2), S = k.shape(2);
    nn::AttentionMask mask = nn::NoMask{};
    std::string kind = c["mask"].is_null() ? "" : c["mask"].get<std::string>();
    if (kind == "causal") mask = nn::CausalMask{};
    if (kind == "pad_left") mask = nn::padding_mask(mx::array({3, 5}), S, true);
    if (kind == "pad_left_causal")
      mask = nn::combine_masks(nn::causal_mask(L, S - L),
                               nn::padding_mask(mx::array({3, 5}), S, true));
    if (kind == "sliding3") mask = nn::causal_mask(L, S - L, 3);
    auto out = nn::sdpa(q, k, v, c["scale"].get<float>(), mask);
    OMINIX_EXPECT_CLOSE(out, t.at("sdpa_" + name + ".out"), 2e-5);
    // An explicit causal mask gives the same as the fused causal mode.
    if (kind == "causal")
      OMINIX_EXPECT_CLOSE(nn::sdpa(q, k, v, c["scale"].get<float>(), nn::causal_mask(L, S - L)),
                          out, 1e-6);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(Sdpa, RejectsBadHeads) {
  auto q = mx::zeros({1, 3, 2, 8}), k = mx::zeros({1, 2, 2, 8});
  EXPECT_THROW(nn::sdpa(q, k, k, 1.0f), InvalidArgument);
  EXPECT_THROW(nn::sdpa(mx::zeros({3, 2, 8}), k, k, 1.0f), InvalidArgument);
}
