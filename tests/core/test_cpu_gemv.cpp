// The CPU matrix-vector kernels behind Linear and QuantizedLinear (core/nn/cpu_gemv.cpp) against
// MLX's own CPU matmul and quantized_matmul on the same inputs (OMINIX_FUSED_KERNELS off gives
// MLX's path): float32 weights, and MLX affine weights at every width MLX packs, groups of 32-128,
// 1-64 rows of x, sizes that do not fill a vector, x as a view at an odd offset, products large
// enough to be split over two threads.
#include <gtest/gtest.h>
#include <mlx/mlx.h>
#include <mlx/primitives.h>

#include <string>
#include <tuple>

#include "ominix/nn/fused.h"
#include "ominix/nn/linear.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;

namespace {

// Whether the kernels can run here (x86-64 with AVX2 and FMA).
bool kernels_here() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// rows x in float32, as a view one element into a larger buffer.
mx::array rows_of_x(int rows, int in) {
  auto buf = mx::random::normal({rows * in + 1});
  return mx::reshape(mx::slice(buf, {1}, {rows * in + 1}), {1, rows, in});
}

// f(x) with our kernel (checked by the output's primitive) and with MLX's, then compared.
template <typename F>
void expect_kernel_matches_mlx(F f, const mx::array& x, bool ours_expected) {
  auto y = f(x);
  // With a bias the product is the first input of the add.
  const auto& product = std::string(y.primitive().name()) == "Add" ? y.inputs()[0] : y;
  EXPECT_EQ(std::string(product.primitive().name()) == "OminixCpuGemv",
            ours_expected && kernels_here());
  nn::set_fused_kernels(false);
  auto want = f(x);
  nn::set_fused_kernels(true);
  mx::eval(y, want);
  tests::expect_rel(y, want, 1e-5, "kernel vs MLX");
}

}  // namespace

TEST(CpuGemv, DenseMatchesMlxMatmul) {
  mx::random::seed(11);
  for (auto [out, in, rows] : {std::tuple{1000, 640, 1}, std::tuple{37, 100, 3},
                               std::tuple{257, 2048, 64}, std::tuple{64, 96, 65}}) {
    SCOPED_TRACE(::testing::Message() << "out " << out << " in " << in << " rows " << rows);
    nn::Linear lin{mx::random::normal({out, in}), mx::random::normal({out})};
    mx::eval(lin.weight, *lin.bias);
    expect_kernel_matches_mlx([&](const mx::array& x) { return lin(x); }, rows_of_x(rows, in),
                              rows <= 64);
  }
}

TEST(CpuGemv, QuantizedMatchesMlxQuantizedMatmul) {
  mx::random::seed(12);
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int group : {32, 64, 128})
      for (int rows : {1, 2, 5, 64}) {
        SCOPED_TRACE(::testing::Message()
                     << "bits " << bits << " group " << group << " rows " << rows);
        const int out = 67, in = 384;
        auto q = nn::QuantizedLinear::from(nn::Linear{mx::random::normal({out, in})},
                                           {group, bits, io::QuantMode::affine});
        mx::eval(q.weight, q.scales, *q.biases);
        // One row at widths other than 4 and 8 stays on MLX's kernel, which was faster there.
        const bool ours = rows > 1 || bits == 4 || bits == 8;
        expect_kernel_matches_mlx([&](const mx::array& x) { return q(x); }, rows_of_x(rows, in),
                                  ours);
      }
}

TEST(CpuGemv, LargeProductsSplitOverTwoThreadsMatchMlx) {
  // Over 1 MiB of weights the rows are split between two threads (odd row counts included).
  mx::random::seed(13);
  for (int bits : {4, 5, 8})
    for (int rows : {1, 3}) {
      SCOPED_TRACE(::testing::Message() << "bits " << bits << " rows " << rows);
      auto q = nn::QuantizedLinear::from(nn::Linear{mx::random::normal({2051, 2048})},
                                         {64, bits, io::QuantMode::affine});
      mx::eval(q.weight, q.scales, *q.biases);
      expect_kernel_matches_mlx([&](const mx::array& x) { return q(x); }, rows_of_x(rows, 2048),
                                rows > 1 || bits != 5);
    }
}

TEST(CpuGemv, LazyOrNonFloatWeightsStayOnMlx) {
  // Weights not yet evaluated, or in bfloat16: MLX's kernels.
  auto w = mx::random::normal({16, 64});
  nn::Linear lazy{mx::multiply(w, mx::array(2.0f))};
  EXPECT_STRNE(lazy(rows_of_x(1, 64)).primitive().name(), "OminixCpuGemv");
  nn::Linear half{mx::astype(w, mx::bfloat16)};
  mx::eval(half.weight);
  EXPECT_STRNE(half(mx::astype(rows_of_x(1, 64), mx::bfloat16)).primitive().name(),
               "OminixCpuGemv");
}
