// ominix::convert_checkpoint against mlx-lm 0.32.2's conversions of the tiny Hugging Face fixtures
// (4 bits, groups of 32): the same tensors bit for bit, the same quantization section in
// config.json, and the same greedy tokens as mlx-lm's run of its own copy. References:
// tools/fixtures/gen_{qwen3,glm4,mixtral}.py (the *_q4 fixtures) and gen_convert.py
// (tests/fixtures/convert/). Also the output directory's rules and errors.
#include <fstream>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/convert.h"
#include "ominix/ominix.h"
#include "support/lm_testing.h"

namespace ominix {
namespace {

namespace fs = std::filesystem;
using tests::fixture;
using tests::TempDir;

struct Case {
  std::string name, source, reference;  // fixtures: the HF checkpoint, mlx-lm's conversion
  bool has_greedy = true;               // reference/expected.safetensors (mlx-lm's tokens)
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

const std::vector<Case> kCases = {
    {"qwen3", "models/qwen3/qwen3_untied", "models/qwen3/qwen3_untied_q4"},  // 4 shards
    {"qwen3_moe", "models/qwen3/qwen3_moe", "models/qwen3/qwen3_moe_q4"},    // routers 8-bit
    {"glm4_moe", "models/glm4/glm4_moe", "models/glm4/glm4_moe_q4"},
    {"mixtral", "models/mixtral/mixtral", "models/mixtral/mixtral_q4"},
    {"qwen2", "models/qwen3/qwen2_tied", "convert/qwen2_tied_q4"},
    {"glm4", "models/glm4/glm4", "convert/glm4_q4"},
    {"mistral", "models/mixtral/mistral", "convert/mistral_q4"},
    {"llama", "models/llama/llama", "convert/llama_q4"},  // biases
    {"llama3_tied", "models/llama/llama3_tied", "convert/llama3_tied_q4"},
    {"gemma3", "models/gemma3/tiny", "convert/gemma3_q4", false},
};

class ConvertMlxLm : public ::testing::TestWithParam<Case> {
 protected:
  fs::path convert_q4(const TempDir& tmp) const {
    const auto out = tmp.path / "out";
    convert_checkpoint({.model = fixture(GetParam().source),
                        .out = out,
                        .quantize = io::QuantSpec{.group_size = 32, .bits = 4}});
    return out;
  }
};

TEST_P(ConvertMlxLm, SameTensorsAndQuantizationConfig) {
  TempDir tmp("convert_" + GetParam().name);
  const auto out = convert_q4(tmp);
  const auto got = io::load_checkpoint(out);
  const auto want = io::load_safetensors(fixture(GetParam().reference) / "model.safetensors");
  std::set<std::string> got_keys, want_keys;
  for (const auto& entry : got) got_keys.insert(entry.first);
  for (const auto& entry : want) want_keys.insert(entry.first);
  ASSERT_EQ(got_keys, want_keys);
  for (const auto& [key, w] : want) {
    const auto& g = got.at(key);
    ASSERT_EQ(g.dtype(), w.dtype()) << key;
    ASSERT_EQ(g.shape(), w.shape()) << key;
    EXPECT_TRUE(mx::array_equal(g, w).item<bool>()) << key;
  }
  const auto config = tests::load_json(out / "config.json");
  const auto reference = tests::load_json(fixture(GetParam().reference) / "config.json");
  EXPECT_EQ(config.at("quantization"), reference.at("quantization"));
  EXPECT_EQ(config.at("quantization_config"), reference.at("quantization_config"));
}

TEST_P(ConvertMlxLm, GreedyTokensOfMlxLm) {
  TempDir tmp("convert_greedy_" + GetParam().name);
  const auto out = convert_q4(tmp);
  auto model = generate::load_model(out);
  if (!GetParam().has_greedy) {  // mlx-lm cannot run it: its conversion, run by ominix, instead
    auto reference = generate::load_model(fixture(GetParam().reference));
    const auto prompt = mx::array({5, 17, 33, 2, 9, 41, 7, 3}, {1, 8}, mx::int32);
    EXPECT_EQ(tests::greedy(*model, prompt, tests::kNew),
              tests::greedy(*reference, prompt, tests::kNew));
    return;
  }
  const auto ref = tests::load_expected(fixture(GetParam().reference));
  for (int b = 0; b < 2; ++b)
    EXPECT_EQ(tests::greedy(*model, tests::row(ref.at("input_ids"), b), tests::kNew),
              tests::to_vector(tests::row(ref.at("greedy"), b)))
        << "row " << b;
}

INSTANTIATE_TEST_SUITE_P(Families, ConvertMlxLm, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

// Without --quantize: experts stacked and the tied head dropped as mlx-lm's load does, floats kept;
// the result loads and gives the original's tokens (transformers' greedy).
TEST(Convert, FloatMoeIsStackedAndGeneratesTheSame) {
  TempDir tmp("convert_float_moe");
  const auto out = tmp.path / "out";
  const auto report = convert_checkpoint({.model = fixture("models/qwen3/qwen3_moe"), .out = out});
  ASSERT_EQ(report.dirs.size(), 1u);
  EXPECT_EQ(report.dirs[0].quantized, 0u);
  const auto got = io::load_checkpoint(out);
  EXPECT_TRUE(got.count("model.layers.0.mlp.switch_mlp.gate_proj.weight"));
  EXPECT_FALSE(got.count("model.layers.0.mlp.experts.0.gate_proj.weight"));
  auto model = generate::load_model(out);
  const auto ref = tests::load_expected(fixture("models/qwen3/qwen3_moe"));
  EXPECT_EQ(tests::greedy(*model, tests::row(ref.at("input_ids"), 0), tests::kNew),
            tests::to_vector(tests::row(ref.at("greedy"), 0)));
}

TEST(Convert, DtypeCastKeepsGlmCorrectionBias) {  // mlx-lm glm4_moe.py cast_predicate
  TempDir tmp("convert_dtype");
  const auto out = tmp.path / "out";
  convert_checkpoint({.model = fixture("models/glm4/glm4_moe"), .out = out, .dtype = mx::bfloat16});
  const auto got = io::load_checkpoint(out);
  EXPECT_EQ(got.at("model.layers.1.mlp.gate.e_score_correction_bias").dtype(), mx::float32);
  EXPECT_EQ(got.at("model.layers.1.mlp.gate.weight").dtype(), mx::bfloat16);
  EXPECT_EQ(tests::load_json(out / "config.json").at("torch_dtype"), "bfloat16");
}

TEST(Convert, SmallShardsWriteAnIndex) {
  TempDir tmp("convert_shards");
  const auto out = tmp.path / "out";
  const auto report = convert_checkpoint(
      {.model = fixture("models/qwen3/qwen3_untied"), .out = out, .max_shard_bytes = 64 << 10});
  EXPECT_GT(report.dirs.at(0).shards, 1u);
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  const auto index = tests::load_json(out / "model.safetensors.index.json");
  EXPECT_EQ(index.at("weight_map").size(), io::load_checkpoint(out).size());
  auto model = generate::load_model(out);
  const auto ref = tests::load_expected(fixture("models/qwen3/qwen3_untied"));
  EXPECT_EQ(tests::greedy(*model, tests::row(ref.at("input_ids"), 1), tests::kNew),
            tests::to_vector(tests::row(ref.at("greedy"), 1)));
}

// FunASR-Nano: the nested LLM directory (config.json, tokenizer) comes along; a subdirectory's own
// weights would be rewritten like the top level's.
TEST(Convert, SubdirectoriesAreCopiedAndTheirWeightsConverted) {
  TempDir tmp("convert_subdirs");
  const auto src = tmp.path / "src", out = tmp.path / "out";
  fs::copy(fixture("models/funasr_nano/tiny"), src, fs::copy_options::recursive);
  fs::copy(fixture("models/qwen3/qwen3_moe"), src / "llm");
  fs::create_directory(src / ".git");
  std::ofstream(src / ".git" / "HEAD") << "ref: refs/heads/main\n";
  const auto report = convert_checkpoint({.model = src, .out = out, .dtype = mx::float16});
  ASSERT_EQ(report.dirs.size(), 2u);
  EXPECT_EQ(report.dirs[1].dir, out / "llm");
  EXPECT_TRUE(fs::exists(out / "Qwen3-0.6B" / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(out / "variants" / "k2" / "config.yaml"));
  EXPECT_FALSE(fs::exists(out / "model.pt"));
  EXPECT_FALSE(fs::exists(out / ".git"));
  for (const auto& [key, t] : io::load_safetensors(out / "model.safetensors"))
    if (mx::issubdtype(t.dtype(), mx::floating)) {
      EXPECT_EQ(t.dtype(), mx::float16) << key;
    }
  const auto llm = io::load_checkpoint(out / "llm");
  EXPECT_EQ(llm.at("model.layers.0.mlp.switch_mlp.up_proj.weight").dtype(), mx::float16);
}

TEST(ConvertErrors, OutputRules) {
  TempDir tmp("convert_errors");
  const auto model = fixture("models/qwen3/qwen2_tied");
  const auto file = tmp.path / "file";
  std::ofstream(file) << "keep me";
  auto message =
      tests::error_of<IoError>([&] { convert_checkpoint({.model = model, .out = file}); });
  EXPECT_NE(message.find("is not a directory"), std::string::npos) << message;
  std::ifstream in(file);
  std::string kept((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(kept, "keep me");

  message =
      tests::error_of<IoError>([&] { convert_checkpoint({.model = model, .out = file / "sub"}); });
  EXPECT_NE(message.find((file / "sub").string()), std::string::npos) << message;

  fs::create_directory(tmp.path / "full");
  std::ofstream(tmp.path / "full" / "x") << "x";
  message = tests::error_of<IoError>(
      [&] { convert_checkpoint({.model = model, .out = tmp.path / "full"}); });
  EXPECT_NE(message.find("not empty"), std::string::npos) << message;

  // An empty directory is taken.
  fs::create_directory(tmp.path / "empty");
  convert_checkpoint({.model = model, .out = tmp.path / "empty"});
  EXPECT_TRUE(fs::exists(tmp.path / "empty" / "model.safetensors"));
}

TEST(ConvertErrors, NothingLeftBehindOnABadConfig) {
  TempDir tmp("convert_bad_config");
  const auto src = tmp.path / "src", out = tmp.path / "out";
  fs::create_directory(src);
  fs::copy(fixture("models/qwen3/qwen2_tied/model.safetensors"), src / "model.safetensors");
  std::ofstream(src / "config.json") << R"({"model_type": "qwen2", "hidden_size": )";
  const auto message =
      tests::error_of<FormatError>([&] { convert_checkpoint({.model = src, .out = out}); });
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(tmp.path / "out.partial"));
}

TEST(ConvertErrors, QuantizeNeedsAFloatModelWithConfig) {
  TempDir tmp("convert_quant_errors");
  auto message = tests::error_of<ConfigError>([&] {
    convert_checkpoint({.model = fixture("models/qwen3/qwen3_moe_q4"),
                        .out = tmp.path / "a",
                        .quantize = io::QuantSpec{.group_size = 64, .bits = 4}});
  });
  EXPECT_NE(message.find("quantization"), std::string::npos) << message;
  message = tests::error_of<UnsupportedError>([&] {
    convert_checkpoint({.model = fixture("models/paraformer/tiny"),
                        .out = tmp.path / "b",
                        .quantize = io::QuantSpec{.group_size = 64, .bits = 4}});
  });
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
  message = tests::error_of<ConfigError>([&] {
    convert_checkpoint({.model = fixture("models/qwen3/qwen2_tied"),
                        .out = tmp.path / "c",
                        .quantize = io::QuantSpec{.group_size = 48, .bits = 4}});
  });
  EXPECT_NE(message.find("group_size"), std::string::npos) << message;
  message = tests::error_of<InvalidArgument>(
      [&] { convert_checkpoint({.model = tmp.path, .out = tmp.path / "inside"}); });
  EXPECT_NE(message.find("inside"), std::string::npos) << message;
  for (const char* name : {"a", "b", "c", "a.partial", "b.partial", "c.partial"})
    EXPECT_FALSE(fs::exists(tmp.path / name)) << name;
}

TEST(ConvertErrors, MissingExpertNamed) {
  TempDir tmp("convert_missing_expert");
  const auto src = tmp.path / "src";
  fs::create_directory(src);
  tests::copy_model(
      fixture("models/qwen3/qwen3_moe"), src, [](nlohmann::json&) {},
      [](io::TensorMap& t) { t.erase("model.layers.2.mlp.experts.3.down_proj.weight"); });
  const auto message = tests::error_of<WeightError>(
      [&] { convert_checkpoint({.model = src, .out = tmp.path / "out"}); });
  EXPECT_NE(message.find("model.layers.2.mlp.experts.3.down_proj.weight"), std::string::npos)
      << message;
  EXPECT_FALSE(fs::exists(tmp.path / "out.partial"));
}

}  // namespace
}  // namespace ominix
