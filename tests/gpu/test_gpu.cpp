// The GPU backend against the CPU: each op is computed on both devices from the same random
// inputs and compared by normalised error. Skipped where MLX has no GPU (CI).
#include <gtest/gtest.h>
#include <mlx/mlx.h>
#include <mlx/primitives.h>

#include <tuple>

#include "ominix/base/device.h"
#include "ominix/nn/attention.h"
#include "ominix/nn/fused.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/norm.h"
#include "ominix/nn/rope.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;

namespace {

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gpu_available()) GTEST_SKIP() << "no GPU (MLX backend: " << mlx_backend() << ")";
    set_device(DeviceKind::cpu);
    mx::random::seed(1234);
  }
  void TearDown() override { set_device(DeviceKind::cpu); }

  // Runs f on the CPU and on the GPU and returns both results, evaluated.
  template <typename F>
  std::pair<mx::array, mx::array> both(F&& f) {
    set_device(DeviceKind::cpu);
    auto cpu = f();
    mx::eval(cpu);
    set_device(DeviceKind::gpu);
    auto gpu = f();
    mx::eval(gpu);
    set_device(DeviceKind::cpu);
    return {cpu, gpu};
  }
};

void expect_rel(const std::pair<mx::array, mx::array>& r, double tol) {
  ASSERT_EQ(r.first.shape(), r.second.shape());
  auto d = tests::diff(r.second, r.first);
  EXPECT_FALSE(std::isnan(d.rel));
  EXPECT_LT(d.rel, tol) << "max abs " << d.max_abs;
}

}  // namespace

TEST_F(Gpu, Matmul) {
  auto a = mx::random::normal({512, 768}), b = mx::random::normal({768, 384});
  expect_rel(both([&] { return mx::matmul(a, b); }), 1e-3);  // tf32 on the GPU
  auto ah = mx::astype(a, mx::bfloat16), bh = mx::astype(b, mx::bfloat16);
  expect_rel(both([&] { return mx::matmul(ah, bh); }), 1e-2);
}

TEST_F(Gpu, SdpaCausalGqa) {
  for (auto dt : {mx::float32, mx::bfloat16}) {
    auto q = mx::astype(mx::random::normal({2, 16, 33, 128}), dt);
    auto k = mx::astype(mx::random::normal({2, 4, 33, 128}), dt);
    auto v = mx::astype(mx::random::normal({2, 4, 33, 128}), dt);
    expect_rel(both([&] { return nn::sdpa(q, k, v, 1.0f / std::sqrt(128.0f), nn::CausalMask{}); }),
               dt == mx::float32 ? 1e-3 : 2e-2);
    // decode step with an explicit window mask
    auto q1 = mx::astype(mx::random::normal({2, 16, 1, 128}), dt);
    auto mask = nn::causal_mask(1, 32, 8);
    expect_rel(both([&] { return nn::sdpa(q1, k, v, 0.088f, mask); }),
               dt == mx::float32 ? 1e-3 : 2e-2);
  }
}

TEST_F(Gpu, Rope) {
  io::RopeConfig c;
  c.type = io::RopeType::yarn;
  c.factor = 4;
  c.original_max_position_embeddings = 4096;
  c.partial_rotary_factor = 0.5;
  nn::RoPE rope(c, 128);
  auto x = mx::random::normal({1, 8, 17, 128});
  expect_rel(both([&] { return rope(x, 3000); }), 1e-4);
}

TEST_F(Gpu, QuantizedMatmul) {
  auto w = mx::random::normal({1024, 512});
  for (int bits : {4, 8}) {
    for (int batch : {1, 37}) {
      auto q =
          nn::QuantizedLinear::from(nn::Linear{w, std::nullopt}, {64, bits, io::QuantMode::affine});
      auto x = mx::random::normal({batch, 512});
      SCOPED_TRACE(bits);
      expect_rel(both([&] { return q(x); }), 1e-3);
    }
  }
}

TEST_F(Gpu, RmsNorm) {
  nn::RMSNorm n{mx::random::normal({1024}), 1e-6f};
  auto x = mx::random::normal({4, 9, 1024});
  expect_rel(both([&] { return n(x); }), 1e-5);
}

// The fused decode kernels (nn/fused.h) against the plain ops on the GPU and on the CPU, for the
// dtypes and head sizes the models use.
namespace {
template <typename F>
std::pair<mx::array, mx::array> fused_and_plain(F&& f) {
  set_device(DeviceKind::gpu);
  nn::set_fused_kernels(true);
  auto fused = f();
  mx::eval(fused);
  nn::set_fused_kernels(false);
  auto plain = f();
  mx::eval(plain);
  nn::set_fused_kernels(true);
  set_device(DeviceKind::cpu);
  return {plain, fused};
}
double tol(mx::Dtype dt) {
  return dt == mx::float32 ? 1e-5 : dt == mx::float16 ? 2e-3 : 1e-2;
}
}  // namespace

TEST_F(Gpu, FusedQkvHeads) {
  struct Case {
    int B, L, H, KV, Dh, offset;
    bool norm;
    double partial = 1.0;  // rotary share of the head (GLM-4: 0.5)
    bool traditional = false;
  };
  for (auto c :
       {Case{1, 1, 32, 8, 128, 17, true}, Case{2, 7, 16, 8, 128, 0, true},
        Case{1, 33, 8, 2, 64, 5, false}, Case{1, 1, 4, 1, 256, 100, true},
        Case{1, 1, 32, 2, 128, 40, false, 0.5, true}, Case{2, 9, 8, 2, 128, 3, true, 0.5, false},
        Case{1, 5, 4, 4, 64, 11, false, 1.0, true}}) {
    for (auto dt : {mx::float32, mx::bfloat16, mx::float16}) {
      SCOPED_TRACE(::testing::Message() << "L=" << c.L << " Dh=" << c.Dh << " " << dt);
      const int D = 96;
      auto w = [&](int out) {
        return nn::LinearLayer(nn::Linear{mx::astype(mx::random::normal({out, D}), dt)});
      };
      nn::FusedLinear qkv({w(c.H * c.Dh), w(c.KV * c.Dh), w(c.KV * c.Dh)});
      nn::RMSNorm qn{mx::astype(mx::random::normal({c.Dh}), dt), 1e-6f};
      nn::RMSNorm kn{mx::astype(mx::random::normal({c.Dh}), dt), 1e-6f};
      io::RopeConfig rc;
      rc.theta = 1e6;
      rc.partial_rotary_factor = c.partial;
      rc.traditional = c.traditional;
      nn::RoPE rope(rc, c.Dh);
      auto x = mx::astype(mx::random::normal({c.B, c.L, D}), dt);
      auto heads = [&](int part) {
        auto h = nn::qkv_heads(qkv, x,
                               {.n_heads = c.H,
                                .n_kv_heads = c.KV,
                                .q_norm = c.norm ? &qn : nullptr,
                                .k_norm = c.norm ? &kn : nullptr,
                                .rope = &rope,
                                .offset = c.offset});
        return part == 0 ? h.queries : part == 1 ? h.keys : h.values;
      };
      for (int part = 0; part < 3; ++part) {
        auto r = fused_and_plain([&] { return heads(part); });
        expect_rel(r, tol(dt));
        auto cpu = heads(part);  // the CPU runs the plain ops
        mx::eval(cpu);
        // the GPU matmul runs in tf32 (see Gpu.Matmul)
        if (dt == mx::float32) expect_rel({cpu, r.second}, 1e-3);
      }
    }
  }
}

TEST_F(Gpu, FusedAddRmsNorm) {
  for (int D : {64, 96, 896, 1024, 2560, 4096, 5120, 16384}) {
    for (auto dt : {mx::float32, mx::bfloat16, mx::float16}) {
      for (bool offset_view : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "D=" << D << " " << dt << " view " << offset_view);
        nn::RMSNorm n{mx::astype(mx::random::normal({D}), dt), 1e-6f};
        auto x = mx::astype(mx::random::normal({2, 5, D}), dt);
        auto r = mx::astype(mx::random::normal({2, 5, D}), dt);
        if (offset_view) {  // row-contiguous views one element into their buffers
          auto flat = mx::astype(mx::random::normal({2 * 5 * D + 1}), dt);
          mx::eval(flat);
          x = mx::reshape(mx::slice(flat, {1}, {2 * 5 * D + 1}), {2, 5, D});
          r = mx::reshape(mx::slice(flat, {0}, {2 * 5 * D}), {2, 5, D});
        }
        expect_rel(fused_and_plain([&] { return nn::add_rms_norm(x, r, n).sum; }), tol(dt));
        expect_rel(fused_and_plain([&] { return nn::add_rms_norm(x, r, n).normed; }), tol(dt));
      }
    }
  }
}

TEST_F(Gpu, FusedSwiGLU) {
  for (int I : {96, 3072, 9728}) {
    for (int rows : {1, 7, 300}) {
      for (auto dt : {mx::float32, mx::bfloat16, mx::float16}) {
        SCOPED_TRACE(::testing::Message() << "I=" << I << " rows=" << rows << " " << dt);
        auto gu = mx::astype(mx::random::normal({1, rows, 2 * I}), dt);
        expect_rel(fused_and_plain([&] { return nn::gated_joint(nn::Activation::silu, gu); }),
                   tol(dt));
      }
    }
  }
}

// The quantized GEMV kernel (QuantizedLinear at decode on CUDA) against the same quantized weights
// dequantized and multiplied in float32 on the CPU: every bit width and group size it takes, the
// three float dtypes, 1-4 rows of x, row counts that do not fill a warp's rows, and a view at an
// odd offset. It must be no further from the float32 result than MLX's quantized_matmul. Shapes
// are at least 4096 x 4096 weights, where QuantizedLinear runs the kernel (qmv_fused.cpp).
TEST_F(Gpu, FusedQmvMatchesFloat32) {
  struct Case {
    int out, in, rows, bits, group;
  };
  // One row of x at 4 bits in bfloat16/float16 runs the tensor-core kernel (unless
  // OMINIX_QUANT_TUNE=mma=0), the rest the CUDA-core one.
  const std::vector<Case> cases{{4096, 4096, 1, 4, 64},  {16387, 1024, 3, 4, 32},
                                {16387, 1024, 1, 4, 32}, {8192, 2048, 4, 8, 128},
                                {5000, 3456, 1, 8, 32},  {2053, 8192, 2, 4, 128},
                                {2053, 8192, 1, 4, 128}};
  for (std::size_t ci = 0; ci < cases.size(); ++ci)
    for (auto dt : {mx::bfloat16, mx::float16, mx::float32}) {
      const auto& c = cases[ci];
      SCOPED_TRACE(::testing::Message() << "out " << c.out << " in " << c.in << " rows " << c.rows
                                        << " bits " << c.bits << " group " << c.group << " " << dt);
      set_device(DeviceKind::cpu);
      auto w = mx::multiply(mx::random::normal({c.out, c.in}), mx::array(0.05f));
      auto q = nn::QuantizedLinear::from(nn::Linear{w}, {c.group, c.bits, io::QuantMode::affine});
      q.scales = mx::astype(q.scales, dt);
      q.biases = mx::astype(*q.biases, dt);
      // The quantized values exactly: scale * q + bias in float32.
      auto dense = mx::dequantize(q.weight, mx::astype(q.scales, mx::float32),
                                  mx::astype(*q.biases, mx::float32), c.group, c.bits);
      // Rows of x as a view one element in, so the kernel is handed a non-contiguous array.
      auto xs = mx::astype(mx::random::normal({c.rows * c.in + 1}), dt);
      auto x = mx::reshape(mx::slice(xs, {1}, {c.rows * c.in + 1}), {1, c.rows, c.in});
      auto exact =
          mx::matmul(mx::astype(x, mx::float32), mx::transpose(mx::astype(dense, mx::float32)));
      mx::eval(exact, q.weight, q.scales, *q.biases, x);
      set_device(DeviceKind::gpu);
      auto y = q(x);
      ASSERT_STREQ(y.primitive().name(), "CustomKernel");  // the fused kernel, not a fallback
      mx::eval(y);
      nn::set_fused_kernels(false);
      // MLX's kernel gets x as its own contiguous array: its loads assume an aligned start.
      auto y_mlx = q(mx::multiply(x, mx::array(1.0f, dt)));
      nn::set_fused_kernels(true);
      mx::eval(y_mlx);
      set_device(DeviceKind::cpu);
      EXPECT_EQ(y.dtype(), dt);
      const double tol = dt == mx::float32 ? 1e-5 : dt == mx::float16 ? 2e-3 : 1e-2;
      const auto d = tests::diff(y, exact), d_mlx = tests::diff(y_mlx, exact);
      EXPECT_LE(d.rel, tol) << "max abs " << d.max_abs;
      EXPECT_LE(d.rel, d_mlx.rel * 1.25 + (dt == mx::float32 ? 1e-6 : 1e-3))
          << "MLX quantized_matmul: " << d_mlx.rel;
    }
}

// Where the GEMV kernel does not pay (qmv_fused.cpp: under 4096 x 4096 weights, over 4 rows of x),
// QuantizedLinear keeps MLX's quantized_matmul.
TEST_F(Gpu, FusedQmvLeavesSmallAndWideToMlx) {
  for (auto [out, in, rows] : {std::tuple{2048, 4096, 1}, std::tuple{4096, 4096, 5}}) {
    SCOPED_TRACE(::testing::Message() << "out " << out << " in " << in << " rows " << rows);
    set_device(DeviceKind::gpu);
    auto w = mx::astype(mx::random::normal({out, in}), mx::bfloat16);
    auto q = nn::QuantizedLinear::from(nn::Linear{w}, {64, 4, io::QuantMode::affine});
    auto y = q(mx::astype(mx::random::normal({1, rows, in}), mx::bfloat16));
    EXPECT_STRNE(y.primitive().name(), "CustomKernel");
  }
}
