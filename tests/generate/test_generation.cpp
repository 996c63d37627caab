// The generation loop, speculative decoding and the library API, on the tiny Qwen fixtures of
// tools/fixtures/gen_qwen3.py (transformers 5.24 greedy continuations) and the tiny tokenizer of
// tools/fixtures/gen_tiny_chat.py.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <ranges>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/generate/generate.h"
#include "ominix/generate/speculative.h"
#include "ominix/models/qwen3.h"
#include "ominix/ominix.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;
namespace fs = std::filesystem;

static_assert(std::ranges::input_range<generate::TokenStream>);
static_assert(std::ranges::input_range<generate::TextStream>);
static_assert(std::same_as<std::ranges::range_value_t<generate::TokenStream>, int>);
static_assert(std::same_as<std::ranges::range_value_t<generate::TextStream>, std::string>);

namespace {

fs::path model_dir(const std::string& name) {
  return tests::fixture("models/qwen3/" + name);
}

std::vector<int> ints(const mx::array& a) {
  auto v = mx::astype(mx::flatten(a), mx::int32);
  mx::eval(v);
  return {v.data<int>(), v.data<int>() + v.size()};
}

/// A fixture's prompts and transformers' 32-token greedy continuations, per batch row.
struct Golden {
  std::vector<std::vector<int>> prompts, greedy;
};

Golden golden(const std::string& name) {
  auto e = io::load_safetensors(model_dir(name) / "expected.safetensors");
  Golden g;
  for (int b = 0; b < 2; ++b) {
    auto row = [&](const mx::array& a) { return ints(mx::slice(a, {b, 0}, {b + 1, a.shape(1)})); };
    g.prompts.push_back(row(e.at("input_ids")));
    g.greedy.push_back(row(e.at("greedy")));
  }
  return g;
}

const generate::LanguageModel& model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<generate::LanguageModel>> models;
  auto& m = models[name];
  if (!m) m = qwen3::load(model_dir(name));
  return *m;
}

text::Tokenizer tiny_tokenizer() {
  return text::Tokenizer::from_dir(tests::fixture("generate/tiny_chat"));
}

std::vector<int> run(const std::string& name, const std::vector<int>& prompt,
                     generate::GenerateParams params) {
  generate::PromptCache cache(model(name));
  return generate::generate(model(name), cache, prompt, params).tokens;
}

std::vector<int> head(const std::vector<int>& v, std::size_t n) {
  return {v.begin(), v.begin() + std::min(n, v.size())};
}

}  // namespace

// Greedy generation through the loop equals transformers' 32-token continuation exactly.
TEST(Generation, GreedyMatchesTransformers) {
  for (const char* name : {"qwen3_untied", "qwen2_tied", "qwen2_swa", "qwen3_moe"}) {
    auto g = golden(name);
    for (int b = 0; b < 2; ++b)
      EXPECT_EQ(run(name, g.prompts[b], {.max_tokens = 32, .ignore_eos = true}), g.greedy[b])
          << name << " row " << b;
  }
}

// Prefill in chunks of 1, 3 and 5 tokens gives the same tokens.
TEST(Generation, ChunkedPrefill) {
  auto g = golden("qwen3_untied");
  for (int step : {1, 3, 5})
    EXPECT_EQ(run("qwen3_untied", g.prompts[0],
                  {.max_tokens = 32, .ignore_eos = true, .prefill_step_size = step}),
              g.greedy[0])
        << "prefill_step_size " << step;
}

// qwen2_tied's first continuation reaches EOS (id 2) at its 17th token: generation stops there
// and the EOS is not emitted; ignore_eos goes on.
TEST(Generation, StopsAtEos) {
  auto g = golden("qwen2_tied");
  const auto& want = g.greedy[0];
  const auto eos_at = std::find(want.begin(), want.end(), 2) - want.begin();
  ASSERT_LT(eos_at, 32);
  generate::PromptCache cache(model("qwen2_tied"));
  auto r = generate::generate(model("qwen2_tied"), cache, g.prompts[0], {.max_tokens = 32});
  EXPECT_EQ(r.tokens, head(want, eos_at));
  EXPECT_EQ(r.finish_reason, generate::FinishReason::eos);
  EXPECT_EQ(r.stats.generation_tokens, eos_at + 1);
  // An extra EOS id from the caller: stop at the first token.
  generate::GenerateParams extra{.max_tokens = 32};
  extra.eos_token_ids = {want[0]};
  auto r2 = run("qwen2_tied", g.prompts[0], extra);
  EXPECT_TRUE(r2.empty());
}

TEST(Generation, MaxTokens) {
  auto g = golden("qwen3_untied");
  for (int n : {0, 1, 5}) {
    generate::PromptCache cache(model("qwen3_untied"));
    auto r = generate::generate(model("qwen3_untied"), cache, g.prompts[1], {.max_tokens = n});
    EXPECT_EQ(r.tokens, head(g.greedy[1], n));
    EXPECT_EQ(r.finish_reason, generate::FinishReason::max_tokens);
    EXPECT_EQ(r.stats.generation_tokens, n);
  }
}

// A stop string ends generation; neither it nor its tokens are emitted, text before it is.
TEST(Generation, StopStrings) {
  auto g = golden("qwen3_untied");
  auto tok = tiny_tokenizer();
  const auto& want = g.greedy[0];
  const std::string full = tok.decode(want);
  const std::string stop = tok.decode(std::vector<int>{want[6], want[7]});  // tokens 6 and 7
  const auto pos = full.find(stop);
  ASSERT_NE(pos, std::string::npos);
  generate::PromptCache cache(model("qwen3_untied"));
  // (Members that allocate are set after the designated initializer: GCC 12 reports a false
  // -Wmaybe-uninitialized when a later member's initializer list may throw.)
  generate::GenerateParams p{.max_tokens = 32, .tokenizer = tok};
  p.stop_strings = {"never appears", stop};
  auto r = generate::generate(model("qwen3_untied"), cache, g.prompts[0], p);
  EXPECT_EQ(r.finish_reason, generate::FinishReason::stop_string);
  EXPECT_EQ(r.text, full.substr(0, pos));
  EXPECT_EQ(tok.decode(r.tokens), r.text.substr(0, tok.decode(r.tokens).size()));
  EXPECT_LE(r.tokens.size(), 6u);
  // Without a match, the text is everything and the tokens are all emitted.
  generate::PromptCache cache2(model("qwen3_untied"));
  p.stop_strings = {"never appears"};
  auto r2 = generate::generate(model("qwen3_untied"), cache2, g.prompts[0], p);
  EXPECT_EQ(r2.tokens, want);
  EXPECT_EQ(r2.text, full);
  p.tokenizer.reset();
  EXPECT_THROW(run("qwen3_untied", g.prompts[0], p), InvalidArgument);
}

// Turn 2 extends turn 1's prompt and answer: the cache is reused, only the new suffix is
// prefilled, and the tokens equal a fresh run's.
TEST(Generation, PromptCacheReuse) {
  auto g = golden("qwen3_untied");
  const auto& m = model("qwen3_untied");
  generate::PromptCache cache(m);
  auto t1 = generate::generate(m, cache, g.prompts[0], {.max_tokens = 8});
  EXPECT_EQ(t1.stats.prompt_tokens, 12);
  EXPECT_EQ(t1.stats.cached_prompt_tokens, 0);
  EXPECT_EQ(cache.size(), 20);  // the prompt and every yielded token
  EXPECT_EQ(cache.cache().offset(), 20);

  auto prompt2 = g.prompts[0];
  prompt2.insert(prompt2.end(), t1.tokens.begin(), t1.tokens.end());
  prompt2.insert(prompt2.end(), {5, 6, 7, 8, 9});
  auto t2 = generate::generate(m, cache, prompt2, {.max_tokens = 16});
  EXPECT_EQ(t2.stats.cached_prompt_tokens, 20);
  EXPECT_EQ(t2.stats.prompt_tokens, 5);
  EXPECT_EQ(t2.tokens, run("qwen3_untied", prompt2, {.max_tokens = 16}));

  // A diverging prompt trims the cache back to the common prefix.
  auto prompt3 = head(g.prompts[0], 7);
  prompt3.insert(prompt3.end(), {40, 41, 42});
  auto t3 = generate::generate(m, cache, prompt3, {.max_tokens = 8});
  EXPECT_EQ(t3.stats.cached_prompt_tokens, 7);
  EXPECT_EQ(t3.stats.prompt_tokens, 3);
  EXPECT_EQ(t3.tokens, run("qwen3_untied", prompt3, {.max_tokens = 8}));
  // The same prompt again: everything but its last token is reused.
  auto t4 = generate::generate(m, cache, prompt3, {.max_tokens = 8});
  EXPECT_EQ(t4.stats.cached_prompt_tokens, 9);
  EXPECT_EQ(t4.tokens, t3.tokens);
}

TEST(Generation, Stats) {
  auto g = golden("qwen3_untied");
  generate::PromptCache cache(model("qwen3_untied"));
  auto r = generate::generate(model("qwen3_untied"), cache, g.prompts[0], {.max_tokens = 8});
  EXPECT_EQ(r.stats.prompt_tokens, 12);
  EXPECT_EQ(r.stats.generation_tokens, 8);
  EXPECT_GT(r.stats.prompt_tps, 0);
  EXPECT_GT(r.stats.generation_tps, 0);
  EXPECT_GT(r.stats.time_to_first_token_s, 0);
  EXPECT_GT(r.stats.peak_memory_bytes, 0u);
  EXPECT_EQ(r.stats.draft_tokens, 0);
}

// Logits processors and seeded sampling: the same seed gives the same tokens, and the loop
// draws exactly what a hand-written loop with the same Sampler draws.
TEST(Generation, SeededSampling) {
  auto g = golden("qwen3_untied");
  generate::GenerateParams p{.max_tokens = 12,
                             .sampler = {.temperature = 0.8f, .top_p = 0.95f, .seed = 7},
                             .logits = {.repetition_penalty = 1.3f},
                             .ignore_eos = true};
  auto a = run("qwen3_untied", g.prompts[0], p);
  EXPECT_EQ(a, run("qwen3_untied", g.prompts[0], p));
  p.sampler.seed = 8;
  EXPECT_NE(a, run("qwen3_untied", g.prompts[0], p));

  // Reference loop: full forward each step, same processors and sampler.
  p.sampler.seed = 7;
  const auto& m = model("qwen3_untied");
  auto processors = generate::make_logits_processors(p.logits);
  generate::Sampler sampler(p.sampler);
  std::vector<int> tokens = g.prompts[0], out;
  for (int i = 0; i < 12; ++i) {
    auto cache = m.make_cache();
    auto logits = m(mx::array(tokens.data(), {1, (int)tokens.size()}, mx::int32), cache);
    logits = mx::squeeze(mx::slice(logits, {0, logits.shape(1) - 1, 0}, logits.shape()), 1);
    auto hist = mx::array(tokens.data(), {(int)tokens.size()}, mx::int32);
    auto lp = generate::log_softmax(generate::apply_logits_processors(processors, hist, logits));
    out.push_back(ints(sampler(lp))[0]);
    tokens.push_back(out.back());
  }
  EXPECT_EQ(run("qwen3_untied", g.prompts[0], p), out);
}

TEST(Generation, PromptLongerThanContext) {
  const auto& m = model("qwen3_untied");  // max_position_embeddings 512
  std::vector<int> prompt(513, 7);
  generate::PromptCache cache(m);
  try {
    generate::generate(m, cache, prompt, {.max_tokens = 1});
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("513"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("512"), std::string::npos) << e.what();
  }
  // A rotating cache (max_kv_size) takes it.
  generate::PromptCache rotating(m, {.max_kv_size = 64});
  EXPECT_EQ(generate::generate(m, rotating, prompt, {.max_tokens = 2}).tokens.size(), 2u);
  // Bad prompts.
  EXPECT_THROW(generate::generate(m, cache, {}, {}), InvalidArgument);
  EXPECT_THROW(generate::generate(m, cache, {1, 128}, {}), InvalidArgument);
  EXPECT_THROW(generate::generate(m, cache, {1, -1}, {}), InvalidArgument);
}

TEST(Generation, CallbackCanStop) {
  auto g = golden("qwen3_untied");
  generate::PromptCache cache(model("qwen3_untied"));
  int calls = 0;
  auto r = generate::generate(model("qwen3_untied"), cache, g.prompts[0], {.max_tokens = 32},
                              [&](const generate::Chunk& c) {
                                EXPECT_EQ(c.tokens.size(), 1u);
                                return ++calls < 4;
                              });
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(r.tokens, head(g.greedy[0], 4));
  EXPECT_EQ(r.finish_reason, generate::FinishReason::cancelled);
}

TEST(Generation, KvCacheKinds) {
  auto g = golden("qwen3_untied");
  // A rotating cache wider than prompt + answer changes nothing.
  generate::PromptCache rotating(model("qwen3_untied"), {.max_kv_size = 64});
  EXPECT_EQ(
      generate::generate(model("qwen3_untied"), rotating, g.prompts[0], {.max_tokens = 32}).tokens,
      g.greedy[0]);
  // An 8-bit quantized cache runs (its tokens may differ from the float cache's).
  generate::PromptCache quantized(model("qwen3_untied"), {.kv_bits = 8, .kv_group_size = 32});
  EXPECT_EQ(generate::generate(model("qwen3_untied"), quantized, g.prompts[0], {.max_tokens = 8})
                .tokens.size(),
            8u);
}

// ------------------------------------------------------------------------------------------------
// Speculative decoding

// With greedy sampling the output equals the target alone, whatever the draft: the target as its
// own draft (everything accepted), and drafts of other weights (rejections).
TEST(Speculative, GreedyEqualsTarget) {
  auto g = golden("qwen3_untied");
  const auto& target = model("qwen3_untied");
  for (const char* draft_name : {"qwen3_untied", "qwen2_tied", "qwen3_moe"})
    for (int n : {1, 3, 5})
      for (int b = 0; b < 2; ++b) {
        generate::PromptCache cache(target), draft_cache(model(draft_name));
        auto r = generate::generate(
            target, cache, g.prompts[b],
            {.max_tokens = 32,
             .ignore_eos = true,
             .prefill_step_size = 5,
             .draft = {.model = &model(draft_name), .cache = &draft_cache, .num_draft_tokens = n}});
        EXPECT_EQ(r.tokens, g.greedy[b]) << draft_name << " n=" << n << " row " << b;
        EXPECT_GT(r.stats.draft_tokens, 0);
        if (std::string(draft_name) == "qwen3_untied")
          EXPECT_EQ(r.stats.acceptance_rate(), 1.0) << "n=" << n;
        else
          EXPECT_LT(r.stats.acceptance_rate(), 1.0) << draft_name;
        EXPECT_EQ(cache.cache().offset(), cache.size());
        EXPECT_EQ(draft_cache.cache().offset(), draft_cache.size());
      }
}

// Speculative decoding keeps both prompt caches across turns.
TEST(Speculative, PromptCacheReuse) {
  auto g = golden("qwen3_untied");
  const auto& target = model("qwen3_untied");
  generate::PromptCache cache(target), draft_cache(model("qwen2_tied"));
  generate::GenerateParams p{
      .max_tokens = 8,
      .draft = {.model = &model("qwen2_tied"), .cache = &draft_cache, .num_draft_tokens = 3}};
  auto t1 = generate::generate(target, cache, g.prompts[1], p);
  EXPECT_EQ(t1.tokens, head(g.greedy[1], 8));
  auto prompt2 = g.prompts[1];
  prompt2.insert(prompt2.end(), t1.tokens.begin(), t1.tokens.end());
  prompt2.insert(prompt2.end(), {11, 12});
  p.max_tokens = 12;
  auto t2 = generate::generate(target, cache, prompt2, p);
  EXPECT_GE(t2.stats.cached_prompt_tokens, 19);
  EXPECT_EQ(t2.tokens, run("qwen3_untied", prompt2, {.max_tokens = 12}));
}

// The acceptance rule keeps the target distribution: over seeded draws of a draft token from q,
// the first emitted token is distributed as p (each frequency within 5 standard errors).
TEST(Speculative, AcceptanceRulePreservesDistribution) {
  const std::vector<float> p = {0.5f, 0.2f, 0.15f, 0.1f, 0.05f};
  const std::vector<float> q = {0.1f, 0.4f, 0.1f, 0.3f, 0.1f};
  const int V = 5, trials = 6000;
  auto P = mx::array(p.data(), {1, V});
  P = mx::concatenate({P, P}, 0);  // [2, V]: the position after the draft is unused here
  auto Q = mx::array(q.data(), {1, V});
  std::vector<int> counts(V, 0);
  int accepted = 0;
  std::mt19937 rng(1234);
  std::discrete_distribution<int> draw_q(q.begin(), q.end());
  for (int t = 0; t < trials; ++t) {
    const int d = draw_q(rng);
    auto v = generate::verify_draft(P, Q, std::vector<int>{d}, mx::random::key(t));
    const int first = v.accepted ? d : v.token;
    ++counts[first];
    accepted += v.accepted;
    ASSERT_GE(v.token, 0);
    ASSERT_LT(v.token, V);
  }
  for (int i = 0; i < V; ++i) {
    const double f = static_cast<double>(counts[i]) / trials;
    const double se = std::sqrt(p[i] * (1 - p[i]) / trials);
    EXPECT_NEAR(f, p[i], 5 * se) << "token " << i;
  }
  // Expected acceptance: sum_x min(p(x), q(x)).
  double want = 0;
  for (int i = 0; i < V; ++i) want += std::min(p[i], q[i]);
  EXPECT_NEAR(static_cast<double>(accepted) / trials, want,
              5 * std::sqrt(want * (1 - want) / trials));
}

TEST(Speculative, AcceptanceRuleEdges) {
  // p == q: always accepted; the bonus token comes from the last row of p.
  auto P = mx::array({0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f}, {2, 3});
  auto Q = mx::array({0.0f, 1.0f, 0.0f}, {1, 3});
  auto v = generate::verify_draft(P, Q, std::vector<int>{1}, mx::random::key(0));
  EXPECT_EQ(v.accepted, 1);
  EXPECT_EQ(v.token, 2);
  // p(d) = 0: always rejected, the replacement drawn from norm(max(0, p - q)).
  auto Q2 = mx::array({0.0f, 0.0f, 1.0f}, {1, 3});
  auto v2 = generate::verify_draft(P, Q2, std::vector<int>{2}, mx::random::key(1));
  EXPECT_EQ(v2.accepted, 0);
  EXPECT_EQ(v2.token, 1);
  // Greedy verification.
  auto g = generate::verify_draft_greedy(std::vector<int>{4, 5, 9, 7}, std::vector<int>{4, 5, 6});
  EXPECT_EQ(g.accepted, 2);
  EXPECT_EQ(g.token, 9);
  auto all = generate::verify_draft_greedy(std::vector<int>{4, 5, 9}, std::vector<int>{4, 5});
  EXPECT_EQ(all.accepted, 2);
  EXPECT_EQ(all.token, 9);
}

// Speculative sampling runs end to end, reproducibly for a seed, and reports its acceptance.
TEST(Speculative, Sampling) {
  auto g = golden("qwen3_untied");
  const auto& target = model("qwen3_untied");
  auto once = [&](std::uint64_t seed) {
    generate::PromptCache cache(target), draft_cache(model("qwen2_tied"));
    return generate::generate(
        target, cache, g.prompts[0],
        {.max_tokens = 16,
         .sampler = {.temperature = 1.0f, .seed = seed},
         .logits = {.repetition_penalty = 1.1f},
         .ignore_eos = true,
         .draft = {.model = &model("qwen2_tied"), .cache = &draft_cache, .num_draft_tokens = 3}});
  };
  auto a = once(3);
  EXPECT_EQ(a.tokens.size(), 16u);
  EXPECT_EQ(a.tokens, once(3).tokens);
  EXPECT_GT(a.stats.draft_tokens, 0);
  for (int t : a.tokens) EXPECT_TRUE(t >= 0 && t < 128);
}

// ------------------------------------------------------------------------------------------------
// Library API: ranges

TEST(Api, TokenRangeWithTake) {
  auto g = golden("qwen3_untied");
  const auto& m = model("qwen3_untied");
  generate::PromptCache cache(m);
  std::vector<int> got;
  for (int tok : generate::TokenStream(generate::Generator(
                     m, cache, g.prompts[0], {.max_tokens = 100, .ignore_eos = true})) |
                     std::views::take(10))
    got.push_back(tok);
  EXPECT_EQ(got, head(g.greedy[0], 10));
  EXPECT_EQ(cache.size(), 12 + 10);  // no more was generated than taken
  // An lvalue stream keeps its stats.
  generate::PromptCache cache2(m);
  generate::TokenStream stream(generate::Generator(m, cache2, g.prompts[1], {.max_tokens = 6}));
  std::vector<int> all;
  for (int tok : stream) all.push_back(tok);
  EXPECT_EQ(all, head(g.greedy[1], 6));
  EXPECT_EQ(stream.stats().generation_tokens, 6);
}

TEST(Api, TextRange) {
  auto g = golden("qwen3_untied");
  const auto& m = model("qwen3_untied");
  auto tok = tiny_tokenizer();
  generate::PromptCache cache(m);
  std::string text;
  int pieces = 0;
  for (const auto& piece : generate::TextStream(
           generate::Generator(m, cache, g.prompts[0], {.max_tokens = 32, .tokenizer = tok}))) {
    EXPECT_FALSE(piece.empty());
    text += piece;
    ++pieces;
  }
  EXPECT_EQ(text, tok.decode(g.greedy[0]));
  EXPECT_GT(pieces, 1);
}

// ominix::load_model on a directory with weights and tokenizer files, then the range API.
TEST(Api, LoadModelAndGenerate) {
  const fs::path dir = fs::temp_directory_path() / ("ominix_api_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& src : {model_dir("qwen3_untied"), tests::fixture("generate/tiny_chat")})
    for (const auto& e : fs::directory_iterator(src)) fs::copy(e.path(), dir / e.path().filename());
  {
    std::vector<io::LoadProgress> progress;
    auto model = ominix::load_model(
        dir, {.progress = [&](const io::LoadProgress& p) { progress.push_back(p); }});
    ASSERT_EQ(progress.size(), 4u);  // four shards
    EXPECT_EQ(progress.back().files_done, 4u);
    EXPECT_EQ(progress.back().bytes_done, progress.back().bytes_total);
    ASSERT_TRUE(model.tokenizer());
    ASSERT_TRUE(model.chat_template());
    auto expected = tests::load_json(tests::fixture("generate/tiny_chat/expected.json"));
    auto plain = expected["plain"];
    auto prompt = model.encode(plain["text"].get<std::string>());
    EXPECT_EQ(prompt, plain["prompt_ids"].get<std::vector<int>>());
    auto cache = model.make_cache();
    std::vector<int> got;
    for (int tok :
         ominix::generate_tokens(model, cache, {.max_tokens = 64}, prompt) | std::views::take(16))
      got.push_back(tok);
    EXPECT_EQ(got, plain["greedy"].get<std::vector<int>>());

    auto chat = expected["chat"];
    auto chat_ids =
        model.encode_chat(nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi"}}}));
    EXPECT_EQ(chat_ids, chat["prompt_ids"].get<std::vector<int>>());
    auto cache2 = model.make_cache();
    std::string text;
    for (const auto& piece :
         ominix::generate_text(model, cache2, {.max_tokens = 16, .ignore_eos = true}, chat_ids))
      text += piece;
    EXPECT_EQ(text, chat["greedy_text"].get<std::string>());
  }
  fs::remove_all(dir);
  EXPECT_THROW(ominix::load_model(dir), IoError);
}
