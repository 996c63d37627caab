// Qwen2 / Qwen3 / Qwen3-MoE against the fixtures of tools/fixtures/gen_qwen3.py: transformers 5.24
// (fp32 logits at every position, greedy continuations, MoE routing) and mlx-lm 0.32.2 (quantized).
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
#include "ominix/models/qwen3.h"
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
using tests::kPrompt;
using tests::kQuantTol;
using tests::row;
using tests::TempDir;
using tests::to_vector;

fs::path model_dir(const std::string& name) {
  return tests::fixture("models/qwen3/" + name);
}
io::TensorMap expected(const std::string& name) {
  return tests::load_expected(model_dir(name));
}

std::unique_ptr<generate::LanguageModel> load(const std::string& name,
                                              const generate::LoadModelOptions& o = {},
                                              qwen3::Tap tap = {}) {
  return qwen3::load(model_dir(name), o, std::move(tap));
}

// ----------------------------------------------------------------------------------------------
// fp32 parity with transformers, for every architecture and config flavour.

class Qwen3Golden : public tests::LmGolden {};

OMINIX_LM_GOLDEN_TESTS(Qwen3Golden)

TEST_P(Qwen3Golden, BatchRowsEqualSingleSequences) {
  auto model = GetParam().load(GetParam().dir);
  auto ref = tests::load_expected(GetParam().dir);
  for (int b = 0; b < 2; ++b)
    expect_logits_close(
        forward(*model, row(ref.at("input_ids"), b)),
        mx::slice(ref.at("logits"), {b, 0, 0}, {b + 1, kPrompt, ref.at("logits").shape(2)}),
        kFp32Tol);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Qwen3Golden,
                         ::testing::ValuesIn(tests::lm_fixtures(
                             model_dir, [](const fs::path& dir) { return qwen3::load(dir); },
                             {"qwen2_tied", "qwen2_swa", "qwen3_untied", "qwen3_moe",
                              "qwen3_moe_step2"})),
                         tests::lm_fixture_name);

// ----------------------------------------------------------------------------------------------
// MoE routing, caches, dtypes.

TEST(Qwen3Moe, RouterSelectsTheReferenceExperts) {
  for (const char* name : {"qwen3_moe", "qwen3_moe_step2"}) {
    SCOPED_TRACE(name);
    std::map<int, mx::array> routes;
    auto model = load(name, {}, [&](std::string_view tap, int layer, const mx::array& v) {
      if (tap == "router_indices") routes.insert_or_assign(layer, v);
    });
    auto ref = expected(name);
    forward(*model, ref.at("input_ids"));
    // decoder_sparse_step and mlp_only_layers pick the same layers
    tests::expect_routes_match(routes, ref);
  }
}

TEST(Qwen3Cache, QuantizedKVCacheStaysClose) {
  auto model = load("qwen3_untied");  // head_dim 32: one group of 32 per head
  auto ref = expected("qwen3_untied");
  auto prompt = row(ref.at("input_ids"), 0);
  auto cache = model->make_cache({.kv_bits = 8, .kv_group_size = 32});
  auto logits = (*model)(prompt, cache);
  auto d = tests::diff(logits, mx::slice(ref.at("logits"), {0, 0, 0}, {1, kPrompt, 128}));
  EXPECT_LT(d.rel, 3e-2);  // 8-bit keys/values; these random weights give keys of large range
  // Decoding over the quantized cache keeps the greedy path for these 8 steps.
  auto tokens = greedy(*model, prompt, 8, {.kv_bits = 8, .kv_group_size = 32});
  auto want = to_vector(row(ref.at("greedy"), 0));
  EXPECT_EQ(tokens, std::vector<int>(want.begin(), want.begin() + 8));
}

TEST(Qwen3Dtypes, Bf16AndFp16LoadAndRun) {
  for (const char* name : {"qwen2_tied", "qwen3_untied", "qwen3_moe"}) {
    auto ref = expected(name);
    for (auto dtype : {mx::bfloat16, mx::float16}) {
      SCOPED_TRACE(std::string(name) + (dtype == mx::bfloat16 ? " bf16" : " fp16"));
      // MLX's CPU gather_mm is float32-only (GatherMM::eval); MoE in half precision needs the GPU.
      if (std::string(name).find("moe") != std::string::npos &&
          mx::default_device() == mx::Device::cpu)
        continue;
      tests::expect_half_precision_close(*load(name, {.dtype = dtype}), dtype, ref);
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Quantized checkpoints (mlx_lm quantize_model) against mlx-lm itself.

class Qwen3Quantized : public ::testing::TestWithParam<std::string> {};

TEST_P(Qwen3Quantized, LogitsAndGreedyMatchMlxLm) {
  auto model = load(GetParam());
  auto ref = expected(GetParam());
  tests::expect_logits_and_greedy(*model, ref, kQuantTol);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Qwen3Quantized,
                         ::testing::Values("qwen3_untied_q4", "qwen3_moe_q4", "qwen2_tied_q8"),
                         [](const auto& info) { return info.param; });

// ----------------------------------------------------------------------------------------------
// Registry, model info and load errors.

TEST(Qwen3Registry, LoadModelDispatchesOnModelType) {
  qwen3::register_family();
  for (const char* name : {"qwen2_tied", "qwen3_untied", "qwen3_moe"}) {
    auto model = generate::load_model(model_dir(name));
    auto ref = expected(name);
    expect_logits_close(forward(*model, ref.at("input_ids")), ref.at("logits"), kFp32Tol);
  }
  auto info = generate::load_model(model_dir("qwen3_moe"))->info();
  EXPECT_EQ(info.model_type, "qwen3_moe");
  EXPECT_EQ(info.num_layers, 3);
  EXPECT_EQ(info.vocab_size, 128);
  EXPECT_EQ(info.max_position_embeddings, 512);
  EXPECT_EQ(info.eos_token_ids, std::vector<int>{2});
  EXPECT_EQ(info.bos_token_id, 1);
}

TEST(Qwen3Registry, UnsupportedModelTypeIsNamed) {
  qwen3::register_family();
  TempDir dir("llama");
  copy_model(model_dir("qwen2_tied"), dir.path, [](auto& c) { c["model_type"] = "llama4_text"; });
  auto msg = error_of<UnsupportedError>([&] { generate::load_model(dir.path); });
  EXPECT_NE(msg.find("model_type"), std::string::npos) << msg;
  EXPECT_NE(msg.find("qwen3_moe"), std::string::npos) << msg;  // lists the known types
  msg = error_of<UnsupportedError>([&] { qwen3::load(dir.path); });
  EXPECT_NE(msg.find("'llama4_text'"), std::string::npos) << msg;
}

TEST(Qwen3Errors, MissingTensorsAreAllNamed) {
  TempDir dir("missing");
  copy_model(
      model_dir("qwen3_moe"), dir.path, [](auto&) {},
      [](io::TensorMap& t) {
        t.erase("model.layers.0.self_attn.k_norm.weight");
        t.erase("model.layers.2.mlp.experts.3.down_proj.weight");
      });
  auto msg = error_of<WeightError>([&] { qwen3::load(dir.path); });
  EXPECT_NE(msg.find("model.layers.0.self_attn.k_norm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.2.mlp.experts.3.down_proj.weight"), std::string::npos) << msg;
}

TEST(Qwen3Errors, MisShapedTensorIsNamed) {
  TempDir dir("shape");
  copy_model(model_dir("qwen2_tied"), dir.path, [](auto& c) { c["intermediate_size"] = 96; });
  auto msg = error_of<WeightError>([&] { qwen3::load(dir.path); });
  EXPECT_NE(msg.find("model.layers.0.mlp.gate_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[96, 64]"), std::string::npos) << msg;
}

TEST(Qwen3Errors, UnexpectedTensorIsNamed) {
  TempDir dir("unexpected");
  copy_model(
      model_dir("qwen3_untied"), dir.path, [](auto&) {},
      [](io::TensorMap& t) {
        t.insert_or_assign("model.layers.0.self_attn.rotary_emb.inv_freq",
                           mx::ones({8}));  // ignored
        t.insert_or_assign("model.layers.0.mlp.extra.weight", mx::ones({4}));
      });
  auto msg = error_of<WeightError>([&] { qwen3::load(dir.path); });
  EXPECT_NE(msg.find("model.layers.0.mlp.extra.weight"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("inv_freq"), std::string::npos) << msg;
}

TEST(Qwen3Errors, BadConfigFieldsAreNamed) {
  std::vector<tests::ConfigCase> config_errors{
      {"qwen3_moe", [](auto& c) { c["num_experts_per_tok"] = 9; }, "num_experts_per_tok"},
      {"qwen3_moe", [](auto& c) { c["mlp_only_layers"] = {7}; }, "mlp_only_layers"},
      {"qwen3_moe", [](auto& c) { c["decoder_sparse_step"] = 0; }, "decoder_sparse_step"},
      {"qwen3_moe", [](auto& c) { c.erase("num_experts"); }, "num_local_experts"},
      {"qwen3_untied",
       [](auto& c) {
         c["layer_types"] = {"full_attention", "chunked_attention"};
       },
       "layer_types"},
      {"qwen3_untied", [](auto& c) { c["num_key_value_heads"] = 3; }, "num_key_value_heads"},
      {"qwen2_tied", [](auto& c) { c["vocab_size"] = "many"; }, "vocab_size"},
      {"qwen2_tied",
       [](auto& c) {
         c["use_sliding_window"] = true;
         c.erase("sliding_window");
       },
       "sliding_window"},
  };
  tests::expect_config_errors_named<ConfigError>(
      model_dir, [](const fs::path& dir) { qwen3::load(dir); }, config_errors);
  TempDir dir("act");
  copy_model(model_dir("qwen2_tied"), dir.path, [](auto& c) { c["hidden_act"] = "mish"; });
  auto msg = error_of<UnsupportedError>([&] { qwen3::load(dir.path); });
  EXPECT_NE(msg.find("hidden_act"), std::string::npos) << msg;
}

TEST(Qwen3Errors, BadInputsAreRejected) {
  tests::expect_bad_inputs_rejected(*load("qwen2_tied"));
}

}  // namespace
