// Mistral / Mixtral against the fixtures of tools/fixtures/gen_mixtral.py: transformers 5.24 (fp32
// logits at every position, greedy continuations, sliding windows, MoE routing) and mlx-lm 0.32.2
// (quantized).
#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/error.h"
#include "ominix/generate/model.h"
#include "ominix/io/weights.h"
#include "ominix/models/mixtral.h"
#include "support/lm_golden.h"
#include "support/lm_testing.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;
namespace fs = std::filesystem;

namespace {

using tests::copy_model;
using tests::error_of;
using tests::expect_logits_close;
using tests::forward;
using tests::greedy;
using tests::kFp32Tol;
using tests::kNew;
using tests::kQuantTol;
using tests::row;
using tests::TempDir;
using tests::to_vector;

fs::path model_dir(const std::string& name) {
  return tests::fixture("models/mixtral/" + name);
}
io::TensorMap expected(const std::string& name) {
  return tests::load_expected(model_dir(name));
}

std::unique_ptr<generate::LanguageModel> load(const std::string& name,
                                              const generate::LoadModelOptions& o = {},
                                              mixtral::Tap tap = {}) {
  return mixtral::load(model_dir(name), o, std::move(tap));
}

// ----------------------------------------------------------------------------------------------
// fp32 parity with transformers.

class MixtralGolden : public tests::LmGolden {};

OMINIX_LM_GOLDEN_TESTS(MixtralGolden)

INSTANTIATE_TEST_SUITE_P(Fixtures, MixtralGolden,
                         ::testing::ValuesIn(tests::lm_fixtures(
                             model_dir, [](const fs::path& dir) { return mixtral::load(dir); },
                             {"mixtral", "mixtral_swa", "mistral", "mistral_swa"})),
                         tests::lm_fixture_name);

// ----------------------------------------------------------------------------------------------
// Sliding window, MoE routing, dtypes, quantized.

// The 44-token sequences run past the window: without it the logits would differ.
TEST(MixtralWindow, SlidingWindowChangesTheLogits) {
  for (const char* name : {"mistral_swa", "mixtral_swa"}) {
    SCOPED_TRACE(name);
    TempDir dir("nowindow");
    copy_model(model_dir(name), dir.path, [](auto& c) { c["sliding_window"] = nullptr; });
    auto ref = expected(name);
    auto tokens = mx::concatenate({ref.at("input_ids"), ref.at("greedy")}, 1);  // [2, 44]
    auto d = tests::diff(forward(*mixtral::load(dir.path), tokens), forward(*load(name), tokens));
    EXPECT_GT(d.rel, 1e-3);
  }
}

// A rotating (windowed) KV cache holds only the window and still decodes the reference greedy.
TEST(MixtralWindow, RotatingCacheDecodesTheReference) {
  auto model = load("mistral_swa");
  auto ref = expected("mistral_swa");
  for (int b = 0; b < 2; ++b)
    EXPECT_EQ(greedy(*model, row(ref.at("input_ids"), b), kNew, {.max_kv_size = 16, .keep = 0}),
              to_vector(row(ref.at("greedy"), b)))
        << b;
}

TEST(MixtralMoe, RouterSelectsTheReferenceExperts) {
  for (const char* name : {"mixtral", "mixtral_swa"}) {
    SCOPED_TRACE(name);
    std::map<int, mx::array> routes;
    auto model = load(name, {}, [&](std::string_view tap, int layer, const mx::array& v) {
      if (tap == "router_indices") routes.insert_or_assign(layer, v);
    });
    auto ref = expected(name);
    forward(*model, ref.at("input_ids"));
    tests::expect_routes_match(routes, ref);
  }
}

TEST(MixtralDtypes, Bf16AndFp16LoadAndRun) {
  auto ref = expected("mistral_swa");
  for (auto dtype : {mx::bfloat16, mx::float16}) {
    SCOPED_TRACE(dtype == mx::bfloat16 ? "bf16" : "fp16");
    tests::expect_half_precision_close(*load("mistral_swa", {.dtype = dtype}), dtype, ref);
  }
}

TEST(MixtralQuantized, LogitsAndGreedyMatchMlxLm) {
  auto model = load("mixtral_q4");
  auto ref = expected("mixtral_q4");
  tests::expect_logits_and_greedy(*model, ref, kQuantTol);
}

// ----------------------------------------------------------------------------------------------
// Registry and load errors.

TEST(MixtralRegistry, LoadModelDispatchesOnModelType) {
  mixtral::register_family();
  for (const char* name : {"mistral", "mixtral"}) {
    auto model = generate::load_model(model_dir(name));
    auto ref = expected(name);
    expect_logits_close(forward(*model, ref.at("input_ids")), ref.at("logits"), kFp32Tol);
    EXPECT_EQ(model->info().model_type, name);
    EXPECT_EQ(model->info().eos_token_ids, std::vector<int>{2});
  }
}

TEST(MixtralErrors, MissingTensorsAreAllNamed) {
  TempDir dir("missing");
  copy_model(
      model_dir("mixtral"), dir.path, [](auto&) {},
      [](io::TensorMap& t) {
        t.erase("model.layers.1.block_sparse_moe.experts.3.w2.weight");
        t.erase("model.layers.0.block_sparse_moe.gate.weight");
      });
  auto msg = error_of<WeightError>([&] { mixtral::load(dir.path); });
  EXPECT_NE(msg.find("model.layers.1.block_sparse_moe.experts.3.w2.weight"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("model.layers.0.block_sparse_moe.gate.weight"), std::string::npos) << msg;
}

TEST(MixtralErrors, BadConfigFieldsAreNamed) {
  std::vector<tests::ConfigCase> config_errors{
      {"mixtral", [](auto& c) { c["num_experts_per_tok"] = 5; }, "num_experts_per_tok"},
      {"mixtral", [](auto& c) { c.erase("num_local_experts"); }, "num_local_experts"},
      {"mistral_swa", [](auto& c) { c["sliding_window"] = 0; }, "sliding_window"},
      {"mistral", [](auto& c) { c["num_key_value_heads"] = 3; }, "num_key_value_heads"},
      {"mistral", [](auto& c) { c["vocab_size"] = "many"; }, "vocab_size"},
  };
  tests::expect_config_errors_named<ConfigError>(
      model_dir, [](const fs::path& dir) { mixtral::load(dir); }, config_errors);
  std::vector<tests::ConfigCase> unsupported{
      {"mistral", [](auto& c) { c["attention_bias"] = true; }, "attention_bias"},
      {"mistral",
       [](auto& c) {
         c["layer_types"] = {"full_attention", "full_attention"};
       },
       "layer_types"},
      {"mixtral", [](auto& c) { c["model_type"] = "mistral3"; }, "model_type"},
  };
  tests::expect_config_errors_named<UnsupportedError>(
      model_dir, [](const fs::path& dir) { mixtral::load(dir); }, unsupported);
}

TEST(MixtralErrors, BadInputsAreRejected) {
  tests::expect_bad_inputs_rejected(*load("mistral"));
}

}  // namespace
