#include <fstream>

#include <gtest/gtest.h>

#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "support/testing.h"

using namespace ominix;
using nlohmann::json;

namespace {
io::ConfigReader reader(const json& j) {
  return io::ConfigReader(j, "config.json");
}

template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return "";
}
}  // namespace

TEST(Config, AttentionDefaults) {
  auto a = io::AttentionConfig::parse(reader({{"hidden_size", 256}, {"num_attention_heads", 8}}));
  EXPECT_EQ(a.num_key_value_heads, 8);
  EXPECT_EQ(a.head_dim, 32);
  EXPECT_FALSE(a.attention_bias);
  EXPECT_FALSE(a.sliding_window);
  auto b = io::AttentionConfig::parse(reader({{"hidden_size", 256},
                                              {"num_attention_heads", 8},
                                              {"num_key_value_heads", 2},
                                              {"head_dim", 128},
                                              {"sliding_window", 4096},
                                              {"use_sliding_window", false}}));
  EXPECT_EQ(b.num_key_value_heads, 2);
  EXPECT_EQ(b.head_dim, 128);
  EXPECT_FALSE(b.sliding_window);
}

TEST(Config, AttentionErrorsNameTheField) {
  auto msg = error_of<ConfigError>([] {
    io::AttentionConfig::parse(reader({{"num_attention_heads", 8}}));
  });
  EXPECT_NE(msg.find("config.json: hidden_size"), std::string::npos) << msg;
  msg = error_of<ConfigError>([] {
    io::AttentionConfig::parse(reader({{"hidden_size", "256"}, {"num_attention_heads", 8}}));
  });
  EXPECT_NE(msg.find("hidden_size: expected an integer"), std::string::npos) << msg;
  msg = error_of<ConfigError>([] {
    io::AttentionConfig::parse(
        reader({{"hidden_size", 256}, {"num_attention_heads", 8}, {"num_key_value_heads", 3}}));
  });
  EXPECT_NE(msg.find("num_key_value_heads"), std::string::npos) << msg;
}

TEST(Config, RopeV4AndV5Agree) {
  auto v4 = io::RopeConfig::parse(reader({{"rope_theta", 500000.0},
                                          {"max_position_embeddings", 131072},
                                          {"rope_scaling",
                                           {{"rope_type", "llama3"},
                                            {"factor", 8.0},
                                            {"low_freq_factor", 1.0},
                                            {"high_freq_factor", 4.0},
                                            {"original_max_position_embeddings", 8192}}}}));
  auto v5 = io::RopeConfig::parse(reader({{"max_position_embeddings", 131072},
                                          {"rope_parameters",
                                           {{"rope_type", "llama3"},
                                            {"rope_theta", 500000.0},
                                            {"factor", 8.0},
                                            {"low_freq_factor", 1.0},
                                            {"high_freq_factor", 4.0},
                                            {"original_max_position_embeddings", 8192}}}}));
  for (const auto& r : {v4, v5}) {
    EXPECT_EQ(r.type, io::RopeType::llama3);
    EXPECT_EQ(r.theta, 500000.0);
    EXPECT_EQ(r.factor, 8.0);
    EXPECT_EQ(r.original_max_position_embeddings, 8192);
  }
  auto plain = io::RopeConfig::parse(reader(json::object()));
  EXPECT_EQ(plain.type, io::RopeType::standard);
  EXPECT_EQ(plain.theta, 10000.0);
}

TEST(Config, RopeErrors) {
  auto msg = error_of<UnsupportedError>([] {
    io::RopeConfig::parse(reader({{"rope_scaling", {{"type", "longrope"}, {"factor", 2.0}}}}));
  });
  EXPECT_NE(msg.find("longrope"), std::string::npos) << msg;
  msg = error_of<ConfigError>([] {
    io::RopeConfig::parse(reader({{"rope_scaling", {{"type", "linear"}}}}));
  });
  EXPECT_NE(msg.find("rope_scaling: factor"), std::string::npos) << msg;
  msg = error_of<ConfigError>([] {
    io::RopeConfig::parse(reader({{"partial_rotary_factor", 1.5}}));
  });
  EXPECT_NE(msg.find("partial_rotary_factor"), std::string::npos) << msg;
}

TEST(Config, QuantizationAsMlxLmWritesIt) {
  auto c = io::ConfigReader::load(tests::fixture("core/quantized/config.json"));
  auto q = io::QuantizationConfig::parse(c);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->global, (io::QuantSpec{64, 4, io::QuantMode::affine}));
  EXPECT_EQ(q->spec_for("q_proj"), (io::QuantSpec{64, 4, io::QuantMode::affine}));
  EXPECT_EQ(q->spec_for("down_proj"), (io::QuantSpec{32, 8, io::QuantMode::affine}));
  EXPECT_FALSE(io::QuantizationConfig::parse(reader(json::object())));

  auto skip = io::QuantizationConfig::parse(
      reader({{"quantization", {{"group_size", 64}, {"bits", 4}, {"lm_head", false}}}}));
  EXPECT_FALSE(skip->spec_for("lm_head"));
}

TEST(Config, QuantizationErrors) {
  auto msg = error_of<ConfigError>([] {
    io::QuantizationConfig::parse(reader({{"quantization", {{"group_size", 64}, {"bits", 7}}}}));
  });
  EXPECT_NE(msg.find("bits = 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json: quantization"), std::string::npos) << msg;
  msg = error_of<ConfigError>([] {
    io::QuantizationConfig::parse(
        reader({{"quantization",
                 {{"group_size", 64}, {"bits", 4}, {"model.layers.0.mlp", {{"bits", 9}}}}}}));
  });
  EXPECT_NE(msg.find("model.layers.0.mlp"), std::string::npos) << msg;
  msg = error_of<ConfigError>([] {
    io::QuantizationConfig::parse(reader({{"quantization", {{"group_size", 48}, {"bits", 4}}}}));
  });
  EXPECT_NE(msg.find("group_size = 48"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>([] {
    io::QuantizationConfig::parse(
        reader({{"quantization_config", {{"quant_method", "gptq"}, {"bits", 4}}}}));
  });
  EXPECT_NE(msg.find("gptq"), std::string::npos) << msg;
}

TEST(Config, FileErrors) {
  auto dir = std::filesystem::temp_directory_path() / "ominix_config_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << "{\"hidden_size\": 12,";
  auto msg = error_of<FormatError>([&] { io::ConfigReader::load(dir / "config.json"); });
  EXPECT_NE(msg.find("config.json: invalid JSON"), std::string::npos) << msg;
  std::ofstream(dir / "list.json") << "[1, 2]";
  msg = error_of<FormatError>([&] { io::ConfigReader::load(dir / "list.json"); });
  EXPECT_NE(msg.find("JSON object"), std::string::npos) << msg;
  msg = error_of<IoError>([&] { io::ConfigReader::load(dir / "absent.json"); });
  EXPECT_NE(msg.find("absent.json"), std::string::npos) << msg;
  std::filesystem::remove_all(dir);
}

TEST(Config, IntList) {
  auto c = reader({{"eos_token_id", json::array({1, 2})}, {"bos_token_id", 7}, {"bad", "x"}});
  EXPECT_EQ(c.int_list("eos_token_id"), (std::vector<int>{1, 2}));
  EXPECT_EQ(c.int_list("bos_token_id"), (std::vector<int>{7}));
  EXPECT_TRUE(c.int_list("pad_token_id").empty());
  EXPECT_THROW(c.int_list("bad"), ConfigError);
}
