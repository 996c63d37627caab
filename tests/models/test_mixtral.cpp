// Mistral / Mixtral against the fixtures of tools/fixtures/gen_mixtral.py: transformers 5.24 (fp32
// logits at every position, greedy continuations, sliding windows, MoE routing) and mlx-lm 0.32.2
// (quantized).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/error.h"
#include "ominix/generate/model.h"
#include "ominix/io/weights.h"
#include "ominix/models/mixtral.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;
namespace fs = std::filesystem;

namespace {

constexpr int kPrompt = 12, kNew = 32;
// Logits parity: max |ours - ref| <= tol * max |ref| and ||ours - ref|| / ||ref|| <= tol, the
// tolerances of test_qwen3.cpp: fp32 against transformers, quantized against mlx-lm.
constexpr double kFp32Tol = 1e-5;
constexpr double kQuantTol = 5e-5;

fs::path model_dir(const std::string& name) {
  return tests::fixture("models/mixtral/" + name);
}
io::TensorMap expected(const std::string& name) {
  return io::load_safetensors(model_dir(name) / "expected.safetensors");
}

std::unique_ptr<generate::LanguageModel> load(const std::string& name,
                                              const generate::LoadModelOptions& o = {},
                                              mixtral::Tap tap = {}) {
  return mixtral::load(model_dir(name), o, std::move(tap));
}

mx::array row(const mx::array& a, int b) {
  return mx::slice(a, {b, 0}, {b + 1, a.shape(1)});
}  // [1, L]

double scale_of(const mx::array& ref) {
  auto m = mx::max(mx::abs(ref));
  return m.item<float>();
}

void expect_logits_close(const mx::array& got, const mx::array& ref, double tol) {
  ASSERT_EQ(got.shape(), ref.shape());
  auto d = tests::diff(got, ref);
  EXPECT_FALSE(std::isnan(d.max_abs));
  EXPECT_LE(d.max_abs, tol * scale_of(ref)) << "rel " << d.rel << ", max abs " << d.max_abs;
  EXPECT_LE(d.rel, tol) << "rel " << d.rel << ", max abs " << d.max_abs;
  // Measured errors in --gtest_output=xml (the last comparison of a test).
  ::testing::Test::RecordProperty("rel", fmt::format("{:.2e}", d.rel));
  ::testing::Test::RecordProperty("max_abs_over_scale",
                                  fmt::format("{:.2e}", d.max_abs / scale_of(ref)));
}

int argmax_last(const mx::array& logits) {  // [1, L, V] -> the last position's argmax
  auto last = mx::slice(logits, {0, logits.shape(1) - 1, 0}, logits.shape());
  return mx::astype(mx::argmax(mx::flatten(last)), mx::int32).item<int>();
}

/// Greedy decoding with the model's KV cache: prefill the prompt [1, L], then one token per step.
std::vector<int> greedy(const generate::LanguageModel& m, const mx::array& prompt, int n,
                        const generate::CacheOptions& cache_options = {}) {
  auto cache = m.make_cache(cache_options);
  auto logits = m(prompt, cache);
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(argmax_last(logits));
    logits = m(mx::array({out.back()}, {1, 1}, mx::int32), cache);
    mx::eval(cache.state());
  }
  return out;
}

std::vector<int> to_vector(const mx::array& a) {
  auto v = mx::astype(mx::flatten(a), mx::int32);
  mx::eval(v);
  return {v.data<int>(), v.data<int>() + v.size()};
}

mx::array forward(const generate::LanguageModel& m, const mx::array& tokens) {
  auto cache = m.make_cache();
  return m(tokens, cache);
}

/// A scratch directory removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() /
             ("ominix_mixtral_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

/// A copy of a fixture's checkpoint whose config.json is edited by `edit` and tensors by
/// `edit_tensors`.
void copy_model(const std::string& name, const fs::path& to,
                const std::function<void(nlohmann::json&)>& edit,
                const std::function<void(io::TensorMap&)>& edit_tensors = {}) {
  auto config = tests::load_json(model_dir(name) / "config.json");
  edit(config);
  std::ofstream(to / "config.json") << config.dump(2);
  auto tensors = io::load_checkpoint(model_dir(name));
  if (edit_tensors) edit_tensors(tensors);
  io::save_safetensors(to / "model.safetensors", tensors);
}

template <typename E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return {};
}

// ----------------------------------------------------------------------------------------------
// fp32 parity with transformers.

class MixtralGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(MixtralGolden, LogitsAtEveryPositionMatchTransformers) {
  auto model = load(GetParam());
  auto ref = expected(GetParam());
  expect_logits_close(forward(*model, ref.at("input_ids")), ref.at("logits"), kFp32Tol);
}

TEST_P(MixtralGolden, GreedyContinuationMatchesTransformersGenerate) {
  auto model = load(GetParam());
  auto ref = expected(GetParam());
  for (int b = 0; b < 2; ++b) {
    SCOPED_TRACE(b);
    EXPECT_EQ(greedy(*model, row(ref.at("input_ids"), b), kNew),
              to_vector(row(ref.at("greedy"), b)));
  }
}

// Prompt + continuation in one pass (for MoE, 2*44*2 routed pairs take the sorted-by-expert path).
TEST_P(MixtralGolden, FullSequenceWithoutCacheReproducesGreedy) {
  auto model = load(GetParam());
  auto ref = expected(GetParam());
  auto tokens = mx::concatenate({ref.at("input_ids"), ref.at("greedy")}, 1);  // [2, 44]
  auto logits = forward(*model, tokens);
  expect_logits_close(mx::slice(logits, {0, 0, 0}, {2, kPrompt, logits.shape(2)}), ref.at("logits"),
                      kFp32Tol);
  auto next = mx::argmax(
      mx::slice(logits, {0, kPrompt - 1, 0}, {2, kPrompt + kNew - 1, logits.shape(2)}), -1);
  EXPECT_EQ(to_vector(next), to_vector(ref.at("greedy")));
}

TEST_P(MixtralGolden, IncrementalDecodeEqualsFullForward) {
  auto model = load(GetParam());
  auto ref = expected(GetParam());
  auto tokens = mx::concatenate({ref.at("input_ids"), ref.at("greedy")}, 1);  // [2, 44]
  const int T = tokens.shape(1), V = model->info().vocab_size;
  auto full = forward(*model, tokens);
  auto cache = model->make_cache();
  (*model)(mx::slice(tokens, {0, 0}, {2, kPrompt}), cache);
  for (int t = kPrompt; t < T; ++t) {
    auto step = (*model)(mx::slice(tokens, {0, t}, {2, t + 1}), cache);  // [2, 1, V]
    mx::eval(cache.state());
    expect_logits_close(step, mx::slice(full, {0, t, 0}, {2, t + 1, V}), kFp32Tol);
  }
}

TEST_P(MixtralGolden, ChunkedPrefillMatchesOnePass) {
  auto model = load(GetParam());
  auto ref = expected(GetParam());
  auto cache = model->make_cache();
  std::vector<mx::array> chunks;
  for (int s = 0; s < kPrompt; s += 3) {
    chunks.push_back((*model)(mx::slice(ref.at("input_ids"), {0, s}, {2, s + 3}), cache));
    mx::eval(cache.state());
  }
  expect_logits_close(mx::concatenate(chunks, 1), ref.at("logits"), kFp32Tol);
}

TEST_P(MixtralGolden, CacheOffsetAdvancesByExactlyL) {
  auto model = load(GetParam());
  auto ids = expected(GetParam()).at("input_ids");
  auto cache = model->make_cache();
  auto logits = (*model)(ids, cache);
  EXPECT_EQ(logits.shape(), (mx::Shape{2, kPrompt, model->info().vocab_size}));
  for (std::size_t l = 0; l < cache.num_layers(); ++l) EXPECT_EQ(cache[l].offset(), kPrompt) << l;
  (*model)(mx::slice(ids, {0, 0}, {2, 5}), cache);
  for (std::size_t l = 0; l < cache.num_layers(); ++l)
    EXPECT_EQ(cache[l].offset(), kPrompt + 5) << l;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MixtralGolden,
                         ::testing::Values("mixtral", "mixtral_swa", "mistral", "mistral_swa"),
                         [](const auto& info) { return info.param; });

// ----------------------------------------------------------------------------------------------
// Sliding window, MoE routing, dtypes, quantized.

// The 44-token sequences run past the window: without it the logits would differ.
TEST(MixtralWindow, SlidingWindowChangesTheLogits) {
  for (const char* name : {"mistral_swa", "mixtral_swa"}) {
    SCOPED_TRACE(name);
    TempDir dir("nowindow");
    copy_model(name, dir.path, [](auto& c) { c["sliding_window"] = nullptr; });
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
    std::set<int> ref_layers, our_layers;
    for (const auto& [key, _] : ref)
      if (key.starts_with("router.")) ref_layers.insert(std::stoi(key.substr(7)));
    for (const auto& [layer, _] : routes) our_layers.insert(layer);
    EXPECT_EQ(our_layers, ref_layers);
    for (int layer : ref_layers) {
      if (!routes.count(layer)) continue;
      auto want = ref.at("router." + std::to_string(layer));  // [B*L, k]
      const int k = want.shape(1);
      auto ours = to_vector(routes.at(layer)), theirs = to_vector(want);
      ASSERT_EQ(ours.size(), theirs.size());
      for (std::size_t t = 0; t < ours.size(); t += k) {
        std::multiset<int> a(ours.begin() + t, ours.begin() + t + k),
            b(theirs.begin() + t, theirs.begin() + t + k);
        EXPECT_EQ(a, b) << "layer " << layer << " token " << t / k;
      }
    }
  }
}

TEST(MixtralDtypes, Bf16AndFp16LoadAndRun) {
  auto ref = expected("mistral_swa");
  for (auto dtype : {mx::bfloat16, mx::float16}) {
    SCOPED_TRACE(dtype == mx::bfloat16 ? "bf16" : "fp16");
    auto model = load("mistral_swa", {.dtype = dtype});
    EXPECT_EQ(model->info().dtype, dtype);
    auto logits = forward(*model, ref.at("input_ids"));
    EXPECT_EQ(logits.dtype(), dtype);
    EXPECT_LT(tests::diff(logits, ref.at("logits")).rel, dtype == mx::bfloat16 ? 0.05 : 0.01);
  }
}

TEST(MixtralQuantized, LogitsAndGreedyMatchMlxLm) {
  auto model = load("mixtral_q4");
  auto ref = expected("mixtral_q4");
  expect_logits_close(forward(*model, ref.at("input_ids")), ref.at("logits"), kQuantTol);
  for (int b = 0; b < 2; ++b)
    EXPECT_EQ(greedy(*model, row(ref.at("input_ids"), b), kNew),
              to_vector(row(ref.at("greedy"), b)))
        << b;
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
      "mixtral", dir.path, [](auto&) {},
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
  struct Case {
    const char* name;
    std::function<void(nlohmann::json&)> edit;
    const char* field;
  };
  std::vector<Case> config_errors{
      {"mixtral", [](auto& c) { c["num_experts_per_tok"] = 5; }, "num_experts_per_tok"},
      {"mixtral", [](auto& c) { c.erase("num_local_experts"); }, "num_local_experts"},
      {"mistral_swa", [](auto& c) { c["sliding_window"] = 0; }, "sliding_window"},
      {"mistral", [](auto& c) { c["num_key_value_heads"] = 3; }, "num_key_value_heads"},
      {"mistral", [](auto& c) { c["vocab_size"] = "many"; }, "vocab_size"},
  };
  for (const auto& [name, edit, field] : config_errors) {
    SCOPED_TRACE(field);
    TempDir dir("config");
    copy_model(name, dir.path, edit);
    auto msg = error_of<ConfigError>([&] { mixtral::load(dir.path); });
    EXPECT_NE(msg.find(std::string("config.json: ") + field), std::string::npos) << msg;
  }
  std::vector<Case> unsupported{
      {"mistral", [](auto& c) { c["attention_bias"] = true; }, "attention_bias"},
      {"mistral",
       [](auto& c) {
         c["layer_types"] = {"full_attention", "full_attention"};
       },
       "layer_types"},
      {"mixtral", [](auto& c) { c["model_type"] = "mistral3"; }, "model_type"},
  };
  for (const auto& [name, edit, field] : unsupported) {
    SCOPED_TRACE(field);
    TempDir dir("unsupported");
    copy_model(name, dir.path, edit);
    auto msg = error_of<UnsupportedError>([&] { mixtral::load(dir.path); });
    EXPECT_NE(msg.find(std::string("config.json: ") + field), std::string::npos) << msg;
  }
}

TEST(MixtralErrors, BadInputsAreRejected) {
  auto model = load("mistral");
  auto cache = model->make_cache();
  EXPECT_THROW((*model)(mx::array({1, 2, 3}, mx::int32), cache), InvalidArgument);
  generate::Cache short_cache = generate::Cache::make(1);
  EXPECT_THROW((*model)(mx::array({1, 2}, {1, 2}, mx::int32), short_cache), InvalidArgument);
}

}  // namespace
