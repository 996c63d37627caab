// ggml block layouts. ref: ggml/src/ggml-quants.c (dequantize_row_*) and gguf-py/gguf/quants.py
// (gguf 0.19.0, dequantize_blocks), whose float32 results these reproduce bit for bit: every
// product and sum below is evaluated in float32 in the reference's order, and this file is
// compiled with -ffp-contract=off so that no FMA fuses them.
#include "gguf_quants.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <thread>

#include "ominix/base/error.h"

namespace ominix::io {

namespace {

constexpr int kQK = 256;  // values per K-quant super-block

std::uint16_t u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
float f16(const std::uint8_t* p) {
  return detail::half_to_float(u16(p));
}

/// One MLX affine group of 32: unsigned levels q and value = scale * q + bias. Symmetric types
/// have bias = -zero * scale and dequantize as scale * (q - zero), the reference's formula (the
/// two agree exactly for finite scales).
struct Group {
  std::uint8_t q[32];
  float scale, bias;
  int zero = 0;
};

// --- Block decoders of the types that are affine in groups of 32 -------------------------------

// Q4_0: d (f16), 16 bytes of nibbles: value j < 16 in the low nibble of byte j, value j + 16 in
// its high nibble; x = d * (q - 8).
void groups_q4_0(const std::uint8_t* b, Group* g) {
  const float d = f16(b);
  for (int j = 0; j < 16; ++j) {
    g->q[j] = b[2 + j] & 0x0F;
    g->q[j + 16] = b[2 + j] >> 4;
  }
  g->scale = d;
  g->bias = d * -8.0f;  // exact (a power of two)
  g->zero = 8;
}

// Q4_1: d, m (f16), nibbles as Q4_0; x = d * q + m.
void groups_q4_1(const std::uint8_t* b, Group* g) {
  for (int j = 0; j < 16; ++j) {
    g->q[j] = b[4 + j] & 0x0F;
    g->q[j + 16] = b[4 + j] >> 4;
  }
  g->scale = f16(b);
  g->bias = f16(b + 2);
}

// Q5_0: d (f16), qh (32 high bits, little-endian), nibbles as Q4_0; x = d * (q - 16).
void groups_q5_0(const std::uint8_t* b, Group* g) {
  const float d = f16(b);
  std::uint32_t qh = 0;
  std::memcpy(&qh, b + 2, 4);
  for (int j = 0; j < 16; ++j) {
    g->q[j] = static_cast<std::uint8_t>((b[6 + j] & 0x0F) | (((qh >> j) & 1u) << 4));
    g->q[j + 16] = static_cast<std::uint8_t>((b[6 + j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
  }
  g->scale = d;
  g->bias = d * -16.0f;
  g->zero = 16;
}

// Q5_1: d, m (f16), qh, nibbles; x = d * q + m.
void groups_q5_1(const std::uint8_t* b, Group* g) {
  std::uint32_t qh = 0;
  std::memcpy(&qh, b + 4, 4);
  for (int j = 0; j < 16; ++j) {
    g->q[j] = static_cast<std::uint8_t>((b[8 + j] & 0x0F) | (((qh >> j) & 1u) << 4));
    g->q[j + 16] = static_cast<std::uint8_t>((b[8 + j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
  }
  g->scale = f16(b);
  g->bias = f16(b + 2);
}

// Q8_0: d (f16), 32 int8; x = q * d. As unsigned levels: (q + 128) * d - 128 * d, exact in
// float32 (d has 11 significant bits, q + 128 has 8).
void groups_q8_0(const std::uint8_t* b, Group* g) {
  const float d = f16(b);
  for (int j = 0; j < 32; ++j) g->q[j] = static_cast<std::uint8_t>(b[2 + j] ^ 0x80);
  g->scale = d;
  g->bias = d * -128.0f;
  g->zero = 128;
}

// The 12 bytes of 6-bit scales and mins of Q4_K/Q5_K: bytes 0-3 hold sc[0..3] in their low six
// bits, 4-7 hold m[0..3], 8-11 the low nibbles of sc[4..7] and m[4..7]; the top two bits of
// bytes 0-3 (4-7) are the high bits of sc[4..7] (m[4..7]).
void scale_min_k4(const std::uint8_t* s, std::uint8_t* sc, std::uint8_t* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    m[j] = s[4 + j] & 63;
    sc[4 + j] = static_cast<std::uint8_t>((s[8 + j] & 0x0F) | ((s[j] >> 2) & 0x30));
    m[4 + j] = static_cast<std::uint8_t>((s[8 + j] >> 4) | ((s[4 + j] >> 2) & 0x30));
  }
}

// Q4_K: d, dmin (f16), scales[12], qs[128]. Sub-block i (32 values) takes the low (i even) or
// high (i odd) nibbles of qs[32 * (i / 2) ...]; x = (d * sc[i]) * q - dmin * m[i].
void groups_q4_k(const std::uint8_t* b, Group* g) {
  const float d = f16(b), dmin = f16(b + 2);
  std::uint8_t sc[8], m[8];
  scale_min_k4(b + 4, sc, m);
  const std::uint8_t* qs = b + 16;
  for (int i = 0; i < 8; ++i) {
    const std::uint8_t* q = qs + 32 * (i / 2);
    const int shift = 4 * (i % 2);
    for (int l = 0; l < 32; ++l) g[i].q[l] = (q[l] >> shift) & 0x0F;
    g[i].scale = d * static_cast<float>(sc[i]);
    g[i].bias = -(dmin * static_cast<float>(m[i]));
  }
}

// Q5_K: d, dmin, scales[12], qh[32], qs[128]: the nibbles of Q4_K plus bit i of qh[l] as the
// fifth bit of value l of sub-block i.
void groups_q5_k(const std::uint8_t* b, Group* g) {
  const float d = f16(b), dmin = f16(b + 2);
  std::uint8_t sc[8], m[8];
  scale_min_k4(b + 4, sc, m);
  const std::uint8_t* qh = b + 16;
  const std::uint8_t* qs = b + 48;
  for (int i = 0; i < 8; ++i) {
    const std::uint8_t* q = qs + 32 * (i / 2);
    const int shift = 4 * (i % 2);
    for (int l = 0; l < 32; ++l)
      g[i].q[l] = static_cast<std::uint8_t>(((q[l] >> shift) & 0x0F) | (((qh[l] >> i) & 1) << 4));
    g[i].scale = d * static_cast<float>(sc[i]);
    g[i].bias = -(dmin * static_cast<float>(m[i]));
  }
}

// --- Types with sub-blocks of 16 (no exact MLX affine form): decoded straight to floats --------

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin (f16). Value
// 128h + 32k + l is bits 2k..2k+1 of qs[32h + l]; x = (d * sc) * q - dmin * m per 16 values.
void floats_q2_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* scales = b;
  const std::uint8_t* qs = b + 16;
  const float d = f16(b + 80), dmin = f16(b + 82);
  for (int v = 0; v < kQK; ++v) {
    const int h = v / 128, k = (v / 32) % 4, l = v % 32;
    const float q = static_cast<float>((qs[32 * h + l] >> (2 * k)) & 3);
    const std::uint8_t s = scales[v / 16];
    const float dl = d * static_cast<float>(s & 0x0F);
    const float ml = dmin * static_cast<float>(s >> 4);
    y[v] = dl * q - ml;
  }
}

// Q3_K: hmask[32], qs[64], scales[12], d (f16). Scales are 6-bit (low nibbles in bytes 0-7: j
// < 8 low, j >= 8 high nibble of byte j % 8; high bit pairs in bytes 8-11) minus 32. Value
// 128h + 32k + l has low bits 2k..2k+1 of qs[32h + l] and subtracts 4 unless bit v / 32 of
// hmask[l] is set; x = (d * scale) * q per 16 values.
void floats_q3_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* hmask = b;
  const std::uint8_t* qs = b + 32;
  const std::uint8_t* s = b + 96;
  const float d = f16(b + 108);
  float dl[16];
  for (int j = 0; j < 16; ++j) {
    const int low = (s[j % 8] >> (4 * (j / 8))) & 0x0F;
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 0x03;
    dl[j] = d * static_cast<float>((low | (high << 4)) - 32);
  }
  for (int v = 0; v < kQK; ++v) {
    const int h = v / 128, k = (v / 32) % 4, l = v % 32;
    const int low = (qs[32 * h + l] >> (2 * k)) & 3;
    const int hbit = (hmask[l] >> (v / 32)) & 1;
    y[v] = dl[v / 16] * static_cast<float>(low - (hbit ? 0 : 4));
  }
}

// Q6_K: ql[128], qh[64], scales[16] (int8), d (f16). Value 128h + 64s + l (l < 64) has low bits
// from nibble s of ql[64h + l]; value 128h + 32k + l (l < 32) has high bits 2k..2k+1 of
// qh[32h + l]; x = (d * scale) * (q - 32) per 16 values.
void floats_q6_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* ql = b;
  const std::uint8_t* qh = b + 128;
  const std::uint8_t* scales = b + 192;
  const float d = f16(b + 208);
  for (int v = 0; v < kQK; ++v) {
    const int h = v / 128, r = v % 128;
    const int low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
    const int high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
    const float dl = d * static_cast<float>(static_cast<std::int8_t>(scales[v / 16]));
    y[v] = dl * static_cast<float>((low | (high << 4)) - 32);
  }
}

struct Codec {
  GgmlType type;
  int block_size, type_size;
  int bits;                                     // affine types: MLX bits
  void (*groups)(const std::uint8_t*, Group*);  // affine types
  void (*floats)(const std::uint8_t*, float*);  // the others
};

constexpr Codec kCodecs[] = {
    {GgmlType::Q4_0, 32, 18, 4, groups_q4_0, nullptr},
    {GgmlType::Q4_1, 32, 20, 4, groups_q4_1, nullptr},
    {GgmlType::Q5_0, 32, 22, 5, groups_q5_0, nullptr},
    {GgmlType::Q5_1, 32, 24, 5, groups_q5_1, nullptr},
    {GgmlType::Q8_0, 32, 34, 8, groups_q8_0, nullptr},
    {GgmlType::Q4_K, 256, 144, 4, groups_q4_k, nullptr},
    {GgmlType::Q5_K, 256, 176, 5, groups_q5_k, nullptr},
    {GgmlType::Q2_K, 256, 84, 0, nullptr, floats_q2_k},
    {GgmlType::Q3_K, 256, 110, 0, nullptr, floats_q3_k},
    {GgmlType::Q6_K, 256, 210, 0, nullptr, floats_q6_k},
};

const Codec* codec(GgmlType t) {
  for (const auto& c : kCodecs)
    if (c.type == t) return &c;
  return nullptr;
}

void check_sizes(const char* what, GgmlType type, std::size_t nbytes, std::size_t nvalues,
                 int block_size, int type_size) {
  if (nbytes % static_cast<std::size_t>(type_size) != 0 ||
      nbytes / static_cast<std::size_t>(type_size) * static_cast<std::size_t>(block_size) !=
          nvalues)
    fail<InvalidArgument>("{}: {} bytes of {} do not hold {} values", what, nbytes, to_string(type),
                          nvalues);
}

}  // namespace

namespace detail {

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float32
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  const std::uint32_t bits = exp == 0x1F ? (sign | 0x7F800000u | (mant << 13))
                                         : (sign | ((exp + 112) << 23) | (mant << 13));
  return std::bit_cast<float>(bits);
}

// 32 values of BITS bits as MLX packs them: a little-endian bit stream of 32 * BITS bits.
template <int BITS>
void pack_group(const std::uint8_t* q, std::uint32_t* w) {
  std::uint32_t out[BITS] = {};
  for (int j = 0; j < 32; ++j) {
    const int pos = j * BITS, word = pos / 32, off = pos % 32;
    out[word] |= static_cast<std::uint32_t>(q[j]) << off;
    if (off + BITS > 32) out[word + 1] |= static_cast<std::uint32_t>(q[j]) >> (32 - off);
  }
  std::copy(out, out + BITS, w);
}

void repack_affine(GgmlType type, std::span<const std::uint8_t> blocks,
                   std::span<std::uint32_t> weight, std::span<float> scales,
                   std::span<float> biases) {
  const Codec* c = codec(type);
  if (!c || !c->groups) fail<InvalidArgument>("repack_affine: {} is not affine", to_string(type));
  const std::size_t nblocks = blocks.size() / static_cast<std::size_t>(c->type_size);
  const std::size_t per_block = static_cast<std::size_t>(c->block_size / 32);
  const std::size_t ngroups = nblocks * per_block;
  check_sizes("repack_affine", type, blocks.size(), ngroups * 32, c->block_size, c->type_size);
  if (weight.size() != ngroups * static_cast<std::size_t>(c->bits) || scales.size() != ngroups ||
      biases.size() != ngroups)
    fail<InvalidArgument>("repack_affine: output sizes do not match {} groups", ngroups);
  // The width as a template argument, so that each group's packing loop unrolls into shifts and
  // ORs with constant offsets (about 3x faster than with the width at run time).
  // Large tensors are split between two threads (disjoint blocks and outputs).
  auto run = [&]<int BITS>() {
    auto range = [&](std::size_t first, std::size_t last) {
      Group g[8];
      for (std::size_t b = first; b < last; ++b) {
        c->groups(blocks.data() + b * static_cast<std::size_t>(c->type_size), g);
        for (std::size_t i = 0; i < per_block; ++i) {
          const std::size_t gi = b * per_block + i;
          pack_group<BITS>(g[i].q, weight.data() + gi * BITS);
          scales[gi] = g[i].scale;
          biases[gi] = g[i].bias;
        }
      }
    };
    if (nblocks < (1u << 16) || std::thread::hardware_concurrency() < 2) return range(0, nblocks);
    std::thread other(range, nblocks / 2, nblocks);
    range(0, nblocks / 2);
    other.join();
  };
  switch (c->bits) {
    case 2:
      return run.operator()<2>();
    case 3:
      return run.operator()<3>();
    case 4:
      return run.operator()<4>();
    case 5:
      return run.operator()<5>();
    case 6:
      return run.operator()<6>();
    case 8:
      return run.operator()<8>();
    default:
      fail<InvalidArgument>("repack_affine: {} bits are not packed", c->bits);
  }
}

}  // namespace detail

std::optional<QuantSpec> ggml_affine_spec(GgmlType t) {
  const Codec* c = codec(t);
  if (!c || !c->groups) return std::nullopt;
  return QuantSpec{.group_size = 32, .bits = c->bits, .mode = QuantMode::affine};
}

void dequantize_ggml(GgmlType type, std::span<const std::uint8_t> blocks, std::span<float> out) {
  switch (type) {
    case GgmlType::F32:
      check_sizes("dequantize_ggml", type, blocks.size(), out.size(), 1, 4);
      if (!out.empty()) std::memcpy(out.data(), blocks.data(), blocks.size());
      return;
    case GgmlType::F16:
      check_sizes("dequantize_ggml", type, blocks.size(), out.size(), 1, 2);
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = f16(blocks.data() + 2 * i);
      return;
    case GgmlType::BF16:
      check_sizes("dequantize_ggml", type, blocks.size(), out.size(), 1, 2);
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = std::bit_cast<float>(static_cast<std::uint32_t>(u16(blocks.data() + 2 * i)) << 16);
      return;
    default:
      break;
  }
  const Codec* c = codec(type);
  if (!c) fail<UnsupportedError>("dequantize_ggml: type {} is not supported", to_string(type));
  check_sizes("dequantize_ggml", type, blocks.size(), out.size(), c->block_size, c->type_size);
  const std::size_t nblocks = blocks.size() / static_cast<std::size_t>(c->type_size);
  for (std::size_t b = 0; b < nblocks; ++b) {
    const std::uint8_t* src = blocks.data() + b * static_cast<std::size_t>(c->type_size);
    float* y = out.data() + b * static_cast<std::size_t>(c->block_size);
    if (c->floats) {
      c->floats(src, y);
      continue;
    }
    Group g[8];
    c->groups(src, g);
    for (int i = 0; i < c->block_size / 32; ++i) {
      const Group& gi = g[i];
      for (int j = 0; j < 32; ++j)
        y[32 * i + j] = gi.zero ? gi.scale * static_cast<float>(gi.q[j] - gi.zero)
                                : gi.scale * static_cast<float>(gi.q[j]) + gi.bias;
    }
  }
}

}  // namespace ominix::io
