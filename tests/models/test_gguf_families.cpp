// GGUF copies of the Qwen2 / Qwen3 / Qwen3-MoE / GLM-4 / GLM-4-MoE fixtures and byte-level BPE
// tokenizer GGUFs, against the references of tools/fixtures/gen_gguf_families.py: the F32 files
// against the fixtures' transformers outputs (the six golden tests), the Q8_0 files against
// transformers run on the weights gguf.quants.dequantize gives back, the tokenizers against
// tokenizers' encoding of the same tokenizer.json and the chat template against jinja2.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <mlx/mlx.h>
#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/generate/model.h"
#include "ominix/io/gguf.h"
#include "ominix/io/safetensors.h"
#include "ominix/io/weights.h"
#include "ominix/models/glm4.h"
#include "ominix/models/qwen3.h"
#include "ominix/text/gguf_tokenizer.h"
#include "support/lm_golden.h"
#include "support/lm_testing.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kQwen = {"qwen2_tied", "qwen3_untied", "qwen3_moe"};
const std::vector<std::string> kGlm = {"glm4", "glm4_moe", "glm4_moe_plain"};

fs::path family_dir(const std::string& name) {
  const bool glm = name.starts_with("glm4");
  return tests::fixture((glm ? "models/glm4/" : "models/qwen3/") + name);
}

fs::path gguf_file(const std::string& name, const std::string& type) {
  return tests::fixture("models/gguf/" + name + "-" + type + ".gguf");
}

/// Through the GGUF registry, as `ominix generate --model FILE.gguf` does.
std::unique_ptr<generate::LanguageModel> load(const fs::path& file) {
  static const bool registered = [] {
    qwen3::register_family();
    glm4::register_family();
    return true;
  }();
  (void)registered;
  return generate::load_gguf_model(file);
}

std::vector<std::string> all_names() {
  auto names = kQwen;
  names.insert(names.end(), kGlm.begin(), kGlm.end());
  return names;
}

// ----------------------------------------------------------------------------------------------
// F32: the golden tests of the safetensors original, against the same transformers outputs.

class GgufF32Golden : public tests::LmGolden {};

OMINIX_LM_GOLDEN_TESTS(GgufF32Golden)

INSTANTIATE_TEST_SUITE_P(Fixtures, GgufF32Golden,
                         ::testing::ValuesIn(tests::lm_fixtures(
                             family_dir,
                             [](const fs::path& dir) {
                               return load(gguf_file(dir.filename().string(), "f32"));
                             },
                             all_names())),
                         tests::lm_fixture_name);

// ----------------------------------------------------------------------------------------------
// Q8_0 (kept packed): transformers on the dequantized weights.

class GgufQ8 : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufQ8, LogitsAndGreedyMatchTransformersOnTheDequantizedWeights) {
  const auto file = gguf_file(GetParam(), "q8_0");
  auto model = load(file);
  auto ref = io::load_safetensors(
      tests::fixture("models/gguf/" + GetParam() + "-q8_0.expected.safetensors"));
  tests::expect_logits_and_greedy(*model, ref, tests::kQuantTol);
}

TEST_P(GgufQ8, Q8WeightsStayPacked) {
  auto ck = io::load_gguf_checkpoint(gguf_file(GetParam(), "q8_0"));
  EXPECT_FALSE(ck.quantization.overrides.empty());
  for (const auto& [module, spec] : ck.quantization.overrides) {
    ASSERT_TRUE(spec) << module;
    EXPECT_EQ(spec->bits, 8) << module;
    EXPECT_EQ(spec->group_size, 32) << module;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GgufQ8, ::testing::ValuesIn(all_names()));

// ----------------------------------------------------------------------------------------------
// Q4_K (kept packed, 3-D expert stacks included): a Qwen3-MoE whose rows hold whole super-blocks.

TEST(GgufQ4K, LogitsAndGreedyMatchTransformersOnTheDequantizedWeights) {
  const auto file = tests::fixture("models/gguf/qwen3_moe_k-q4_k.gguf");
  auto model = load(file);
  auto ref =
      io::load_safetensors(tests::fixture("models/gguf/qwen3_moe_k-q4_k.expected.safetensors"));
  tests::expect_logits_and_greedy(*model, ref, tests::kQuantTol);
}

TEST(GgufQ4K, ExpertStacksStayPackedAt4Bits) {
  auto ck = io::load_gguf_checkpoint(tests::fixture("models/gguf/qwen3_moe_k-q4_k.gguf"));
  for (const char* module : {"blk.0.ffn_gate_exps", "blk.0.ffn_down_exps", "blk.0.attn_q"}) {
    ASSERT_TRUE(ck.quantization.overrides.count(module)) << module;
    EXPECT_EQ(ck.quantization.overrides.at(module), (io::QuantSpec{.group_size = 32, .bits = 4}))
        << module;
  }
  EXPECT_EQ(ck.tensors.at("blk.0.ffn_gate_exps.weight").shape(),
            (mx::Shape{4, 256, 256 * 4 / 32}));  // [E, I, D] packed in uint32
  EXPECT_EQ(ck.quantization.overrides.at("output")->bits, 8);
}

// ----------------------------------------------------------------------------------------------
// Metadata: what the config is built from.

TEST(GgufFamilies, ModelInfoComesFromTheMetadata) {
  auto qwen = load(gguf_file("qwen3_untied", "f32"));
  EXPECT_EQ(qwen->info().model_type, "qwen3");
  EXPECT_EQ(qwen->info().vocab_size, 128);
  EXPECT_EQ(qwen->info().num_layers, 2);
  EXPECT_EQ(qwen->info().max_position_embeddings, 512);
  EXPECT_EQ(qwen->info().eos_token_ids, std::vector<int>({2}));
  EXPECT_EQ(qwen->info().bos_token_id, 1);
  auto glm = load(gguf_file("glm4_moe", "f32"));
  EXPECT_EQ(glm->info().model_type, "glm4_moe");
  EXPECT_EQ(glm->info().num_layers, 3);  // block_count 4 less the next-token-prediction layer
  EXPECT_EQ(glm->info().eos_token_ids, std::vector<int>({2, 3}));  // eos, eot
}

TEST(GgufFamilies, LoadsReportThroughTheLoadProgressHook) {
  std::vector<io::LoadProgress> reports;
  {
    io::ScopedLoadProgress scope([&](const io::LoadProgress& p) { reports.push_back(p); });
    load(gguf_file("qwen3_moe", "q8_0"));
  }
  ASSERT_GE(reports.size(), 2u);
  for (std::size_t i = 1; i < reports.size(); ++i)
    EXPECT_GT(reports[i].bytes_done, reports[i - 1].bytes_done) << i;
  const auto& last = reports.back();
  EXPECT_EQ(last.files_done, 1u);
  EXPECT_EQ(last.files_total, 1u);
  EXPECT_EQ(last.bytes_done, last.bytes_total);
  EXPECT_GT(last.bytes_total, 0u);
  EXPECT_EQ(last.file, gguf_file("qwen3_moe", "q8_0"));
  for (std::size_t i = 0; i + 1 < reports.size(); ++i) EXPECT_EQ(reports[i].files_done, 0u) << i;
}

TEST(GgufFamilies, UnknownArchitectureListsTheKnownOnes) {
  auto file = fs::temp_directory_path() / "ominix_gguf_families_unknown.gguf";
  {
    // A copy of the qwen2 tokenizer file with its architecture string patched to "qwen9".
    std::ifstream in(tests::fixture("models/gguf/tok-qwen2.gguf"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = bytes.find("qwen2");
    ASSERT_NE(at, std::string::npos);
    bytes[at + 4] = '9';
    std::ofstream(file, std::ios::binary) << bytes;
  }
  load(gguf_file("qwen2_tied", "f32"));  // registers the families
  const auto message = tests::error_of<UnsupportedError>([&] { generate::load_gguf_model(file); });
  EXPECT_NE(message.find("'qwen9'"), std::string::npos) << message;
  EXPECT_NE(message.find("glm4moe"), std::string::npos) << message;
  EXPECT_NE(message.find("qwen3moe"), std::string::npos) << message;
  fs::remove(file);
}

TEST(GgufFamilies, WrongFamilyLoaderNamesTheArchitecture) {
  const auto message =
      tests::error_of<UnsupportedError>([] { glm4::load_gguf(gguf_file("qwen3_untied", "f32")); });
  EXPECT_NE(message.find("qwen3"), std::string::npos) << message;
  EXPECT_NE(message.find("general.architecture"), std::string::npos) << message;
}

// ----------------------------------------------------------------------------------------------
// Byte-level BPE tokenizers (tokenizer.ggml.model "gpt2") and the GGUF chat template.

class GgufBpeTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufBpeTokenizer, EncodesAndDecodesAsTokenizersDoes) {
  const auto file = io::GgufFile::open(tests::fixture("models/gguf/tok-" + GetParam() + ".gguf"));
  const auto data = io::GgufTokenizerData::parse(file.metadata());
  EXPECT_EQ(data.model, "gpt2");
  EXPECT_EQ(data.pre, GetParam());
  const auto tok = text::tokenizer_from_gguf(data, file.metadata().architecture(), file.name());
  const auto fx = tests::load_json(tests::fixture("models/gguf/tok-" + GetParam() + ".json"));
  int checked = 0;
  for (const auto& c : fx["cases"]) {
    const auto text = c["text"].get<std::string>();
    const auto where = nlohmann::json(text).dump().substr(0, 120);
    EXPECT_EQ(tok.encode(text, true), c["ids"].get<std::vector<text::TokenId>>()) << where;
    EXPECT_EQ(tok.encode(text, false), c["ids_plain"].get<std::vector<text::TokenId>>()) << where;
    const auto ids = c["ids"].get<std::vector<text::TokenId>>();
    for (bool skip : {false, true}) {
      const auto& expected = c[skip ? "decoded_skip" : "decoded"];
      if (expected.is_null()) continue;  // tokenizers panics on this one (see gen_tokenizer.py)
      EXPECT_EQ(tok.decode(ids, skip), expected.get<std::string>()) << where << skip;
    }
    ++checked;
  }
  for (const auto& c : fx["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<text::TokenId>>();
    for (bool skip : {false, true}) {
      const auto& expected = c[skip ? "text_skip" : "text"];
      if (expected.is_null()) continue;
      EXPECT_EQ(tok.decode(ids, skip), expected.get<std::string>()) << c["ids"].dump();
    }
    ++checked;
  }
  EXPECT_GT(checked, 60);
}

TEST_P(GgufBpeTokenizer, ChatTemplateRendersAsJinja2) {
  const auto file = io::GgufFile::open(tests::fixture("models/gguf/tok-" + GetParam() + ".gguf"));
  const auto data = io::GgufTokenizerData::parse(file.metadata());
  const auto fx = tests::load_json(tests::fixture("models/gguf/tok-" + GetParam() + ".json"));
  const auto tmpl = text::chat_template_from_gguf(data);
  ASSERT_TRUE(tmpl);
  const auto messages = nlohmann::ordered_json::parse(fx["messages"].dump());
  EXPECT_EQ(tmpl->render(messages, {.add_generation_prompt = true}),
            fx["rendered"].get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(Pre, GgufBpeTokenizer, ::testing::Values("qwen2", "glm4"));

TEST(GgufBpeTokenizerPre, SplitRegexFollowsTokenizerGgmlPre) {
  // GPT-2's own split instead of Qwen2's, or Qwen2's (digits one by one) instead of GLM-4's
  // (numbers in threes), change the ids of the corpus: the tests above see the regex.
  for (const auto& [name, other] :
       std::vector<std::pair<std::string, std::string>>{{"qwen2", ""}, {"glm4", "qwen2"}}) {
    const auto file = io::GgufFile::open(tests::fixture("models/gguf/tok-" + name + ".gguf"));
    const auto fx = tests::load_json(tests::fixture("models/gguf/tok-" + name + ".json"));
    auto data = io::GgufTokenizerData::parse(file.metadata());
    data.pre = other;
    const auto tok = text::tokenizer_from_gguf(data, name, file.name());
    int differ = 0;
    for (const auto& c : fx["cases"])
      differ += tok.encode(c["text"].get<std::string>(), false) !=
                c["ids_plain"].get<std::vector<text::TokenId>>();
    EXPECT_GT(differ, 0) << name << " as " << other;
  }
}

TEST(GgufBpeTokenizerErrors, BadMergeIsNamed) {
  const auto file = io::GgufFile::open(tests::fixture("models/gguf/tok-qwen2.gguf"));
  auto data = io::GgufTokenizerData::parse(file.metadata());
  data.merges.push_back("no_such_token Ġ");
  const auto message = tests::error_of<FormatError>(
      [&] { text::tokenizer_from_gguf(data, "qwen2", "tok-qwen2.gguf"); });
  EXPECT_NE(message.find("tok-qwen2.gguf: tokenizer.ggml.merges["), std::string::npos) << message;
}

}  // namespace
