#include <fstream>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/io/weights.h"
#include "support/testing.h"

using namespace ominix;
namespace fs = std::filesystem;
namespace mx = mlx::core;

TEST(Checkpoint, ShardedEqualsSingle) {
  auto single = io::load_checkpoint(tests::fixture("core/ckpt_single"));
  auto sharded = io::load_checkpoint(tests::fixture("core/ckpt_sharded"));
  ASSERT_EQ(single.size(), sharded.size());
  EXPECT_TRUE(single.count("model.layers.1.self_attn.k_proj.weight"));
  for (const auto& [name, a] : single) {
    ASSERT_TRUE(sharded.count(name)) << name;
    EXPECT_EQ(a.dtype(), mx::bfloat16);
    EXPECT_TRUE(mx::array_equal(a, sharded.at(name)).item<bool>()) << name;
  }
}

TEST(Checkpoint, DtypeConversionOnLoad) {
  auto t = io::load_checkpoint(tests::fixture("core/ckpt_single"), {.dtype = mx::float32});
  auto ref = io::load_checkpoint(tests::fixture("core/ckpt_single"));
  for (const auto& [name, a] : t) {
    EXPECT_EQ(a.dtype(), mx::float32) << name;
    EXPECT_TRUE(mx::array_equal(mx::astype(ref.at(name), mx::float32), a).item<bool>()) << name;
  }
  // Packed integer weights keep their dtype.
  auto q = io::load_checkpoint(tests::fixture("core/quantized"), {.dtype = mx::bfloat16});
  EXPECT_EQ(q.at("q_proj.weight").dtype(), mx::uint32);
  EXPECT_EQ(q.at("q_proj.scales").dtype(), mx::bfloat16);
}

class ShardErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ominix_shards_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(tests::fixture("core/ckpt_sharded"), dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ShardErrors, MissingShard) {
  fs::remove(dir_ / "model-00002-of-00003.safetensors");
  try {
    io::load_checkpoint(dir_);
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("shard 'model-00002-of-00003.safetensors' is missing"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(ShardErrors, IndexPointsToWrongShard) {
  auto index = io::ConfigReader::load(dir_ / "model.safetensors.index.json").json();
  index["weight_map"]["lm_head.weight"] = "model-00001-of-00003.safetensors";
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  try {
    io::load_checkpoint(dir_);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'lm_head.weight'"), std::string::npos) << e.what();
  }
}

TEST_F(ShardErrors, IndexEscapingTheDirectory) {
  auto index = io::ConfigReader::load(dir_ / "model.safetensors.index.json").json();
  index["weight_map"]["lm_head.weight"] = "../elsewhere.safetensors";
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  EXPECT_THROW(io::load_checkpoint(dir_), FormatError);
}

TEST(Checkpoint, EmptyDirectory) {
  auto dir = fs::temp_directory_path() / "ominix_empty_ckpt";
  fs::create_directories(dir);
  EXPECT_THROW(io::load_checkpoint(dir), IoError);
  EXPECT_THROW(io::load_checkpoint(dir / "nothing"), IoError);
  fs::remove_all(dir);
}

TEST(WeightMap, ReportsEveryProblemByName) {
  io::TensorMap t;
  t.emplace("a.weight", mx::ones({4, 8}));
  t.emplace("b.weight", mx::ones({3, 3}));
  t.emplace("c.extra", mx::ones({1}));
  io::WeightMap w(std::move(t), "model.safetensors");
  auto a = w.take("a.weight", {4, 8});
  EXPECT_EQ(a.shape(), (mx::Shape{4, 8}));
  auto b = w.take("b.weight", {3, 4});
  EXPECT_EQ(b.shape(), (mx::Shape{3, 4}));  // placeholder keeps binding going
  w.take("d.weight", {2});
  EXPECT_FALSE(w.take_optional("e.bias", {2}));
  try {
    w.finish();
    FAIL() << "no error";
  } catch (const WeightError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("model.safetensors: 3 problem(s)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing tensor 'd.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'b.weight' has shape [3, 3], expected [3, 4]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected tensor 'c.extra'"), std::string::npos) << msg;
  }
}

TEST(WeightMap, CleanBindingPasses) {
  io::TensorMap t;
  t.emplace("a", mx::ones({2}));
  t.emplace("rotary.inv_freq", mx::ones({2}));
  io::WeightMap w(std::move(t), "x");
  w.take("a", {2});
  w.ignore("rotary.inv_freq");
  EXPECT_NO_THROW(w.finish());
}

// Loaded tensors are lazy until evaluate() reads them all (the CPU kernels take evaluated weights
// only); what it reads is what a later eval would give.
TEST(WeightMap, EvaluateReadsEveryTensor) {
  auto lazy = io::load_checkpoint(tests::fixture("core/ckpt_single"));
  auto ref = io::load_checkpoint(tests::fixture("core/ckpt_single"));
  ASSERT_FALSE(lazy.empty());
  for (const auto& [name, a] : lazy) EXPECT_FALSE(a.is_available()) << name;
  io::WeightMap w(std::move(lazy), "model.safetensors");
  w.evaluate();
  for (const auto& [name, a] : w.tensors()) {
    EXPECT_TRUE(a.is_available()) << name;
    EXPECT_TRUE(mx::array_equal(a, ref.at(name)).item<bool>()) << name;
  }
}
