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

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <mlx/array.h>

namespace ominix::nn::detail {

namespace mx = mlx::core;

// The part both kinds of kernel use.
inline constexpr const char* kQuantCudaCommon = R"(
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

// 16 bytes from p, 16-byte aligned (the host checked).
__device__ __forceinline__ uint4 ldg16(const void* p) {
  return __ldg(reinterpret_cast<const uint4*>(p));
}

// silu(g) * u from the float32 gate and up sums, rounded to T where the plain path rounds: g and u
// as gather_qmm's outputs, then the sigmoid, its product with g, and the result as nn::gated_joint.
template <typename T>
__device__ __forceinline__ T silu_mul(float g, float u) {
  const float gv = static_cast<float>(static_cast<T>(g));
  const float uv = static_cast<float>(static_cast<T>(u));
  const float s = static_cast<float>(static_cast<T>(1.0f / (1.0f + expf(-gv))));
  const float a = static_cast<float>(static_cast<T>(gv * s));
  return static_cast<T>(a * uv);
}

}  // namespace ominix_q
)";

// The CUDA-core kernels' part.
inline constexpr const char* kQuantCudaCores = R"(
namespace ominix_q {

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

// The tensor-core kernels' part.
inline constexpr const char* kQuantCudaMma = R"(
namespace ominix_q {

// ---- Tensor-core path: 4-bit weights against bfloat16 or float16 activations ----
// A warp computes 16 rows at once with mma.m16n8k16 (float32 accumulators). Lane l holds rows
// g = l / 4 and g + 8 and the weights of one 16-byte chunk of each, chunk q = l % 4 of the four
// the warp takes per step (the A fragment's k slots 2q, 2q+1, 2q+8, 2q+9 carry that lane's
// values in the order nibble_pairs makes them). The B operand has the activations of chunk q in
// column q and zeros elsewhere (lane 5q holds them; act_mask), so column q of the product is
// chunk q's own dot product: each chunk lies in one quantization group, whose scale and bias the
// epilogue applies (affine_term). Weights become exact small integers plus an offset with one
// lop3 a pair of values (OR-ed into the mantissa of 128 for bfloat16, of 1024 for float16); the
// offset times the chunk's activation sum is taken off again in the epilogue.
__device__ __forceinline__ uint32_t pair_magic(__nv_bfloat16) { return 0x43004300u; }
__device__ __forceinline__ uint32_t pair_magic(__half) { return 0x64006400u; }
__device__ __forceinline__ float magic_offset(__nv_bfloat16) { return 128.0f; }
__device__ __forceinline__ float magic_offset(__half) { return 1024.0f; }

__device__ __forceinline__ void mma16816(float* c, const uint32_t* a, const uint32_t* b,
                                         __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void mma16816(float* c, const uint32_t* a, const uint32_t* b, __half) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// p[s] holds nibbles s (low half) and s + 4 (high half) of w as offset + value.
__device__ __forceinline__ void nibble_pairs(uint32_t w, uint32_t magic, uint32_t* p) {
#pragma unroll
  for (int s = 0; s < 4; ++s)
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(p[s]) : "r"(w >> (4 * s)), "r"(0x000F000Fu), "r"(magic));
}

// All ones on lane 5q (the B column of chunk q), zeros on the other lanes.
__device__ __forceinline__ uint32_t act_mask() {
  const int lane = threadIdx.x & 31;
  return (lane >> 2) == (lane & 3) ? 0xffffffffu : 0u;
}

// Sum over c[0..CHAINS)[m] += rows (g, g + 8) of chunk q of NM matrices (w[m][0], w[m][1]) times
// the chunk's 32 activations at xp (16-byte aligned: shared memory, or an output of ours), as 8
// mma steps a matrix. Step (word j, h) takes nibbles 2h, 2h + 4 (k slots 2q, 2q + 1) and 2h + 1,
// 2h + 5 (slots 2q + 8, 2q + 9) of word j and adds into c[h % CHAINS]: with 2, two chains of
// dependent mma instead of one, for two more registers a fragment.
template <typename T, int NM, int CHAINS>
__device__ __forceinline__ void mma_chunk(float (*c)[NM][4], const uint4 (*w)[2], const T* xp,
                                          uint32_t mask) {
  const uint32_t magic = pair_magic(T{});
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    uint4 xv = reinterpret_cast<const uint4*>(xp)[j];
    xv.x &= mask, xv.y &= mask, xv.z &= mask, xv.w &= mask;
    const uint32_t b[4] = {__byte_perm(xv.x, xv.z, 0x5410), __byte_perm(xv.x, xv.z, 0x7632),
                           __byte_perm(xv.y, xv.w, 0x5410), __byte_perm(xv.y, xv.w, 0x7632)};
#pragma unroll
    for (int m = 0; m < NM; ++m) {
      const uint32_t w0 = j == 0 ? w[m][0].x : j == 1 ? w[m][0].y : j == 2 ? w[m][0].z : w[m][0].w;
      const uint32_t w1 = j == 0 ? w[m][1].x : j == 1 ? w[m][1].y : j == 2 ? w[m][1].z : w[m][1].w;
      uint32_t p0[4], p1[4];
      nibble_pairs(w0, magic, p0);
      nibble_pairs(w1, magic, p1);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint32_t a[4] = {p0[2 * h], p1[2 * h], p0[2 * h + 1], p1[2 * h + 1]};
        mma16816(c[h % CHAINS][m], a, b + 2 * h, T{});
      }
    }
  }
}

// Fragment i of matrix m summed over the chains.
template <int CHAINS, int NM>
__device__ __forceinline__ float chain_sum(const float (*c)[NM][4], int m, int i) {
  float s = c[0][m][i];
#pragma unroll
  for (int k = 1; k < CHAINS; ++k) s += c[k][m][i];
  return s;
}

// scale * sum(q x) + bias * sum(x) of one chunk from its mma column c = sum((offset + q) x).
__device__ __forceinline__ float affine_term(float scale, float bias, float c, float xsum,
                                             float offset) {
  return fmaf(scale, c, fmaf(-offset, scale, bias) * xsum);
}

// Activations staged in shared memory keep chunk c at c * XPITCH values, 32 and 8 of padding. One
// load of x reads chunks q * CPQ + j of lanes q = 0..3: unpadded, 128 bytes apart at CPQ = 2, all
// four in the same banks (ncu: 73% excess shared-memory wavefronts); 160 bytes apart they are not.
constexpr int XPITCH = 40;

// The plain sum of the 32 activations at src, in float32; copies them to dst (16-byte aligned)
// where it is given. src may sit at any offset.
template <typename T>
__device__ __forceinline__ float chunk_sum(const T* src, T* dst = nullptr) {
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint4 v = load16(src + 8 * j);
    if (dst) reinterpret_cast<uint4*>(dst)[j] = v;
    const T* t = reinterpret_cast<const T*>(&v);
#pragma unroll
    for (int i = 0; i < 8; ++i) s += static_cast<float>(t[i]);
  }
  return s;
}

// The step loop the tensor-core kernels share: this warp's steps (every S-th) over the CHUNKS
// chunks of a 16-row tile of NM matrices, 4 * CPQ chunks a step, CPQ consecutive chunks a lane
// (lane q reads chunks q * CPQ + j of the step, j < CPQ). Column q of load j's product is chunk
// q * CPQ + j's dot product. From groups of 64 on a lane's chunks 2i and 2i + 1 share a group
// (CPQ is even then), so their two loads share one set of accumulators (J2 = 2). The source says
// where things are:
//   src.at(ch): where chunk ch lies, an At{row[2], col, route}: the tile's rows g and g + 8 as
//     row indices of the weight matrices, the chunk's index within a row, and a factor for its
//     term (the MoE route weight; 1 elsewhere);
//   src.weight(m, r, at), src.scale(m, r, at), src.bias(m, r, at): matrix m's 16 bytes of row r
//     (0: g, 1: g + 8) and that chunk's group's scale and bias;
//   src.act(ch): the chunk's 32 activations (16-byte aligned).
// xsum holds each chunk's activation sum. After each set of accumulators, lanes q = p < 2 add the
// terms of columns 2p and 2p + 1 into acc[2m + r]. The step's scales and biases are loaded with
// its weights, before the mma (lanes q = 2, 3 load those of q - 2 and drop them).
struct At {
  size_t row[2];
  int col;
  float route;
};

template <typename T, int NM, int GS, int CPQ, int CHAINS, int S, int CHUNKS, class Src>
__device__ __forceinline__ void mma_steps(const Src& src, const float* xsum, float* acc) {
  constexpr int STEP = 4 * CPQ, J2 = GS >= 64 ? 2 : 1, SETS = CPQ / J2;
  const int warp = threadIdx.x >> 5, q = threadIdx.x & 3, p = q & 1;
  const uint32_t mask = act_mask();
  const float offset = magic_offset(T{});
  for (int it = warp; it * STEP < CHUNKS; it += S) {
    const int first = it * STEP;
    uint4 w[CPQ][NM][2];  // [load][matrix][row]
#pragma unroll
    for (int j = 0; j < CPQ; ++j) {
      const At at = src.at(min(first + q * CPQ + j, CHUNKS - 1));
#pragma unroll
      for (int m = 0; m < NM; ++m) w[j][m][0] = src.weight(m, 0, at), w[j][m][1] = src.weight(m, 1, at);
    }
    float sc[SETS][2][NM][2], bi[SETS][2][NM][2], rw[SETS][2];  // [set][column 2p + n][matrix][row]
#pragma unroll
    for (int i = 0; i < SETS; ++i)
#pragma unroll
      for (int n = 0; n < 2; ++n) {
        const At at = src.at(min(first + (2 * p + n) * CPQ + i * J2, CHUNKS - 1));
        rw[i][n] = at.route;
#pragma unroll
        for (int m = 0; m < NM; ++m)
#pragma unroll
          for (int r = 0; r < 2; ++r) sc[i][n][m][r] = src.scale(m, r, at), bi[i][n][m][r] = src.bias(m, r, at);
      }
#pragma unroll
    for (int i = 0; i < SETS; ++i) {
      float c[CHAINS][NM][4] = {};  // [chain][matrix][fragment]
#pragma unroll
      for (int j = i * J2; j < i * J2 + J2; ++j) {
        const int k = first + q * CPQ + j;
        mma_chunk<T, NM, CHAINS>(c, w[j], src.act(min(k, CHUNKS - 1)), k < CHUNKS ? mask : 0u);
      }
      if (q >= 2) continue;
#pragma unroll
      for (int n = 0; n < 2; ++n) {
        const int ch = first + (2 * p + n) * CPQ + i * J2;  // with J2 = 2 CHUNKS is even: ch + 1 is in
        if (ch >= CHUNKS) continue;
        const float X = J2 == 2 ? xsum[ch] + xsum[ch + 1] : xsum[ch];
#pragma unroll
        for (int r = 0; r < 2; ++r)
#pragma unroll
          for (int m = 0; m < NM; ++m)
            acc[2 * m + r] += rw[i][n] * affine_term(sc[i][n][m][r], bi[i][n][m][r],
                                                     chain_sum<CHAINS>(c, m, 2 * r + n), X, offset);
      }
    }
  }
}

// A tile's weights, scales and biases of NM matrices [rows, K / 8 words] and [rows, K / GS]
// (mma_steps' source, but for where the activations sit, given as act(ch) by the kernel).
template <typename T, int NM, int K, int GS>
struct Dense {
  const uint32_t* w[NM];
  const T* s[NM];
  const T* b[NM];
  size_t rows[2];
  __device__ At at(int ch) const { return {{rows[0], rows[1]}, ch, 1.0f}; }
  __device__ uint4 weight(int m, int r, const At& a) const {
    return ldg16(w[m] + a.row[r] * (K / 8) + a.col * 4);
  }
  __device__ void prefetch(int m, int r, const At& a) const {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(w[m] + a.row[r] * (K / 8) + a.col * 4));
  }
  __device__ float scale(int m, int r, const At& a) const {
    return static_cast<float>(s[m][a.row[r] * (K / GS) + a.col * 32 / GS]);
  }
  __device__ float bias(int m, int r, const At& a) const {
    return static_cast<float>(b[m][a.row[r] * (K / GS) + a.col * 32 / GS]);
  }
};

// After the loop over chunks: lanes q = 0 and 1 hold a[i] for rows g and g + 8 of columns
// 2q, 2q + 1; sums them over the warp's lanes and the block's S warps (part: [S][N][16] in shared
// memory) into out[i][row] for the block's first warp's lanes 0-15 (row = lane).
template <int S, int N>
__device__ __forceinline__ void tile_sum(float* a, float (*part)[N][16]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int i = 0; i < 2 * N; ++i) {
    a[i] += __shfl_xor_sync(0xffffffffu, a[i], 1);
    a[i] += __shfl_xor_sync(0xffffffffu, a[i], 2);
  }
  if ((lane & 3) == 0)
#pragma unroll
    for (int n = 0; n < N; ++n) {
      part[warp][n][lane >> 2] = a[2 * n];
      part[warp][n][(lane >> 2) + 8] = a[2 * n + 1];
    }
  __syncthreads();
  if (warp == 0 && lane < 16)
#pragma unroll
    for (int n = 0; n < N; ++n) {
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < S; ++w) s += part[w][n][lane];
      a[n] = s;
    }
}

}  // namespace ominix_q
)";

// Each kernel's source holds only the part it uses: MLX builds a custom kernel's whole source at
// every call and hashes it at every launch, and host time a launch grows with its length
// (docs/kernels.md, "Host time of a launch").
inline std::string quant_cores_header() {
  return std::string(kQuantCudaCommon) + kQuantCudaCores;
}
inline std::string quant_mma_header() {
  return std::string(kQuantCudaCommon) + kQuantCudaMma;
}

/// Launch shape of the quantized decode kernels: rows per warp and 32-chunk steps a lane loads
/// ahead, per kernel, for the CUDA-core kernels; warps a tile for the tensor-core ones.
/// OMINIX_QUANT_TUNE="qmv_rows=4,qmv_unroll=2,..." overrides them for the sweep in bench/kernels
/// and for tests of the CUDA-core path (read once per process).
struct QuantTuning {
  int qmv_rows = 2, qmv_unroll = 2;
  int gate_up_rows = 1, gate_up_unroll = 1;
  int down_rows = 2, down_unroll = 1;
  int block = 128;  // threads per block
  // The tensor-core kernels (4-bit weights, bfloat16/float16 x): 0 keeps the CUDA-core ones.
  // *_split: warps of a block sharing one 16-row tile, each taking every split-th step of its K.
  int mma = 1;
  int qmv_split = 4, gate_up_split = 2, down_split = 16;
  int qmv_split_small = 8;  // the GEMV's split below 1024 tiles (16384 rows): a matrix too small
                            // to fill the GPU with qmv_split warps a tile
  int qmv_chunks = 2, gate_up_chunks = 2, down_chunks = 2;  // 16-byte chunks a lane takes a step
  int qmv_chains = 1, gate_up_chains = 1, down_chains = 1;  // independent mma accumulators
  int qmv_min = 16;  // matrices of fewer weights (in 2^20) stay on MLX's qmv
};
const QuantTuning& quant_tuning();

/// The tensor-core kernels' template constants from QuantTuning: chunks a lane takes a step
/// (CPQ), even from groups of 64 on (a lane's chunk pairs share a group); and accumulator chains
/// (CHAINS), 1 or 2.
inline int mma_chunks(int n, int group_size) {
  return group_size >= 64 ? std::max(2, n & ~1) : n;
}
inline int mma_chains(int n) {
  return n == 1 ? 1 : 2;
}

/// Evaluated, with its data at a 16-byte boundary: the tensor-core kernels read weights so
/// (weights are evaluated when loaded).
inline bool aligned16(const mx::array& a) {
  return a.is_available() && reinterpret_cast<std::uintptr_t>(a.data<void>()) % 16 == 0;
}

/// Threads along the grid's x for `rows` output rows at `per_warp` rows a warp, in whole blocks.
inline int grid_x(int rows, int per_warp, int block) {
  const int warps = (rows + per_warp - 1) / per_warp;
  return (warps * 32 + block - 1) / block * block;
}

}  // namespace ominix::nn::detail
