// Matrix-vector products for decode on the CPU, as an MLX primitive of our own. MLX 0.32's CPU
// backend ran the default model's tied head ([1, 640] x [640, 262144] float32, 671 MB) in 136 ms
// (4.9 GB/s) and one layer's 4-bit projections in about 6.4 ms (docs/PERFORMANCE.md); one core
// with AVX2 streams the head in about 26 ms. The work is queued on MLX's CPU stream like MLX's
// own CPU kernels, so it stays ordered with them and its inputs stay alive until it has run.
#include "cpu_gemv.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mlx/allocator.h>
#include <mlx/backend/cpu/encoder.h>
#include <mlx/ops.h>
#include <mlx/primitives.h>

#include "ominix/nn/fused.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define OMINIX_CPU_GEMV 1
#endif

namespace ominix::nn::detail {

#ifdef OMINIX_CPU_GEMV
namespace {

// Rows of x a kernel call takes (longer inputs run in blocks of this many rows, which stay in
// cache while the weights stream): decode, speculative verifies and prompt chunks. Longer prompts
// used to go to MLX's CPU matmul, which took 15 s for a 169-token prompt of the default model:
// its quantized kernel at 5 bits, and for float32 the reference BLAS the mlx-cpu wheel links.
constexpr int kMaxRows = 64;

bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("OMINIX_CPU_GEMV");
    return !(v && std::string(v) == "0") && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
  }();
  return on && fused_kernels_enabled();
}

#define OMINIX_AVX2 __attribute__((target("avx2,fma")))

OMINIX_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// bfloat16 as stored: its bits. Weights, scales and biases are read in their own dtype (float32
// or bfloat16) and computed in float32.
struct Bf16 {
  std::uint16_t bits;
};
inline float to_float(float v) {
  return v;
}
inline float to_float(Bf16 v) {
  return std::bit_cast<float>(std::uint32_t(v.bits) << 16);
}
// Round to nearest even, as MLX converts float32 to bfloat16.
inline Bf16 to_bf16(float f) {
  const auto u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {std::uint16_t((u >> 16) | 0x40u)};  // NaN
  return {std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}
OMINIX_AVX2 inline __m256 load8(const float* p) {
  return _mm256_loadu_ps(p);
}
OMINIX_AVX2 inline __m256 load8(const Bf16* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

// y[m, r] = w[r] . x[m] for RW rows of w from r and RX rows of x from m: RW x RX 8-wide
// accumulators, so each load of w or x feeds RX or RW multiply-adds (one row against one row
// loads two vectors a multiply-add, half the rate the FMA units could take).
template <typename W, int RW, int RX>
OMINIX_AVX2 inline void gemv_tile(const float* x, const W* w, float* y, int N, int K, int r,
                                  int m) {
  __m256 acc[RW][RX];
  for (int i = 0; i < RW; ++i)
    for (int j = 0; j < RX; ++j) acc[i][j] = _mm256_setzero_ps();
  const int k8 = K / 8 * 8;
  for (int k = 0; k < k8; k += 8) {
    __m256 xv[RX];
    for (int j = 0; j < RX; ++j) xv[j] = _mm256_loadu_ps(x + std::size_t(m + j) * K + k);
    for (int i = 0; i < RW; ++i) {
      const __m256 wv = load8(w + std::size_t(r + i) * K + k);
      for (int j = 0; j < RX; ++j) acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < RW; ++i)
    for (int j = 0; j < RX; ++j) {
      const W* wr = w + std::size_t(r + i) * K;
      const float* xm = x + std::size_t(m + j) * K;
      float s = hsum(acc[i][j]);
      for (int k = k8; k < K; ++k) s += to_float(wr[k]) * xm[k];
      y[std::size_t(m + j) * N + r + i] = s;
    }
}

// y[m, r] = w[r] . x[m] in float32. From 3 rows of x (prompts, speech frames) tiles of 4 rows of
// w by 3 of x; fewer rows (decode) one row of w at a time, four 8-wide accumulators.
template <typename W>
OMINIX_AVX2 void gemv(const float* x, const W* w, float* y, int M, int N, int K, int r0, int r1) {
  if (M >= 3) {
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
      int m = 0;
      for (; m + 3 <= M; m += 3) gemv_tile<W, 4, 3>(x, w, y, N, K, r, m);
      for (; m < M; ++m) gemv_tile<W, 4, 1>(x, w, y, N, K, r, m);
    }
    for (; r < r1; ++r)
      for (int m = 0; m < M; ++m) gemv_tile<W, 1, 1>(x, w, y, N, K, r, m);
    return;
  }
  const int k32 = K / 32 * 32, k8 = K / 8 * 8;
  for (int r = r0; r < r1; ++r) {
    const W* wr = w + std::size_t(r) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + std::size_t(m) * K;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      int k = 0;
      for (; k < k32; k += 32) {
        a0 = _mm256_fmadd_ps(load8(wr + k), _mm256_loadu_ps(xm + k), a0);
        a1 = _mm256_fmadd_ps(load8(wr + k + 8), _mm256_loadu_ps(xm + k + 8), a1);
        a2 = _mm256_fmadd_ps(load8(wr + k + 16), _mm256_loadu_ps(xm + k + 16), a2);
        a3 = _mm256_fmadd_ps(load8(wr + k + 24), _mm256_loadu_ps(xm + k + 24), a3);
      }
      for (; k < k8; k += 8) a0 = _mm256_fmadd_ps(load8(wr + k), _mm256_loadu_ps(xm + k), a0);
      float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
      for (; k < K; ++k) s += to_float(wr[k]) * xm[k];
      y[std::size_t(m) * N + r] = s;
    }
  }
}

// 8 packed bytes as 8 int32 lanes.
OMINIX_AVX2 inline __m256i bytes8(const std::uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// 8 values of a 2-, 3-, 5- or 6-bit row as int32 lanes. MLX packs value i at bits
// [BITS * i, BITS * (i + 1)) of the row, little-endian, so 8 values always fill BITS whole bytes:
// a byte shuffle gives each 32-bit lane the bytes its value starts in, and a per-lane shift and
// mask finish.
template <int BITS>
struct Unpack8 {
  __m256i ctrl, shifts, mask;
  OMINIX_AVX2 Unpack8() {
    alignas(32) std::int8_t shuffle[32];
    alignas(32) std::int32_t shift[8];
    for (int i = 0; i < 8; ++i) {
      shift[i] = BITS * i % 8;
      for (int b = 0; b < 4; ++b) {
        const int src = BITS * i / 8 + b;
        shuffle[4 * i + b] = std::int8_t(src < BITS ? src : -128);  // -128: a zero byte
      }
    }
    ctrl = _mm256_load_si256(reinterpret_cast<const __m256i*>(shuffle));
    shifts = _mm256_load_si256(reinterpret_cast<const __m256i*>(shift));
    mask = _mm256_set1_epi32((1 << BITS) - 1);
  }
  // The 8 values whose BITS bytes start at p.
  OMINIX_AVX2 __m256i operator()(const std::uint8_t* p) const {
    // Built in a register: a memcpy into a zeroed 8-byte variable made the broadcast wait for
    // two partial stores (store forwarding fails), which took half the decode time.
    std::uint64_t v = 0;
    if constexpr (BITS >= 4) {
      std::uint32_t lo;
      std::memcpy(&lo, p, 4);
      v = lo;
    }
    for (int b = BITS >= 4 ? 4 : 0; b < BITS; ++b) v |= std::uint64_t(p[b]) << (8 * b);
    return _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_shuffle_epi8(_mm256_set1_epi64x(static_cast<long long>(v)), ctrl),
                          shifts),
        mask);
  }
};

// One group's quantized values as floats, in the order layout() puts x in: for 4 bits the low
// nibbles (even values) then the high ones (odd values), so that 8 bytes give 8 contiguous floats
// of each; otherwise in order.
template <int BITS>
OMINIX_AVX2 void dequant_group(const std::uint8_t* w, int gs, float* out) {
  if constexpr (BITS == 4) {
    for (int j = 0; j < gs / 2; j += 8) {
      const __m256i v = bytes8(w + j);
      _mm256_storeu_ps(out + j, _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15))));
      _mm256_storeu_ps(out + gs / 2 + j, _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)));
    }
  } else if constexpr (BITS == 8) {
    for (int j = 0; j < gs; j += 8) _mm256_storeu_ps(out + j, _mm256_cvtepi32_ps(bytes8(w + j)));
  } else {
    const Unpack8<BITS> unpack;
    for (int j = 0; j < gs; j += 8)
      _mm256_storeu_ps(out + j, _mm256_cvtepi32_ps(unpack(w + j / 8 * BITS)));
  }
}

// x's values in dequant_group's order, per group.
void layout(const float* x, int K, int bits, int gs, float* out) {
  if (bits != 4) {
    std::memcpy(out, x, std::size_t(K) * sizeof(float));
    return;
  }
  for (int i = 0; i < K; ++i) out[i / gs * gs + (i % 2) * (gs / 2) + (i % gs) / 2] = x[i];
}

// y[m, r] = sum over groups g of scale[r, g] * (q . x)_g + bias[r, g] * sum(x_g). Each group of
// a row is dequantized once and meets every row of x; groups of up to 64 values stay in registers
// while they do. The bias terms are summed 8 rows of x at a time from per-group sums of x.
template <int BITS, typename S>
OMINIX_AVX2 void qgemv(const float* x, const std::uint8_t* w, const S* scales, const S* biases,
                       float* y, int M, int N, int K, int gs, int r0, int r1) {
  constexpr int bits = BITS;
  const int groups = K / gs, M8 = (M + 7) / 8 * 8;
  const std::size_t row_bytes = std::size_t(K) * bits / 8, group_bytes = std::size_t(gs) * bits / 8;
  // sums[g][m] (m padded to 8 with zeros).
  std::vector<float> xl(std::size_t(M) * K), sums(std::size_t(groups) * M8, 0.0f), wq(gs);
  for (int m = 0; m < M; ++m) {
    const float* xm = x + std::size_t(m) * K;
    layout(xm, K, bits, gs, xl.data() + std::size_t(m) * K);
    for (int g = 0; g < groups; ++g) {
      float s = 0;
      for (int i = 0; i < gs; ++i) s += xm[g * gs + i];
      sums[std::size_t(g) * M8 + m] = s;
    }
  }
  __m256 acc[kMaxRows], bias_acc[kMaxRows / 8];
  for (int r = r0; r < r1; ++r) {
    const std::uint8_t* wr = w + r * row_bytes;
    const S* sr = scales + std::size_t(r) * groups;
    const S* br = biases + std::size_t(r) * groups;
    for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
    for (int m = 0; m < M8 / 8; ++m) bias_acc[m] = _mm256_setzero_ps();
    for (int g = 0; g < groups; ++g) {
      dequant_group<BITS>(wr + g * group_bytes, gs, wq.data());
      const __m256 scale = _mm256_set1_ps(to_float(sr[g]));
      const float* xg = xl.data() + std::size_t(g) * gs;
      if (gs <= 64) {
        __m256 wv[8];
        const int nv = gs / 8;
        for (int j = 0; j < nv; ++j) wv[j] = _mm256_loadu_ps(wq.data() + 8 * j);
        for (int m = 0; m < M; ++m) {
          const float* xm = xg + std::size_t(m) * K;
          __m256 t = _mm256_mul_ps(wv[0], _mm256_loadu_ps(xm));
          for (int j = 1; j < nv; ++j) t = _mm256_fmadd_ps(wv[j], _mm256_loadu_ps(xm + 8 * j), t);
          acc[m] = _mm256_fmadd_ps(t, scale, acc[m]);
        }
      } else {
        for (int m = 0; m < M; ++m) {
          const float* xm = xg + std::size_t(m) * K;
          __m256 t = _mm256_mul_ps(_mm256_loadu_ps(wq.data()), _mm256_loadu_ps(xm));
          for (int j = 8; j < gs; j += 8)
            t = _mm256_fmadd_ps(_mm256_loadu_ps(wq.data() + j), _mm256_loadu_ps(xm + j), t);
          acc[m] = _mm256_fmadd_ps(t, scale, acc[m]);
        }
      }
      const __m256 bias = _mm256_set1_ps(to_float(br[g]));
      const float* sg = sums.data() + std::size_t(g) * M8;
      for (int m = 0; m < M8 / 8; ++m)
        bias_acc[m] = _mm256_fmadd_ps(bias, _mm256_loadu_ps(sg + 8 * m), bias_acc[m]);
    }
    alignas(32) float bias_sum[kMaxRows];
    for (int m = 0; m < M8 / 8; ++m) _mm256_store_ps(bias_sum + 8 * m, bias_acc[m]);
    for (int m = 0; m < M; ++m) y[std::size_t(m) * N + r] = hsum(acc[m]) + bias_sum[m];
  }
}

// One row of x through quantized weights, the dequantized values kept in registers: at decode
// this is about 10% faster than qgemv's dequantize-then-multiply (the default model, 11.8 against
// 10.5 tok/s, 4 and 8 bits). For 4 bits x is split by parity first, so that the low and the high
// nibbles of 8 bytes each meet 8 contiguous values; 2, 3, 5 and 6 bits unpack 8 values at a time.
template <int BITS, typename S>
OMINIX_AVX2 void qgemv_row(const float* x, const std::uint8_t* w, const S* scales, const S* biases,
                           float* y, int K, int gs, int r0, int r1) {
  const int groups = K / gs, row_bytes = K * BITS / 8, group_bytes = gs * BITS / 8;
  std::vector<float> split(BITS == 4 ? K : 0), sums(groups);
  for (int g = 0; g < groups; ++g) {
    float s = 0;
    for (int i = 0; i < gs; ++i) s += x[g * gs + i];
    sums[g] = s;
  }
  if constexpr (BITS == 4)
    for (int i = 0; i < K; ++i) split[(i % 2) * (K / 2) + i / 2] = x[i];
  [[maybe_unused]] const Unpack8<BITS == 4 || BITS == 8 ? 2 : BITS> unpack;
  for (int r = r0; r < r1; ++r) {
    const std::uint8_t* wr = w + std::size_t(r) * row_bytes;
    const S* sr = scales + std::size_t(r) * groups;
    const S* br = biases + std::size_t(r) * groups;
    __m256 acc = _mm256_setzero_ps();
    float bias_sum = 0;
    for (int g = 0; g < groups; ++g) {
      const std::uint8_t* wg = wr + g * group_bytes;
      __m256 t = _mm256_setzero_ps();
      if constexpr (BITS == 4) {
        const float* xe = split.data() + g * gs / 2;
        const float* xo = xe + K / 2;
        for (int j = 0; j < group_bytes; j += 8) {
          const __m256i v = bytes8(wg + j);
          t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15))),
                              _mm256_loadu_ps(xe + j), t);
          t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), _mm256_loadu_ps(xo + j),
                              t);
        }
      } else if constexpr (BITS == 8) {
        for (int j = 0; j < group_bytes; j += 8)
          t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(bytes8(wg + j)), _mm256_loadu_ps(x + g * gs + j),
                              t);
      } else {
        for (int j = 0; j < gs; j += 8)
          t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(unpack(wg + j / 8 * BITS)),
                              _mm256_loadu_ps(x + g * gs + j), t);
      }
      acc = _mm256_fmadd_ps(t, _mm256_set1_ps(to_float(sr[g])), acc);
      bias_sum += to_float(br[g]) * sums[g];
    }
    y[r] = hsum(acc) + bias_sum;
  }
}

// A second thread for the larger products: one helper, started on first use, that runs half of
// a job while the calling thread (MLX's CPU stream) runs the other half. Callers are serialised.
class Helper {
 public:
  static Helper& get() {
    static Helper h;
    return h;
  }
  // f(0) on the helper and f(1) here; returns when both are done.
  void run2(const std::function<void(int)>& f) {
    std::lock_guard caller(callers_);
    {
      std::lock_guard lock(m_);
      job_ = &f;
      done_ = false;
    }
    job_cv_.notify_one();
    f(1);
    std::unique_lock lock(m_);
    done_cv_.wait(lock, [&] { return done_; });
  }
  ~Helper() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    job_cv_.notify_one();
    thread_.join();
  }

 private:
  Helper() : thread_([this] { loop(); }) {}
  void loop() {
    std::unique_lock lock(m_);
    for (;;) {
      job_cv_.wait(lock, [&] { return stop_ || job_; });
      if (stop_) return;
      const auto* f = job_;
      job_ = nullptr;
      lock.unlock();
      (*f)(0);
      lock.lock();
      done_ = true;
      done_cv_.notify_one();
    }
  }
  std::mutex callers_, m_;
  std::condition_variable job_cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  bool done_ = false, stop_ = false;
  std::thread thread_;
};

// Weight bytes from which a product is split over two threads. At 1 MiB the default model decoded
// 11.9-12.4 tok/s against 10.9-11.3 on one thread (2-core machine, alternating runs); 256 KiB
// measured no better within the noise.
constexpr std::size_t kSplitBytes = 1 << 20;

// rows(r0, r1) over [0, N), in two halves on two threads when the weights are large.
template <typename Rows>
void split_rows(int N, std::size_t weight_bytes, Rows rows) {
  static const bool two = std::thread::hardware_concurrency() >= 2;
  if (!two || weight_bytes < kSplitBytes || N < 2) return rows(0, N);
  const std::function<void(int)> half = [&](int i) { i ? rows(N / 2, N) : rows(0, N / 2); };
  Helper::get().run2(half);
}

// The quantized product over rows [r0, r1) with scales and biases of type S.
template <typename S>
void quantized_rows(const float* x, const std::uint8_t* w, const S* s, const S* b, float* y, int M,
                    int N, int K, int bits, int gs) {
  using Kernel = void (*)(const float*, const std::uint8_t*, const S*, const S*, float*, int, int,
                          int, int, int, int);
  using Kernel1 =
      void (*)(const float*, const std::uint8_t*, const S*, const S*, float*, int, int, int, int);
  constexpr Kernel by_bits[9] = {nullptr,     nullptr,     qgemv<2, S>, qgemv<3, S>, qgemv<4, S>,
                                 qgemv<5, S>, qgemv<6, S>, nullptr,     qgemv<8, S>};
  split_rows(N, std::size_t(N) * K * bits / 8, [&](int r0, int r1) {
    constexpr Kernel1 row_by_bits[9] = {nullptr,         nullptr,         qgemv_row<2, S>,
                                        qgemv_row<3, S>, qgemv_row<4, S>, qgemv_row<5, S>,
                                        qgemv_row<6, S>, nullptr,         qgemv_row<8, S>};
    if (M == 1) return row_by_bits[bits](x, w, s, b, y, K, gs, r0, r1);
    by_bits[bits](x, w, s, b, y, M, N, K, gs, r0, r1);
  });
}

// inputs: x [..., K] (row-contiguous), w, and for bits > 0 scales and biases. x, the output, the
// dense weights or the scales and biases are all float32 or all bfloat16; bfloat16 x is widened
// to float32 first and the float32 result rounded once at the end, as MLX's kernels round it.
class CpuGemv : public mx::UnaryPrimitive {
 public:
  CpuGemv(mx::Stream s, int bits, int group) : mx::UnaryPrimitive(s), bits_(bits), group_(group) {}

  void eval_cpu(const std::vector<mx::array>& in, mx::array& out) override {
    out.set_data(mx::allocator::malloc(out.nbytes()));
    auto& encoder = mx::cpu::get_command_encoder(stream());
    for (const auto& a : in) encoder.set_input_array(a);
    encoder.set_output_array(out);
    // w [..., N, K] with leading dims: one product a batch, x [..., M, K] the same batches.
    const int K = in[0].shape(-1), N = out.shape(-1);
    const int batches = bits_ ? 1 : int(in[1].size() / (std::size_t(N) * K));
    const int M = int(in[0].size() / K / batches);
    const bool bf16 = out.dtype() == mx::bfloat16;
    const void* x = in[0].data<void>();
    void* y = out.data<void>();
    const void* w = in[1].data<void>();
    const void* s = bits_ ? in[2].data<void>() : nullptr;
    const void* b = bits_ ? in[3].data<void>() : nullptr;
    encoder.dispatch([=, bits = bits_, gs = group_] {
      std::vector<float> xf, yf;
      const float* xp = static_cast<const float*>(x);
      float* yp = static_cast<float*>(y);
      const std::size_t rows = std::size_t(M) * batches;
      if (bf16) {
        const auto* xb = static_cast<const Bf16*>(x);
        xf.resize(rows * K);
        for (std::size_t i = 0; i < xf.size(); ++i) xf[i] = to_float(xb[i]);
        xp = xf.data();
        yf.resize(rows * N);
        yp = yf.data();
      }
      // kMaxRows rows of x at a time, so that they stay in cache while the weights stream.
      for (int bt = 0; bt < batches; ++bt)
        for (int m0 = 0; m0 < M; m0 += kMaxRows) {
          const int mb = std::min(kMaxRows, M - m0);
          const float* xb = xp + (std::size_t(bt) * M + m0) * K;
          float* yb = yp + (std::size_t(bt) * M + m0) * N;
          const std::size_t wo = std::size_t(bt) * N * K;  // this batch's w
          if (bits == 0 && bf16)
            split_rows(N, std::size_t(N) * K * 2, [&](int r0, int r1) {
              gemv(xb, static_cast<const Bf16*>(w) + wo, yb, mb, N, K, r0, r1);
            });
          else if (bits == 0)
            split_rows(N, std::size_t(N) * K * 4, [&](int r0, int r1) {
              gemv(xb, static_cast<const float*>(w) + wo, yb, mb, N, K, r0, r1);
            });
          else if (bf16)
            quantized_rows(xb, static_cast<const std::uint8_t*>(w), static_cast<const Bf16*>(s),
                           static_cast<const Bf16*>(b), yb, mb, N, K, bits, gs);
          else
            quantized_rows(xb, static_cast<const std::uint8_t*>(w), static_cast<const float*>(s),
                           static_cast<const float*>(b), yb, mb, N, K, bits, gs);
        }
      if (bf16)
        for (std::size_t i = 0; i < yf.size(); ++i) static_cast<Bf16*>(y)[i] = to_bf16(yf[i]);
    });
  }
  void eval_gpu(const std::vector<mx::array>&, mx::array&) override {
    throw std::runtime_error("OminixCpuGemv runs on the CPU only");
  }
  const char* name() const override { return "OminixCpuGemv"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    const auto* o = dynamic_cast<const CpuGemv*>(&other);
    return o && o->bits_ == bits_ && o->group_ == group_;
  }

 private:
  int bits_, group_;  // bits_ 0: dense weights
};

// x's row count when these apply to it (float32 or bfloat16 on the CPU), else 0.
int rows_for(const mx::array& x) {
  if (!enabled() || mx::default_device() != mx::Device::cpu ||
      (x.dtype() != mx::float32 && x.dtype() != mx::bfloat16) || x.ndim() < 1 || x.shape(-1) <= 0)
    return 0;
  const auto M = x.size() / std::size_t(x.shape(-1));
  return M >= 1 && M <= std::size_t(INT_MAX) ? int(M) : 0;
}

// Evaluated and row-contiguous, so that its buffer can be read as is.
bool ready(const mx::array& a) {
  return a.is_available() && a.flags().row_contiguous && a.ndim() == 2;
}

mx::array apply(const mx::array& x, std::vector<mx::array> weights, int N, int bits, int group) {
  auto shape = x.shape();
  shape.back() = N;
  weights.insert(weights.begin(), mx::contiguous(x));
  const auto dtype = x.dtype();
  return mx::array(std::move(shape), dtype,
                   std::make_shared<CpuGemv>(mx::default_stream(mx::Device::cpu), bits, group),
                   std::move(weights));
}

}  // namespace

std::optional<mx::array> cpu_gemv(const mx::array& x, const mx::array& w) {
  if (!rows_for(x) || w.dtype() != x.dtype() || !ready(w) || w.shape(1) != x.shape(-1))
    return std::nullopt;
  return apply(x, {w}, w.shape(0), 0, 0);
}

std::optional<mx::array> cpu_matmul_nt(const mx::array& x, const mx::array& w) {
  const int nd = int(x.ndim());
  if (!rows_for(x) || nd < 3 || int(w.ndim()) != nd || w.dtype() != x.dtype() ||
      w.shape(-1) != x.shape(-1) || w.shape(-2) <= 0 || w.size() == 0)
    return std::nullopt;
  for (int i = 0; i < nd - 2; ++i)
    if (w.shape(i) != x.shape(i)) return std::nullopt;
  return apply(x, {mx::contiguous(w)}, w.shape(-2), 0, 0);
}

std::optional<mx::array> cpu_qgemv(const mx::array& x, const mx::array& w, const mx::array& scales,
                                   const mx::array& biases, const io::QuantSpec& spec) {
  const int K = x.ndim() ? x.shape(-1) : 0;
  if (!rows_for(x) || spec.mode != io::QuantMode::affine || spec.bits < 2 || spec.bits > 8 ||
      spec.bits == 7 || spec.group_size % 16 != 0 || K % spec.group_size != 0 ||
      w.dtype() != mx::uint32 || scales.dtype() != x.dtype() || biases.dtype() != x.dtype() ||
      !ready(w) || !ready(scales) || !ready(biases) || w.shape(1) != K * spec.bits / 32 ||
      scales.shape(1) != K / spec.group_size || scales.shape() != biases.shape() ||
      scales.shape(0) != w.shape(0))
    return std::nullopt;
  return apply(x, {w, scales, biases}, w.shape(0), spec.bits, spec.group_size);
}

#else  // no x86-64: MLX's own CPU kernels

std::optional<mx::array> cpu_gemv(const mx::array&, const mx::array&) {
  return std::nullopt;
}
std::optional<mx::array> cpu_qgemv(const mx::array&, const mx::array&, const mx::array&,
                                   const mx::array&, const io::QuantSpec&) {
  return std::nullopt;
}
std::optional<mx::array> cpu_matmul_nt(const mx::array&, const mx::array&) {
  return std::nullopt;
}

#endif

}  // namespace ominix::nn::detail
