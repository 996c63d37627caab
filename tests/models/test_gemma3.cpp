// Gemma 3 against tools/fixtures/gen_gemma3.py: transformers 5.24 on a tiny random checkpoint
// (safetensors, nested gemma3 layout, GGUF F32 and Q8_0), and the default model (Gemma 3 270M
// Q4_K_M GGUF, installed by scripts/setup.sh): GGUF tokenizer ids and chat template against
// transformers, greedy answers to factual prompts.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/generate/model.h"
#include "ominix/io/gguf.h"
#include "ominix/io/safetensors.h"
#include "ominix/models/gemma3.h"
#include "ominix/text/gguf_tokenizer.h"
#include "support/lm_testing.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;
namespace fs = std::filesystem;

namespace {

// Logits parity as qwen3's tests: max |ours - ref| <= tol * max |ref| and normalised <= tol.
constexpr double kFp32Tol = 1e-5;

fs::path dir() {
  return tests::fixture("models/gemma3");
}

mx::array row(const mx::array& a, int b) {
  return mx::slice(a, {b, 0}, {b + 1, a.shape(1)});
}

std::vector<int> to_vector(const mx::array& a) {
  auto v = mx::astype(mx::flatten(a), mx::int32);
  mx::eval(v);
  return {v.data<int>(), v.data<int>() + v.size()};
}

void expect_close(const mx::array& got, const mx::array& ref, double tol) {
  ASSERT_EQ(got.shape(), ref.shape());
  auto d = tests::diff(got, ref);
  const double scale = mx::max(mx::abs(ref)).item<float>();
  EXPECT_LE(d.max_abs, tol * scale) << "rel " << d.rel << ", max abs " << d.max_abs;
  EXPECT_LE(d.rel, tol) << "rel " << d.rel << ", max abs " << d.max_abs;
}

int argmax_last(const mx::array& logits) {
  auto last = mx::slice(logits, {0, logits.shape(1) - 1, 0}, logits.shape());
  return mx::astype(mx::argmax(mx::flatten(last)), mx::int32).item<int>();
}

std::vector<int> greedy(const generate::LanguageModel& m, const mx::array& prompt, int n) {
  auto cache = m.make_cache();
  auto logits = m(prompt, cache);
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(argmax_last(logits));
    logits = m(mx::array({out.back()}, {1, 1}, mx::int32), cache);
    mx::eval(cache.state());
  }
  return out;
}

struct Case {
  const char* name;
  std::function<std::unique_ptr<generate::LanguageModel>()> load;
  const char* expected;
  double tol;
};

class Gemma3Golden : public ::testing::TestWithParam<Case> {};

TEST_P(Gemma3Golden, LogitsAtEveryPositionMatchTransformers) {
  const auto& c = GetParam();
  auto ref = io::load_safetensors(dir() / c.expected);
  auto model = c.load();
  auto cache = model->make_cache();
  expect_close(model->operator()(ref.at("input_ids"), cache), ref.at("logits"), c.tol);
}

TEST_P(Gemma3Golden, GreedyContinuationMatchesTransformersGenerate) {
  const auto& c = GetParam();
  auto ref = io::load_safetensors(dir() / c.expected);
  auto model = c.load();
  for (int b = 0; b < 2; ++b)
    EXPECT_EQ(greedy(*model, row(ref.at("input_ids"), b), 32), to_vector(row(ref.at("greedy"), b)));
}

// Token-by-token decode through the rotating (window 4) and growing caches gives the logits of
// one full forward at every position.
TEST_P(Gemma3Golden, IncrementalDecodeEqualsFullForward) {
  const auto& c = GetParam();
  auto ref = io::load_safetensors(dir() / c.expected);
  auto model = c.load();
  auto tokens = mx::concatenate({ref.at("input_ids"), ref.at("greedy")}, 1);  // [2, 44]
  auto full_cache = model->make_cache();
  auto full = (*model)(tokens, full_cache);
  auto cache = model->make_cache();
  std::vector<mx::array> steps{(*model)(mx::slice(tokens, {0, 0}, {2, 5}), cache)};
  for (int i = 5; i < tokens.shape(1); ++i) {
    steps.push_back((*model)(mx::slice(tokens, {0, i}, {2, i + 1}), cache));
    mx::eval(cache.state());
    EXPECT_EQ(cache.offset(), i + 1);
  }
  expect_close(mx::concatenate(steps, 1), full, kFp32Tol);
}

const Case kCases[] = {
    {"safetensors", [] { return gemma3::load(dir() / "tiny"); }, "tiny/expected.safetensors",
     kFp32Tol},
    {"nested", [] { return gemma3::load(dir() / "nested"); }, "tiny/expected.safetensors",
     kFp32Tol},
    {"gguf_f32", [] { return gemma3::load_gguf(dir() / "tiny-f32.gguf"); },
     "tiny-f32.expected.safetensors", kFp32Tol},
    {"gguf_q8_0", [] { return gemma3::load_gguf(dir() / "tiny-q8_0.gguf"); },
     "tiny-q8_0.expected.safetensors", kFp32Tol},
};
INSTANTIATE_TEST_SUITE_P(Tiny, Gemma3Golden, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Gemma3, GgufLoadEqualsSafetensorsLoad) {
  auto ids = io::load_safetensors(dir() / "tiny/expected.safetensors").at("input_ids");
  auto a = gemma3::load(dir() / "tiny"), b = gemma3::load_gguf(dir() / "tiny-f32.gguf");
  auto ca = a->make_cache(), cb = b->make_cache();
  expect_close((*b)(ids, cb), (*a)(ids, ca), kFp32Tol);
}

TEST(Gemma3, CachesFollowLayerKinds) {
  auto model = gemma3::load(dir() / "tiny");
  auto cache = model->make_cache();
  ASSERT_EQ(cache.num_layers(), 4u);
  EXPECT_NE(dynamic_cast<generate::RotatingKVCache*>(&cache[0]), nullptr);
  EXPECT_NE(dynamic_cast<generate::KVCache*>(&cache[2]), nullptr);
  auto q = model->make_cache({.kv_bits = 8, .kv_group_size = 16});
  EXPECT_NE(dynamic_cast<generate::QuantizedKVCache*>(&q[2]), nullptr);
}

TEST(Gemma3Tokenizer, TinyGgufMatchesTransformers) {
  tests::expect_gguf_tokenizer_matches(dir() / "tiny-f32.gguf", dir() / "tiny_tokenizer.json");
}

TEST(Gemma3Tokenizer, TinyGgufChatTemplateRendersLikeTransformers) {
  auto file = io::GgufFile::open(dir() / "tiny-f32.gguf");
  auto data = io::GgufTokenizerData::parse(file.metadata());
  auto tmpl = text::chat_template_from_gguf(data);
  ASSERT_TRUE(tmpl.has_value());
  const auto fixture = tests::load_json(dir() / "tiny_tokenizer.json");  // outlives the loop
  for (const auto& c : fixture["chat"])
    EXPECT_EQ(tmpl->render(nlohmann::ordered_json(c["messages"]), {.add_generation_prompt = true}),
              c["text"].get<std::string>());
}

// --- The default model (scripts/setup.sh installs it; missing means a broken setup: fail) ---

fs::path default_model() {
  const auto p = gemma3::default_model();
  if (!fs::exists(p))
    ADD_FAILURE() << p << " is missing: run scripts/setup.sh (it installs the default model)";
  return p;
}

TEST(Gemma3Default, GgufTokenizerMatchesTransformers) {
  const auto p = default_model();
  if (!fs::exists(p)) return;
  tests::expect_gguf_tokenizer_matches(p, dir() / "default_tokenizer.json");
}

// transformers' greedy continuations from the same GGUF (tools/fixtures/gen_gemma3.py
// --default-model): ours must be the same tokens, and the few-shot factual prompts must answer.
TEST(Gemma3Default, GreedyCompletionsMatchTransformersAndAreFactual) {
  const auto p = default_model();
  if (!fs::exists(p)) return;
  auto file = io::GgufFile::open(p);
  auto tok = text::tokenizer_from_gguf(io::GgufTokenizerData::parse(file.metadata()), "gemma3",
                                       p.string());
  auto model = gemma3::load_gguf(p);
  auto cases = tests::load_json(dir() / "default_greedy.json");
  ASSERT_GE(cases.size(), 3u);
  for (const auto& c : cases) {
    const std::string prompt = c["prompt"];
    SCOPED_TRACE(prompt);
    auto ids = tok.encode(prompt);
    EXPECT_EQ(ids, c["prompt_ids"].get<std::vector<text::TokenId>>());
    const auto expected = c["greedy_ids"].get<std::vector<int>>();
    auto out = greedy(*model, mx::array(ids.data(), {1, int(ids.size())}, mx::int32),
                      int(expected.size()));
    EXPECT_EQ(std::vector<int>(out.begin(), out.end()), expected);
    const auto text = tok.decode(std::vector<text::TokenId>(out.begin(), out.end()), true);
    if (!c["answer"].is_null()) {
      EXPECT_NE(text.find(c["answer"].get<std::string>()), std::string::npos)
          << prompt << " -> " << text;
    }
  }
}

}  // namespace
