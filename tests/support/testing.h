// Helpers shared by the test suites: fixture paths and numeric comparison by normalised error.
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <mlx/mlx.h>
#include <nlohmann/json.hpp>

#include "ominix/io/safetensors.h"

namespace ominix::tests {

namespace mx = mlx::core;

#ifdef OMINIX_FIXTURES
inline std::filesystem::path fixture(const std::string& rel) {
  return std::filesystem::path(OMINIX_FIXTURES) / rel;
}
#endif

/// A JSON fixture of any shape (case lists are arrays).
inline nlohmann::json load_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  return nlohmann::json::parse(in);
}

/// ||a - b|| / ||b|| and max |a - b|, computed in float32 on the CPU.
struct Diff {
  double rel = 0, max_abs = 0;
};
inline Diff diff(const mx::array& a, const mx::array& b) {
  auto x = mx::astype(a, mx::float32, mx::Device::cpu);
  auto y = mx::astype(b, mx::float32, mx::Device::cpu);
  auto d = mx::subtract(x, y, mx::Device::cpu);
  auto num = mx::sqrt(mx::sum(mx::square(d, mx::Device::cpu), mx::Device::cpu), mx::Device::cpu);
  auto den = mx::sqrt(mx::sum(mx::square(y, mx::Device::cpu), mx::Device::cpu), mx::Device::cpu);
  auto mx_abs = mx::max(mx::abs(d, mx::Device::cpu), mx::Device::cpu);
  mx::eval({num, den, mx_abs});
  double n = num.item<float>(), dd = den.item<float>();
  return {dd > 0 ? n / dd : n, mx_abs.item<float>()};
}

/// Asserts equal shapes, no NaN, and max |a - b| <= atol.
#define OMINIX_EXPECT_CLOSE(a, b, atol)                                                          \
  do {                                                                                           \
    auto _a = (a);                                                                               \
    auto _b = (b);                                                                               \
    ASSERT_EQ(_a.shape(), _b.shape());                                                           \
    auto _d = ::ominix::tests::diff(_a, _b);                                                     \
    EXPECT_FALSE(std::isnan(_d.max_abs)) << "NaN in result";                                     \
    EXPECT_LE(_d.max_abs, (atol)) << "rel error " << _d.rel << ", max abs error " << _d.max_abs; \
  } while (0)

/// Expects `got` within normalised error `tol` of `want` (same shape), naming `what`; the measured
/// error is recorded as a test property (it shows in --gtest_output=xml).
inline void expect_rel(const mx::array& got, const mx::array& want, double tol,
                       const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto d = diff(got, want);
  EXPECT_LE(d.rel, tol) << what << ": max abs " << d.max_abs;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2e / %.2e", d.rel, d.max_abs);
  testing::Test::RecordProperty(what + " (rel / max abs)", buf);
}

}  // namespace ominix::tests
