#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/error.h"
#include "ominix/nn/activations.h"
#include "ominix/nn/fused.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/norm.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;

namespace {
const io::TensorMap& layers() {
  static io::TensorMap t = io::load_safetensors(tests::fixture("core/layers.safetensors"));
  return t;
}
mx::array L(const std::string& k) {
  return layers().at(k);
}
}  // namespace

TEST(Linear, MatchesTorch) {
  nn::Linear lin{L("linear.weight"), L("linear.bias")};
  OMINIX_EXPECT_CLOSE(lin(L("linear.x")), L("linear.out"), 1e-5);
  nn::Linear nob{L("linear_nobias.weight"), std::nullopt};
  OMINIX_EXPECT_CLOSE(nob(L("linear.x")), L("linear_nobias.out"), 1e-5);
}

TEST(Linear, LoadsDenseThroughWeightMap) {
  io::TensorMap t{{"proj.weight", L("linear.weight")}, {"proj.bias", L("linear.bias")}};
  io::WeightMap w(std::move(t), "test");
  auto layer = nn::LinearLayer::load(w, "proj", {.in = 48, .out = 24, .bias = true}, std::nullopt);
  w.finish();
  EXPECT_FALSE(layer.quantized());
  OMINIX_EXPECT_CLOSE(layer(L("linear.x")), L("linear.out"), 1e-5);
}

TEST(Norm, RMSNormMatchesTransformers) {
  nn::RMSNorm n{L("rms.weight"), 1e-6f};
  OMINIX_EXPECT_CLOSE(n(L("linear.x")), L("rms.out"), 1e-5);
}

TEST(Norm, LayerNormMatchesTorch) {
  nn::LayerNorm n{L("ln.weight"), L("ln.bias"), 1e-5f};
  OMINIX_EXPECT_CLOSE(n(L("linear.x")), L("ln.out"), 1e-5);
}

TEST(Activations, MatchTransformersAct2Fn) {
  auto x = L("act.x");
  for (const char* name : {"silu", "gelu", "gelu_pytorch_tanh", "relu"}) {
    SCOPED_TRACE(name);
    auto act = nn::parse_activation(name, "config.json: hidden_act");
    OMINIX_EXPECT_CLOSE(nn::activate(act, x), L(std::string("act.") + name), 2e-5);
  }
  EXPECT_THROW(nn::parse_activation("mish", "config.json: hidden_act"), UnsupportedError);
}

TEST(Embedding, LookupAndTiedHead) {
  nn::Embedding e(L("emb.weight"));
  OMINIX_EXPECT_CLOSE(e(L("emb.ids")), L("emb.out"), 0);
  OMINIX_EXPECT_CLOSE(e.as_linear(L("linear.x")), L("emb.as_linear"), 1e-4);
}

// The mlx-community layout: a module quantized by mlx-lm with a per-layer override (down_proj at
// 8 bits, group 32), a layer mlx-lm leaves dense, and a quantized embedding.
class Quantized : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = tests::fixture("core/quantized");
    quant_ = io::QuantizationConfig::parse(io::ConfigReader::load(dir / "config.json"));
    weights_ =
        std::make_unique<io::WeightMap>(io::load_checkpoint(dir), "quantized/model.safetensors");
    expected_ = io::load_safetensors(tests::fixture("core/quantized_expected.safetensors"));
  }
  std::optional<io::QuantizationConfig> quant_;
  std::unique_ptr<io::WeightMap> weights_;
  io::TensorMap expected_;
};

TEST_F(Quantized, MatchesMlxLm) {
  auto& w = *weights_;
  auto q_proj = nn::LinearLayer::load(w, "q_proj", {.in = 128, .out = 64, .bias = true}, quant_);
  auto down = nn::LinearLayer::load(w, "down_proj", {.in = 128, .out = 256}, quant_);
  auto small = nn::LinearLayer::load(w, "small", {.in = 48, .out = 32}, quant_);
  auto embed = nn::Embedding::load(w, "embed_tokens", 40, 128, quant_);
  w.finish();
  EXPECT_TRUE(q_proj.quantized());
  EXPECT_TRUE(down.quantized());
  EXPECT_FALSE(small.quantized());
  EXPECT_TRUE(embed.quantized());
  auto x = expected_.at("x");
  OMINIX_EXPECT_CLOSE(q_proj(x), expected_.at("q_proj"), 1e-4);
  OMINIX_EXPECT_CLOSE(down(x), expected_.at("down_proj"), 1e-4);
  OMINIX_EXPECT_CLOSE(small(expected_.at("xs")), expected_.at("small"), 1e-5);
  OMINIX_EXPECT_CLOSE(embed(expected_.at("ids")), expected_.at("embed"), 1e-6);
  OMINIX_EXPECT_CLOSE(embed.as_linear(x), expected_.at("embed_as_linear"), 1e-4);
}

TEST_F(Quantized, WithoutQuantizationConfigIsAClearError) {
  try {
    nn::LinearLayer::load(*weights_, "q_proj", {.in = 128, .out = 64, .bias = true}, std::nullopt);
    FAIL() << "no error";
  } catch (const WeightError& e) {
    EXPECT_NE(std::string(e.what()).find("'q_proj.scales'"), std::string::npos) << e.what();
  }
}

TEST_F(Quantized, WrongSpecGivesShapeErrors) {
  io::QuantizationConfig eight = *quant_;
  eight.global = {64, 8, io::QuantMode::affine};
  nn::LinearLayer::load(*weights_, "q_proj", {.in = 128, .out = 64, .bias = true}, eight);
  try {
    weights_->finish(/*allow_unexpected=*/true);
    FAIL() << "no error";
  } catch (const WeightError& e) {
    EXPECT_NE(std::string(e.what()).find("'q_proj.weight' has shape [64, 16], expected [64, 32]"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(Quantized, WrongDtypeIsNamed) {
  auto& t = weights_->tensors();
  t.insert_or_assign("q_proj.weight", mx::astype(t.at("q_proj.weight"), mx::float32));
  nn::LinearLayer::load(*weights_, "q_proj", {.in = 128, .out = 64, .bias = true}, quant_);
  try {
    weights_->finish(/*allow_unexpected=*/true);
    FAIL() << "no error";
  } catch (const WeightError& e) {
    EXPECT_NE(std::string(e.what()).find("'q_proj.weight': packed quantized weight must be uint32"),
              std::string::npos)
        << e.what();
  }
}

TEST(QuantizedLinear, FromDenseApproximatesDense) {
  mx::random::seed(3);
  nn::Linear dense{mx::random::normal({64, 256}), std::nullopt};
  auto x = mx::random::normal({4, 256});
  auto ref = dense(x);
  for (int bits : {4, 8}) {
    auto q = nn::QuantizedLinear::from(dense, {64, bits, io::QuantMode::affine});
    auto d = tests::diff(q(x), ref);
    EXPECT_LT(d.rel, bits == 8 ? 0.01 : 0.15) << bits;
    // Same as multiplying by the dequantized weight.
    auto deq = mx::dequantize(q.weight, q.scales, q.biases, 64, bits);
    OMINIX_EXPECT_CLOSE(q(x), mx::matmul(x, mx::transpose(deq)), 1e-3);
  }
}

// Joined projections compute what the parts compute, dense or quantized, with or without bias.
TEST(FusedLinear, JoinedEqualsParts) {
  mx::random::seed(7);
  auto x = mx::random::normal({2, 3, 64});
  auto dense = [](int out, bool bias) {
    return nn::LinearLayer(
        nn::Linear{mx::random::normal({out, 64}),
                   bias ? std::optional(mx::random::normal({out})) : std::nullopt});
  };
  for (bool bias : {false, true}) {
    std::vector<nn::LinearLayer> parts{dense(32, bias), dense(16, bias), dense(16, bias)};
    auto expected = mx::concatenate({parts[0](x), parts[1](x), parts[2](x)}, -1);
    nn::FusedLinear fused(parts);
    auto joint = fused.joint(x);
    ASSERT_TRUE(joint.has_value());
    EXPECT_LT(tests::diff(*joint, expected).rel, 1e-6);
    auto split = fused(x);
    ASSERT_EQ(split.size(), 3u);
    EXPECT_EQ(split[1].shape(), (mx::Shape{2, 3, 16}));
    EXPECT_LT(tests::diff(split[2], parts[2](x)).rel, 1e-6);
    EXPECT_EQ(fused.out_features(), (std::vector<int>{32, 16, 16}));
  }
  const io::QuantSpec spec{64, 4, io::QuantMode::affine};
  std::vector<nn::LinearLayer> quant;
  for (int out : {32, 64})
    quant.emplace_back(nn::QuantizedLinear::from(nn::Linear{mx::random::normal({out, 64})}, spec));
  auto expected = mx::concatenate({quant[0](x), quant[1](x)}, -1);
  auto joint = nn::FusedLinear(quant).joint(x);
  ASSERT_TRUE(joint.has_value());
  EXPECT_LT(tests::diff(*joint, expected).rel, 1e-6);
}

// A residual stream with its add pending: add_rms_norm does the add, then the norm, and equals
// them bit for bit (plain ops, the kernels held off); without a pending add the value is h.
TEST(Residual, AddRmsNormEqualsAddThenNorm) {
  const bool fused = nn::fused_kernels_enabled();
  nn::set_fused_kernels(false);
  mx::random::seed(9);
  auto equal = [](const mx::array& a, const mx::array& b) {
    return a.dtype() == b.dtype() && mx::array_equal(a, b).item<bool>();
  };
  for (auto dtype : {mx::float32, mx::bfloat16}) {
    auto h = mx::astype(mx::random::normal({2, 3, 64}), dtype);
    auto r = mx::astype(mx::random::normal({2, 3, 64}), dtype);
    nn::RMSNorm norm{mx::astype(mx::random::normal({64}), dtype), 1e-6f};
    auto sum = mx::add(h, r);
    auto pending = nn::add_rms_norm(nn::Residual{h, r}, norm);
    EXPECT_TRUE(equal(pending.sum, sum));
    EXPECT_TRUE(equal(pending.normed, norm(sum)));
    EXPECT_TRUE(equal(nn::value({h, r}), sum));
    auto none = nn::add_rms_norm(nn::Residual{h, std::nullopt}, norm);
    EXPECT_TRUE(equal(none.sum, h));
    EXPECT_TRUE(equal(none.normed, norm(h)));
    EXPECT_TRUE(equal(nn::value({h, std::nullopt}), h));
  }
  nn::set_fused_kernels(fused);
}

// Parts that cannot share one matrix (dense beside quantized, different specs, bias on some)
// stay apart and still give each output.
TEST(FusedLinear, UnjoinablePartsStayApart) {
  mx::random::seed(8);
  auto x = mx::random::normal({1, 64});
  auto w = mx::random::normal({32, 64});
  nn::LinearLayer dense(nn::Linear{w});
  nn::LinearLayer q4(nn::QuantizedLinear::from(nn::Linear{w}, {64, 4, io::QuantMode::affine}));
  nn::LinearLayer q8(nn::QuantizedLinear::from(nn::Linear{w}, {64, 8, io::QuantMode::affine}));
  nn::LinearLayer biased(nn::Linear{w, mx::random::normal({32})});
  for (auto parts : {std::vector{dense, q4}, std::vector{q4, q8}, std::vector{dense, biased}}) {
    nn::FusedLinear fused(parts);
    EXPECT_FALSE(fused.joint(x).has_value());
    auto out = fused(x);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_LT(tests::diff(out[1], parts[1](x)).rel, 1e-7);
  }
}
