// The CPU matrix-vector kernels behind Linear and QuantizedLinear (core/nn/cpu_gemv.cpp) against
// MLX's own CPU matmul and quantized_matmul on the same inputs (OMINIX_FUSED_KERNELS off gives
// MLX's path): float32 and bfloat16 weights, and MLX affine weights at every width MLX packs,
// groups of 32-128, 1-64 rows of x, sizes that do not fill a vector, x as a view at an odd offset,
// products large enough to be split over two threads.
#include <gtest/gtest.h>
#include <mlx/mlx.h>
#include <mlx/primitives.h>

#include <string>
#include <tuple>

#include "core/nn/cpu_gemv.h"
#include "ominix/nn/fused.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/sanm.h"
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
                              true);  // 65 rows: two blocks of rows
  }
}

TEST(CpuGemv, QuantizedMatchesMlxQuantizedMatmul) {
  mx::random::seed(12);
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int group : {32, 64, 128})
      for (int rows : {1, 2, 5, 64, 130}) {  // 130: blocks of 64, 64 and 2 rows
        SCOPED_TRACE(::testing::Message()
                     << "bits " << bits << " group " << group << " rows " << rows);
        const int out = 67, in = 384;
        auto q = nn::QuantizedLinear::from(nn::Linear{mx::random::normal({out, in})},
                                           {group, bits, io::QuantMode::affine});
        mx::eval(q.weight, q.scales, *q.biases);
        expect_kernel_matches_mlx([&](const mx::array& x) { return q(x); }, rows_of_x(rows, in),
                                  true);
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
                                true);
    }
}

// bfloat16 weights (dense, or scales and biases of quantized ones) with bfloat16 x, as
// mlx-community checkpoints run: computed in float32 and rounded once. Against the same weights in
// float32: as close as MLX's own bfloat16 kernels, give or take one rounding.
TEST(CpuGemv, Bfloat16MatchesFloat32AsCloselyAsMlx) {
  mx::random::seed(14);
  for (int bits : {0, 4, 5, 8})
    for (int rows : {1, 3}) {
      SCOPED_TRACE(::testing::Message() << "bits " << bits << " rows " << rows);
      const int out = 1031, in = 640;
      auto w = mx::astype(mx::random::normal({out, in}), mx::bfloat16);
      auto x = mx::astype(rows_of_x(rows, in), mx::bfloat16);
      mx::array exact(0.0f), y(0.0f), y_mlx(0.0f);
      if (bits == 0) {
        nn::Linear lin{w};
        mx::eval(lin.weight);
        exact = mx::matmul(mx::astype(x, mx::float32), mx::transpose(mx::astype(w, mx::float32)));
        y = lin(x);
        nn::set_fused_kernels(false);
        y_mlx = lin(x);
        nn::set_fused_kernels(true);
      } else {
        auto q = nn::QuantizedLinear::from(nn::Linear{w}, {64, bits, io::QuantMode::affine});
        mx::eval(q.weight, q.scales, *q.biases);
        ASSERT_EQ(q.scales.dtype(), mx::bfloat16);
        auto dense = mx::dequantize(q.weight, mx::astype(q.scales, mx::float32),
                                    mx::astype(*q.biases, mx::float32), 64, bits);
        exact = mx::matmul(mx::astype(x, mx::float32), mx::transpose(dense));
        y = q(x);
        nn::set_fused_kernels(false);
        y_mlx = q(x);
        nn::set_fused_kernels(true);
      }
      EXPECT_EQ(std::string(y.primitive().name()) == "OminixCpuGemv", kernels_here());
      mx::eval(exact, y, y_mlx);
      EXPECT_EQ(y.dtype(), mx::bfloat16);
      const auto d = tests::diff(y, exact), d_mlx = tests::diff(y_mlx, exact);
      EXPECT_LE(d.rel, 1e-2) << "max abs " << d.max_abs;
      EXPECT_LE(d.rel, d_mlx.rel * 1.25 + 2e-3) << "MLX: " << d_mlx.rel;
    }
}

TEST(CpuGemv, LazyOrOtherDtypesStayOnMlx) {
  // Weights not yet evaluated, float16, or dtypes that do not match x: MLX's kernels.
  auto w = mx::random::normal({16, 64});
  nn::Linear lazy{mx::multiply(w, mx::array(2.0f))};
  EXPECT_STRNE(lazy(rows_of_x(1, 64)).primitive().name(), "OminixCpuGemv");
  nn::Linear half{mx::astype(w, mx::float16)};
  mx::eval(half.weight);
  EXPECT_STRNE(half(mx::astype(rows_of_x(1, 64), mx::float16)).primitive().name(), "OminixCpuGemv");
  nn::Linear bf{mx::astype(w, mx::bfloat16)};
  mx::eval(bf.weight);
  EXPECT_STRNE(bf(rows_of_x(1, 64)).primitive().name(), "OminixCpuGemv");  // float32 x
}

// Attention's two products (nn::masked_attention, the SANM encoder's and Paraformer's decoder's)
// run detail::cpu_matmul_nt on the CPU, a head at a time, on unevaluated q, k and v: against
// MLX's matmul, float32 and bfloat16, with keys masked, in batches of 2 x 3 heads.
TEST(CpuGemv, AttentionProductsMatchMlxMatmul) {
  mx::random::seed(13);
  for (auto dt : {mx::float32, mx::bfloat16}) {
    for (auto [T, S, D] : {std::tuple{37, 50, 40}, std::tuple{1, 7, 128}, std::tuple{70, 70, 16}}) {
      SCOPED_TRACE(::testing::Message() << "T " << T << " S " << S << " D " << D << " "
                                        << (dt == mx::float32 ? "float32" : "bfloat16"));
      auto q = mx::astype(mx::random::normal({2, 3, T, D}), dt);
      auto k = mx::astype(mx::random::normal({2, 3, S, D}), dt);
      auto v = mx::astype(mx::random::normal({2, 3, S, D}), dt);
      auto mask =
          mx::reshape(mx::less(mx::arange(S), mx::array({S, S - S / 3}, {2, 1})), {2, 1, 1, S});
      auto f = [&](const mx::array& x) {
        return nn::masked_attention(mx::multiply(x, mx::array(1.0f, dt)),
                                    mx::add(k, mx::array(0.0f, dt)),
                                    mx::add(v, mx::array(0.0f, dt)), mask, 0.125f);
      };
      auto y = f(q);
      // (bfloat16: the masked softmax comes out float32, so p v stays on MLX; q k^T is ours.)
      if (dt == mx::float32) {
        EXPECT_EQ(std::string(y.primitive().name()) == "OminixCpuGemv", kernels_here());
      }
      nn::set_fused_kernels(false);
      auto want = f(q);
      nn::set_fused_kernels(true);
      mx::eval(y, want);
      tests::expect_rel(mx::astype(y, mx::float32), mx::astype(want, mx::float32),
                        dt == mx::float32 ? 1e-5 : 1e-2, "attention vs MLX");
    }
  }
}

// x W^T with batch dims: W as a transposed view (not contiguous), shapes that do not fill a vector
// or a block of 64 rows; where the batch dims differ or x is 2-D it does not apply.
TEST(CpuGemv, BatchedProductMatchesMlxMatmul) {
  mx::random::seed(17);
  auto x = mx::random::normal({4, 65, 33});
  auto wt = mx::random::normal({4, 33, 19});  // W^T; W = [4, 19, 33] as a view
  auto y = nn::detail::cpu_matmul_nt(x, mx::swapaxes(wt, -1, -2));
  ASSERT_EQ(y.has_value(), kernels_here());
  if (y) {
    auto want = mx::matmul(x, wt);
    mx::eval(*y, want);
    EXPECT_EQ(y->shape(), want.shape());
    tests::expect_rel(*y, want, 1e-5, "batched x W^T vs MLX");
  }
  EXPECT_FALSE(nn::detail::cpu_matmul_nt(x, mx::random::normal({2, 19, 33})).has_value());
  EXPECT_FALSE(nn::detail::cpu_matmul_nt(mx::random::normal({65, 33}), mx::random::normal({19, 33}))
                   .has_value());
}
