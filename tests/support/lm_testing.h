// Helpers shared by the language-model family suites (tests/models/test_<family>.cpp): fixture
// loading, logits comparison by normalised error, greedy decoding, scratch checkpoints.
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mlx/mlx.h>
#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/generate/model.h"
#include "ominix/io/gguf.h"
#include "ominix/io/weights.h"
#include "ominix/text/gguf_tokenizer.h"
#include "support/testing.h"

namespace ominix::tests {

namespace mx = mlx::core;

/// Prompt length and greedy continuation length of every family's golden fixtures.
constexpr int kPrompt = 12, kNew = 32;
// Logits parity: max |ours - ref| <= tol * max |ref| and ||ours - ref|| / ||ref|| <= tol.
// fp32 against transformers (measured on the CPU for Qwen3: max abs <= 6.7e-6 at logit scale ~6,
// normalised <= 8e-7), quantized against mlx-lm (measured: max abs <= 4.6e-6, normalised
// <= 5.5e-7).
constexpr double kFp32Tol = 1e-5;
constexpr double kQuantTol = 5e-5;

/// dir/expected.safetensors: input_ids [2, kPrompt], logits [2, kPrompt, V], greedy [2, kNew], ...
inline io::TensorMap load_expected(const std::filesystem::path& dir) {
  return io::load_safetensors(dir / "expected.safetensors");
}

/// Row b of a [B, L] array, as [1, L].
inline mx::array row(const mx::array& a, int b) {
  return mx::slice(a, {b, 0}, {b + 1, a.shape(1)});
}

/// max |ref|.
inline double scale_of(const mx::array& ref) {
  auto m = mx::max(mx::abs(ref));
  return m.item<float>();
}

/// Equal shapes, no NaN, max |got - ref| <= tol * max |ref| and ||got - ref|| / ||ref|| <= tol;
/// records the measured errors as test properties (--gtest_output=xml keeps the last comparison).
inline void expect_logits_close(const mx::array& got, const mx::array& ref, double tol) {
  ASSERT_EQ(got.shape(), ref.shape());
  auto d = diff(got, ref);
  EXPECT_FALSE(std::isnan(d.max_abs));
  EXPECT_LE(d.max_abs, tol * scale_of(ref)) << "rel " << d.rel << ", max abs " << d.max_abs;
  EXPECT_LE(d.rel, tol) << "rel " << d.rel << ", max abs " << d.max_abs;
  ::testing::Test::RecordProperty("rel", fmt::format("{:.2e}", d.rel));
  ::testing::Test::RecordProperty("max_abs_over_scale",
                                  fmt::format("{:.2e}", d.max_abs / scale_of(ref)));
}

/// logits [1, L, V] -> the last position's argmax.
inline int argmax_last(const mx::array& logits) {
  auto last = mx::slice(logits, {0, logits.shape(1) - 1, 0}, logits.shape());
  return mx::astype(mx::argmax(mx::flatten(last)), mx::int32).item<int>();
}

/// Greedy decoding with the model's KV cache: prefill the prompt [1, L], then one token per step.
inline std::vector<int> greedy(const generate::LanguageModel& m, const mx::array& prompt, int n,
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

/// Any integer array, flattened to int32 values.
inline std::vector<int> to_vector(const mx::array& a) {
  auto v = mx::astype(mx::flatten(a), mx::int32);
  mx::eval(v);
  return {v.data<int>(), v.data<int>() + v.size()};
}

/// tokens [B, L] -> logits [B, L, V] from a fresh cache.
inline mx::array forward(const generate::LanguageModel& m, const mx::array& tokens) {
  auto cache = m.make_cache();
  return m(tokens, cache);
}

/// Logits at every prompt position within `tol` (normalised) of ref's "logits", and greedy
/// continuations of each of the two prompt rows equal to ref's "greedy".
inline void expect_logits_and_greedy(const generate::LanguageModel& m, const io::TensorMap& ref,
                                     double tol) {
  expect_logits_close(forward(m, ref.at("input_ids")), ref.at("logits"), tol);
  for (int b = 0; b < 2; ++b) {
    SCOPED_TRACE(b);
    EXPECT_EQ(greedy(m, row(ref.at("input_ids"), b), kNew), to_vector(row(ref.at("greedy"), b)));
  }
}

/// A model loaded in bfloat16 or float16 reports and computes in that dtype, and its logits stay
/// near ref's fp32 "logits" (normalised error under 0.05 in bf16, 0.01 in fp16).
inline void expect_half_precision_close(const generate::LanguageModel& m, mx::Dtype dtype,
                                        const io::TensorMap& ref) {
  EXPECT_EQ(m.info().dtype, dtype);
  auto logits = forward(m, ref.at("input_ids"));
  EXPECT_EQ(logits.dtype(), dtype);
  EXPECT_EQ(logits.shape(), ref.at("logits").shape());
  EXPECT_LT(diff(logits, ref.at("logits")).rel, dtype == mx::bfloat16 ? 0.05 : 0.01);
}

/// The experts a forward pass routed each token to (`routes`: layer -> [B*L, k] indices, from the
/// model's "router_indices" tap) are ref's "router.<layer>" sets, in any order within a token,
/// and the routed layers are ref's. Returns ref's routed layers.
inline std::set<int> expect_routes_match(const std::map<int, mx::array>& routes,
                                         const io::TensorMap& ref) {
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
    EXPECT_EQ(ours.size(), theirs.size()) << "layer " << layer;
    if (ours.size() != theirs.size()) continue;
    for (std::size_t t = 0; t < ours.size(); t += k) {
      std::multiset<int> a(ours.begin() + t, ours.begin() + t + k),
          b(theirs.begin() + t, theirs.begin() + t + k);
      EXPECT_EQ(a, b) << "layer " << layer << " token " << t / k;
    }
  }
  return ref_layers;
}

/// The tokenizer of a GGUF file (for its own architecture) encodes and decodes the strings of
/// `golden` ({"strings": [{text, ids, ids_no_special, decoded}...]}, at least 10) as transformers'
/// AutoTokenizer(gguf_file=...) does.
inline void expect_gguf_tokenizer_matches(const std::filesystem::path& gguf,
                                          const std::filesystem::path& golden) {
  SCOPED_TRACE(gguf.string());
  auto file = io::GgufFile::open(gguf);
  auto tok = text::tokenizer_from_gguf(io::GgufTokenizerData::parse(file.metadata()),
                                       file.metadata().architecture(), gguf.string());
  auto g = load_json(golden);
  ASSERT_GE(g["strings"].size(), 10u);
  for (const auto& s : g["strings"]) {
    const auto t = s["text"].get<std::string>();
    auto ids = tok.encode(t);
    EXPECT_EQ(std::vector<int>(ids.begin(), ids.end()), s["ids"].get<std::vector<int>>()) << t;
    auto plain = tok.encode(t, false);
    EXPECT_EQ(std::vector<int>(plain.begin(), plain.end()),
              s["ids_no_special"].get<std::vector<int>>())
        << t;
    EXPECT_EQ(tok.decode(ids, true), s["decoded"].get<std::string>()) << t;
  }
}

/// A scratch directory removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("ominix_lm_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

/// A copy of the checkpoint in `from` whose config.json is edited by `edit` and tensors by
/// `edit_tensors`.
inline void copy_model(const std::filesystem::path& from, const std::filesystem::path& to,
                       const std::function<void(nlohmann::json&)>& edit,
                       const std::function<void(io::TensorMap&)>& edit_tensors = {}) {
  auto config = load_json(from / "config.json");
  edit(config);
  std::ofstream(to / "config.json") << config.dump(2);
  auto tensors = io::load_checkpoint(from);
  if (edit_tensors) edit_tensors(tensors);
  io::save_safetensors(to / "model.safetensors", tensors);
}

/// The message of the E that f throws (a failure and "" when it throws none).
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

/// A config.json edit to the fixture `name` and the field the load error must name.
struct ConfigCase {
  const char* name;
  std::function<void(nlohmann::json&)> edit;
  const char* field;
};

/// For each case: `load` on a copy of dir_of(case.name) with the edit throws E whose message
/// names "config.json: <field>".
template <typename E>
void expect_config_errors_named(
    const std::function<std::filesystem::path(const std::string&)>& dir_of,
    const std::function<void(const std::filesystem::path&)>& load,
    const std::vector<ConfigCase>& cases) {
  for (const auto& [name, edit, field] : cases) {
    SCOPED_TRACE(field);
    TempDir dir("config");
    copy_model(dir_of(name), dir.path, edit);
    auto msg = error_of<E>([&] { load(dir.path); });
    EXPECT_NE(msg.find(std::string("config.json: ") + field), std::string::npos) << msg;
  }
}

/// Tokens that are not [B, L], or a cache with fewer layers than the model, are InvalidArgument.
inline void expect_bad_inputs_rejected(const generate::LanguageModel& model) {
  auto cache = model.make_cache();
  EXPECT_THROW(model(mx::array({1, 2, 3}, mx::int32), cache), InvalidArgument);
  generate::Cache short_cache = generate::Cache::make(1);
  EXPECT_THROW(model(mx::array({1, 2}, {1, 2}, mx::int32), short_cache), InvalidArgument);
}

}  // namespace ominix::tests
