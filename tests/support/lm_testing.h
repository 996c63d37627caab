// Helpers shared by the language-model family suites (tests/models/test_<family>.cpp): fixture
// loading, logits comparison by normalised error, greedy decoding, scratch checkpoints.
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mlx/mlx.h>
#include <nlohmann/json.hpp>

#include "ominix/generate/model.h"
#include "ominix/io/weights.h"
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

}  // namespace ominix::tests
