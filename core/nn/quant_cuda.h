// Internal: the device code shared by the CUDA kernels that read MLX's affine-quantized weights
// (packed uint32 [rows, in*bits/32], scales and biases [rows, in/group_size]) at decode:
// the dense GEMV (qmv_fused.cpp) and the MoE expert kernels (experts_fused.cpp).
//
// Each lane reads a 16-byte chunk of one row at a time (32 4-bit or 16 8-bit values; a group of
// 32-128 values never splits a chunk) with the matching activations, and accumulates
// scale * sum(q * x) + bias * sum(x) per chunk in float32. The weights are turned into floats
// without an int-to-float conversion: a value masked in place is OR-ed into the mantissa of 2^23
// and 2^23 subtracted, which gives q * 16^n exactly (4-bit value n of a half-word; 256^n for
// 8-bit), and the activations are pre-divided by 16^n (a power of two, so exact). One mask, one add
// and one FMA a value, no shifts but one per half-word.
#pragma once

#include <cstdlib>
#include <string>

namespace ominix::nn::detail {

inline constexpr const char* kQuantCudaHeader = R"(
namespace ominix_q {

// 16 bytes from p: one vector load where p is 16-byte aligned, bytewise otherwise (a view at an
// odd offset); the branch is the same for every thread of a launch.
__device__ __forceinline__ uint4 load16(const void* p) {
  if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) return __ldg(reinterpret_cast<const uint4*>(p));
  uint4 v;
  const unsigned char* b = reinterpret_cast<const unsigned char*>(p);
  unsigned char* d = reinterpret_cast<unsigned char*>(&v);
  for (int i = 0; i < 16; ++i) d[i] = b[i];
  return v;
}

// The activations of one chunk (x points at its first), times mul, into xs as dot16 wants them
// (value i divided by 16^(i % 4) for 4 bits, by 256^(i % 2) for 8); returns their plain sum.
template <typename T, int BITS>
__device__ __forceinline__ float load_x(const T* x, float mul, float* xs) {
  constexpr int VPC = 128 / BITS;
  constexpr int N = VPC * sizeof(T) / 16;
  constexpr int PER = 16 / sizeof(T);
  uint4 raw[N];
#pragma unroll
  for (int i = 0; i < N; ++i) raw[i] = load16(x + i * PER);
  const T* t = reinterpret_cast<const T*>(raw);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < VPC; ++i) {
    const float v = static_cast<float>(t[i]) * mul;
    s += v;
    if (BITS == 4)
      xs[i] = v * (i % 4 == 0 ? 1.0f : i % 4 == 1 ? 0.0625f : i % 4 == 2 ? 0.00390625f : 0.000244140625f);
    else
      xs[i] = v * (i % 2 == 0 ? 1.0f : 0.00390625f);
  }
  return s;
}

// sum_i q_i * x_i over one 16-byte chunk, xs from load_x. MLX's packing: value i sits in word
// i / (32/BITS) at bit BITS * (i % (32/BITS)).
template <int BITS>
__device__ __forceinline__ float dot16(const uint4 w, const float* xs) {
  constexpr int PH = 16 / BITS;  // values per half-word
  constexpr uint32_t MASK = (1u << BITS) - 1u;
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
  float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const uint32_t u = half ? (words[j] >> 16) : words[j];
#pragma unroll
      for (int n = 0; n < PH; ++n) {
        uint32_t m;  // (u & mask) | 2^23's bits as one instruction
        asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(m) : "r"(u), "r"(MASK << (BITS * n)), "r"(0x4B000000u));
        const float q = __uint_as_float(m) - 8388608.0f;
        d[j] = fmaf(q, xs[(j * 2 + half) * PH + n], d[j]);
      }
    }
  return (d[0] + d[1]) + (d[2] + d[3]);
}

// Layout of one quantized row of K values: VPC values a 16-byte chunk, CHUNKS chunks, WPR uint32
// words, GPR groups.
template <int K, int BITS, int GS>
struct Row {
  static constexpr int VPC = 128 / BITS, CHUNKS = K / VPC, WPR = K * BITS / 32, GPR = K / GS;
};

// Chunk c of a quantized row: its packed weights and its group's scale and bias.
struct Chunk {
  uint4 w;
  float scale, bias;
};
template <int K, int BITS, int GS, typename T>
__device__ __forceinline__ Chunk load_chunk(const uint32_t* weight, const T* scales,
                                            const T* biases, size_t row, int c) {
  using L = Row<K, BITS, GS>;
  const size_t g = row * L::GPR + c * L::VPC / GS;
  return {load16(weight + row * L::WPR + c * 4), static_cast<float>(scales[g]),
          static_cast<float>(biases[g])};
}

// The chunk's share of the row's dot product with x (xs and xsum from load_x).
template <int BITS>
__device__ __forceinline__ float chunk_dot(const Chunk& q, const float* xs, float xsum) {
  return q.scale * dot16<BITS>(q.w, xs) + q.bias * xsum;
}

// The first of the R rows this thread's warp computes.
template <int R>
__device__ __forceinline__ int first_row() {
  return ((blockIdx.x * blockDim.x + threadIdx.x) >> 5) * R;
}

template <int N>
__device__ __forceinline__ void warp_sum(float* a) {
#pragma unroll
  for (int r = 0; r < N; ++r)
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) a[r] += __shfl_xor_sync(0xffffffffu, a[r], o);
}

}  // namespace ominix_q
)";

/// Launch shape of the quantized decode kernels: rows per warp and 32-chunk steps a lane loads
/// ahead, per kernel. OMINIX_QUANT_TUNE="qmv_rows=4,qmv_unroll=2,..." overrides them for the
/// sweep in bench/kernels (read once per process).
struct QuantTuning {
  int qmv_rows = 2, qmv_unroll = 2;
  int gate_up_rows = 1, gate_up_unroll = 1;
  int down_rows = 2, down_unroll = 1;
  int block = 128;  // threads per block
};
const QuantTuning& quant_tuning();

/// Threads along the grid's x for `rows` output rows at `per_warp` rows a warp, in whole blocks.
inline int grid_x(int rows, int per_warp, int block) {
  const int warps = (rows + per_warp - 1) / per_warp;
  return (warps * 32 + block - 1) / block * block;
}

}  // namespace ominix::nn::detail
