// Generation features with a published semantics, against transformers runs of them on the tiny
// qwen3_untied fixture (tools/fixtures/gen_cli.py): per-token logprobs, OpenAI presence and
// frequency penalties over the generated tokens, logit bias, EOS forbidden (llama.cpp's
// --ignore-eos) or passed over (vLLM's ignore_eos), the stop at the model's context, and the
// CLI's UTF-8 offsets (Python's).
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli_util.h"
#include "ominix/generate/generate.h"
#include "ominix/ominix.h"
#include "support/testing.h"

using namespace ominix;

namespace {

using json = nlohmann::json;

const json& cases() {
  static const json j = tests::load_json(tests::fixture("generate/cli/expected.json"))["sampling"];
  return j;
}

const Model& model() {
  static const Model m = load_model(tests::fixture("models/qwen3/qwen3_untied"));
  return m;
}

generate::GenerationResult run(const json& c, generate::GenerateParams p) {
  p.max_tokens = c["max_tokens"].get<int>();
  if (c.contains("logit_bias"))
    for (const auto& [id, bias] : c["logit_bias"].items())
      p.logits.logit_bias[std::stoi(id)] = bias.get<float>();
  auto cache = model().make_cache();
  return generate::generate(model().lm(), cache, c["prompt"].get<std::vector<int>>(), p);
}

std::vector<int> tokens(const json& c) {
  return c["tokens"].get<std::vector<int>>();
}

}  // namespace

TEST(GenerateFeatures, LogprobsMatchTransformersLogSoftmax) {
  const auto& c = cases()["logprobs"];
  const int top = c["top"].get<int>();
  auto r = run(c, {.logprobs = top});
  ASSERT_EQ(r.tokens, tokens(c));
  ASSERT_EQ(r.logprobs.size(), r.tokens.size());
  for (std::size_t i = 0; i < r.tokens.size(); ++i) {
    const auto& want = c["logprobs"][i];
    const auto& got = r.logprobs[i];
    EXPECT_EQ(got.token, r.tokens[i]);
    EXPECT_NEAR(got.logprob, want["logprob"].get<float>(), 1e-4) << "step " << i;
    ASSERT_EQ(got.top.size(), static_cast<std::size_t>(top));
    for (int k = 0; k < top; ++k) {
      EXPECT_EQ(got.top[k].first, want["top"][k][0].get<int>()) << "step " << i << " rank " << k;
      EXPECT_NEAR(got.top[k].second, want["top"][k][1].get<float>(), 1e-4);
    }
  }
  // Without the option no logprobs are computed.
  EXPECT_TRUE(run(c, {}).logprobs.empty());
}

TEST(GenerateFeatures, OpenAIPenaltiesCountGeneratedTokensOnly) {
  const auto& c = cases()["penalties"];
  generate::GenerateParams p;
  p.logits.presence_penalty = c["presence_penalty"].get<float>();
  p.logits.frequency_penalty = c["frequency_penalty"].get<float>();
  p.logits.presence_context_size = std::nullopt;
  p.logits.frequency_context_size = std::nullopt;
  p.logits.penalty_scope = generate::PenaltyScope::generated;
  EXPECT_EQ(run(c, p).tokens, tokens(c));
  // Counting the prompt too (mlx-lm's scope) is a different distribution.
  p.logits.penalty_scope = generate::PenaltyScope::history;
  EXPECT_NE(run(c, p).tokens, tokens(c));
}

TEST(GenerateFeatures, LogitBiasMatchesSequenceBias) {
  const auto& c = cases()["logit_bias"];
  EXPECT_EQ(run(c, {}).tokens, tokens(c));
}

TEST(GenerateFeatures, EosForbiddenPassedOverOrStopping) {
  auto forbid = run(cases()["eos_forbid"], {.ban_eos = true});
  EXPECT_EQ(forbid.tokens, tokens(cases()["eos_forbid"]));
  EXPECT_EQ(forbid.finish_reason, generate::FinishReason::max_tokens);

  auto pass = run(cases()["eos_pass"], {.ignore_eos = true});
  EXPECT_EQ(pass.tokens, tokens(cases()["eos_pass"]));
  EXPECT_EQ(pass.finish_reason, generate::FinishReason::max_tokens);

  // Stopping: transformers' sequence ends with the EOS, which ominix does not emit.
  auto want = tokens(cases()["eos_stop"]);
  ASSERT_FALSE(want.empty());
  ASSERT_EQ(want.back(), 2);
  want.pop_back();
  auto stop = run(cases()["eos_stop"], {});
  EXPECT_EQ(stop.tokens, want);
  EXPECT_EQ(stop.finish_reason, generate::FinishReason::eos);
}

TEST(GenerateFeatures, EosForbiddenWithSpeculativeDecoding) {
  // The draft (here the target itself) and the verification both forbid EOS: the same tokens.
  auto draft_cache = model().make_cache();
  generate::GenerateParams p{.ban_eos = true};
  p.draft = {.model = &model().lm(), .cache = &draft_cache, .num_draft_tokens = 3};
  auto r = run(cases()["eos_forbid"], p);
  EXPECT_EQ(r.tokens, tokens(cases()["eos_forbid"]));
}

TEST(GenerateFeatures, StopsAtTheContext) {
  const int context = model().info().max_position_embeddings;
  ASSERT_EQ(context, 512);
  const std::vector<int> prompt(500, 5);
  for (int max_tokens : {100, -1}) {
    auto cache = model().make_cache();
    auto r = generate::generate(model().lm(), cache, prompt,
                                {.max_tokens = max_tokens, .ban_eos = true});
    EXPECT_EQ(r.tokens.size(), 12u) << max_tokens;
    EXPECT_EQ(r.finish_reason, generate::FinishReason::context);
    EXPECT_STREQ(generate::to_string(r.finish_reason), "length");
    EXPECT_EQ(cache.size(), context);
  }
  // A rotating cache has no context limit.
  auto rotating = model().make_cache({.max_kv_size = 64});
  auto r = generate::generate(model().lm(), rotating, prompt, {.max_tokens = 20, .ban_eos = true});
  EXPECT_EQ(r.tokens.size(), 20u);
  EXPECT_EQ(r.finish_reason, generate::FinishReason::max_tokens);
  // max_tokens below -1 is an error.
  auto cache = model().make_cache();
  EXPECT_THROW(generate::generate(model().lm(), cache, {1}, {.max_tokens = -2}), InvalidArgument);
}

TEST(GenerateFeatures, FinishReasonNames) {
  using generate::FinishReason;
  EXPECT_STREQ(generate::to_string(FinishReason::eos), "eos");
  EXPECT_STREQ(generate::to_string(FinishReason::stop_string), "stop");
  EXPECT_STREQ(generate::to_string(FinishReason::max_tokens), "length");
  EXPECT_STREQ(generate::to_string(FinishReason::cancelled), "cancelled");
}

TEST(GenerateFeatures, TextAssetsOfAGgufWithoutItsWeights) {
  // meta.gguf is no loadable model (architecture "tiny") and its tokenizer block is not one
  // ominix reads: the error names the file instead of looking for meta.gguf/tokenizer.json.
  // (The default model's GGUF tokenizer is checked against transformers by the cli tests.)
  try {
    load_text_assets(tests::fixture("gguf/meta.gguf"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("meta.gguf"), std::string::npos) << what;
    EXPECT_EQ(what.find("tokenizer.json"), std::string::npos) << what;
  }
  // A directory: tokenizer.json and the chat template.
  auto dir = load_text_assets(tests::fixture("generate/tiny_chat"));
  EXPECT_TRUE(dir.tokenizer);
  EXPECT_TRUE(dir.chat_template);
  EXPECT_THROW(load_text_assets(tests::fixture("generate/no_such_dir")), IoError);
  EXPECT_THROW(load_text_assets(tests::fixture("generate/cli/turns.jinja")), IoError);
}

// The CLI reports the byte offset of the first invalid UTF-8 sequence of what the user gave
// (apps/ominix/cli_util.h): Python's UnicodeDecodeError.start on the same bytes.
TEST(GenerateFeatures, Utf8OffsetsMatchPython) {
  const auto cases_ = tests::load_json(tests::fixture("generate/cli/expected.json"))["utf8"];
  ASSERT_GT(cases_.size(), 10u);
  for (const auto& c : cases_) {
    const auto hex = c["hex"].get<std::string>();
    std::string bytes;
    for (std::size_t i = 0; i < hex.size(); i += 2)
      bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    const auto got = cli::find_invalid_utf8(bytes);
    if (c["offset"].is_null())
      EXPECT_EQ(got, std::string::npos) << hex;
    else
      EXPECT_EQ(got, c["offset"].get<std::size_t>()) << hex;
  }
}
