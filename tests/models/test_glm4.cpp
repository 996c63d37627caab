// GLM-4 / GLM-4-MoE against the fixtures of tools/fixtures/gen_glm4.py: transformers 5.24 (fp32
// logits at every position, greedy continuations, MoE routing) and mlx-lm 0.32.2 (quantized).
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
#include "ominix/models/glm4.h"
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
  return tests::fixture("models/glm4/" + name);
}
io::TensorMap expected(const std::string& name) {
  return tests::load_expected(model_dir(name));
}

std::unique_ptr<generate::LanguageModel> load(const std::string& name,
                                              const generate::LoadModelOptions& o = {},
                                              glm4::Tap tap = {}) {
  return glm4::load(model_dir(name), o, std::move(tap));
}

// ----------------------------------------------------------------------------------------------
// fp32 parity with transformers.

class Glm4Golden : public tests::LmGolden {};

OMINIX_LM_GOLDEN_TESTS(Glm4Golden)

INSTANTIATE_TEST_SUITE_P(Fixtures, Glm4Golden,
                         ::testing::ValuesIn(tests::lm_fixtures(
                             model_dir, [](const fs::path& dir) { return glm4::load(dir); },
                             {"glm4", "glm4_moe", "glm4_moe_plain"})),
                         tests::lm_fixture_name);

// ----------------------------------------------------------------------------------------------
// MoE routing (sigmoid + correction bias, grouped top-k), dtypes, quantized.

TEST(Glm4Moe, RouterSelectsTheReferenceExperts) {
  for (const char* name : {"glm4_moe", "glm4_moe_plain"}) {
    SCOPED_TRACE(name);
    std::map<int, mx::array> routes;
    auto model = load(name, {}, [&](std::string_view tap, int layer, const mx::array& v) {
      if (tap == "router_indices") routes.insert_or_assign(layer, v);
    });
    auto ref = expected(name);
    forward(*model, ref.at("input_ids"));
    // first_k_dense_replace layers are dense
    EXPECT_FALSE(tests::expect_routes_match(routes, ref).count(0));
  }
}

TEST(Glm4Dtypes, Bf16AndFp16LoadAndRun) {
  auto ref = expected("glm4");
  for (auto dtype : {mx::bfloat16, mx::float16}) {
    SCOPED_TRACE(dtype == mx::bfloat16 ? "bf16" : "fp16");
    tests::expect_half_precision_close(*load("glm4", {.dtype = dtype}), dtype, ref);
  }
}

TEST(Glm4Quantized, LogitsAndGreedyMatchMlxLm) {
  auto model = load("glm4_moe_q4");
  auto ref = expected("glm4_moe_q4");
  tests::expect_logits_and_greedy(*model, ref, kQuantTol);
}

// ----------------------------------------------------------------------------------------------
// Registry and load errors.

TEST(Glm4Registry, LoadModelDispatchesOnModelType) {
  glm4::register_family();
  for (const char* name : {"glm4", "glm4_moe"}) {
    auto model = generate::load_model(model_dir(name));
    auto ref = expected(name);
    expect_logits_close(forward(*model, ref.at("input_ids")), ref.at("logits"), kFp32Tol);
    EXPECT_EQ(model->info().model_type, name);
    EXPECT_EQ(model->info().eos_token_ids, (std::vector<int>{2, 3}));
  }
}

TEST(Glm4Errors, MtpLayersAreDroppedAndMissingTensorsNamed) {
  TempDir dir("mtp");
  copy_model(
      model_dir("glm4_moe"), dir.path, [](auto&) {},
      [](io::TensorMap& t) {
        t.insert_or_assign("model.layers.3.eh_proj.weight", mx::ones({4}));  // the MTP layer
      });
  auto ref = expected("glm4_moe");
  expect_logits_close(forward(*glm4::load(dir.path), ref.at("input_ids")), ref.at("logits"),
                      kFp32Tol);
  TempDir missing("missing");
  copy_model(
      model_dir("glm4"), missing.path, [](auto&) {},
      [](io::TensorMap& t) { t.erase("model.layers.1.post_mlp_layernorm.weight"); });
  auto msg = error_of<WeightError>([&] { glm4::load(missing.path); });
  EXPECT_NE(msg.find("model.layers.1.post_mlp_layernorm.weight"), std::string::npos) << msg;
  copy_model(
      model_dir("glm4_moe"), missing.path, [](auto&) {},
      [](io::TensorMap& t) {
        t.erase("model.layers.2.mlp.experts.3.down_proj.weight");
        t.erase("model.layers.1.mlp.gate.e_score_correction_bias");
      });
  msg = error_of<WeightError>([&] { glm4::load(missing.path); });
  EXPECT_NE(msg.find("model.layers.2.mlp.experts.3.down_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.1.mlp.gate.e_score_correction_bias"), std::string::npos) << msg;
}

TEST(Glm4Errors, BadConfigFieldsAreNamed) {
  std::vector<tests::ConfigCase> config_errors{
      {"glm4_moe", [](auto& c) { c["n_group"] = 3; }, "n_group"},
      {"glm4_moe", [](auto& c) { c["n_group"] = 8; }, "n_group"},  // groups of 1
      {"glm4_moe", [](auto& c) { c["topk_group"] = 5; }, "topk_group"},
      {"glm4_moe", [](auto& c) { c["num_experts_per_tok"] = 5; }, "num_experts_per_tok"},
      {"glm4_moe", [](auto& c) { c["first_k_dense_replace"] = -1; }, "first_k_dense_replace"},
      {"glm4_moe", [](auto& c) { c.erase("n_routed_experts"); }, "num_local_experts"},
      {"glm4_moe", [](auto& c) { c["partial_rotary_factor"] = 1.5; }, "partial_rotary_factor"},
      {"glm4", [](auto& c) { c["num_key_value_heads"] = 3; }, "num_key_value_heads"},
      {"glm4", [](auto& c) { c["intermediate_size"] = 0; }, "intermediate_size"},
  };
  tests::expect_config_errors_named<ConfigError>(
      model_dir, [](const fs::path& dir) { glm4::load(dir); }, config_errors);
  for (auto [key, value] :
       {std::pair{"scoring_func", "softmax"}, {"topk_method", "greedy"}, {"model_type", "glm"}}) {
    TempDir dir("unsupported");
    copy_model(model_dir("glm4_moe"), dir.path, [&](auto& c) { c[key] = value; });
    auto msg = error_of<UnsupportedError>([&] { glm4::load(dir.path); });
    EXPECT_NE(msg.find(std::string("config.json: ") + key), std::string::npos) << msg;
  }
}

TEST(Glm4Errors, BadInputsAreRejected) {
  tests::expect_bad_inputs_rejected(*load("glm4"));
}

}  // namespace
