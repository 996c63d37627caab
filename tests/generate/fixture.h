// Loading of the generate fixtures (tools/fixtures/gen_generate.py) and array comparisons.
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <mlx/ops.h>
#include <mlx/transforms.h>
#include <mlx/utils.h>
#include <nlohmann/json.hpp>

#include "ominix/io/safetensors.h"

namespace ominix::generate::testing {

namespace mx = mlx::core;
using json = nlohmann::json;

/// A fixture's JSON description and its tensors.
struct Fixture {
  json meta;
  io::TensorMap tensors;

  static Fixture load(const std::string& stem) {
    const auto dir = std::filesystem::path(OMINIX_FIXTURES) / "generate";
    std::ifstream in(dir / (stem + ".json"));
    if (!in) throw std::runtime_error("missing fixture " + stem + ".json");
    return {json::parse(in), io::load_safetensors(dir / (stem + ".safetensors"))};
  }
  mx::array operator[](const std::string& name) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw std::runtime_error("fixture tensor missing: " + name);
    return it->second;
  }
};

inline std::string shape_str(const mx::Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

/// Same shape, dtype and bits.
inline ::testing::AssertionResult same_array(const mx::array& a, const mx::array& b) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure()
           << "shapes differ: " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  if (a.dtype() != b.dtype())
    return ::testing::AssertionFailure() << "dtypes differ: " << a.dtype() << " vs " << b.dtype();
  if (!mx::array_equal(a, b).item<bool>())
    return ::testing::AssertionFailure() << "values differ:\n" << a << "\nvs\n" << b;
  return ::testing::AssertionSuccess();
}

/// Same shape; the same entries are -inf; finite entries within atol.
inline ::testing::AssertionResult same_filtered(const mx::array& got, const mx::array& want,
                                                double atol) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure()
           << "shapes differ: " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  // contiguous: astype to the same dtype keeps a strided view, and data<float>() reads raw memory.
  auto g = mx::contiguous(mx::astype(got, mx::float32));
  auto w = mx::contiguous(mx::astype(want, mx::float32));
  mx::eval(g, w);
  const float* gp = g.data<float>();
  const float* wp = w.data<float>();
  for (size_t i = 0; i < g.size(); ++i) {
    const bool gi = std::isinf(gp[i]) && gp[i] < 0, wi = std::isinf(wp[i]) && wp[i] < 0;
    if (gi != wi)
      return ::testing::AssertionFailure()
             << "-inf pattern differs at flat index " << i << ": " << gp[i] << " vs " << wp[i];
    if (!gi && !(std::abs(gp[i] - wp[i]) <= atol))
      return ::testing::AssertionFailure()
             << "value differs at flat index " << i << ": " << gp[i] << " vs " << wp[i];
  }
  return ::testing::AssertionSuccess();
}

/// max |a - b| as a double.
inline double max_abs_diff(const mx::array& a, const mx::array& b) {
  return mx::max(mx::abs(mx::subtract(mx::astype(a, mx::float32), mx::astype(b, mx::float32))))
      .item<float>();
}

}  // namespace ominix::generate::testing
