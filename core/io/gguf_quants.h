// Internal: ggml block layouts, decoded to float32 or repacked into MLX's affine layout.
#pragma once

#include <cstdint>
#include <span>

#include "ominix/io/gguf.h"

namespace ominix::io::detail {

/// fp16 bits to float32, exactly (subnormals, infinities and NaNs included).
float half_to_float(std::uint16_t h);

/// Repacks whole blocks of a type with ggml_affine_spec() into MLX affine groups of 32: `weight`
/// gets bits uint32 words per group (value j of a group at bit j*bits of the group's
/// little-endian bit stream), `scales`/`biases` one float per group, with
/// value = scale * q + bias equal to the ggml dequantization in float32.
void repack_affine(GgmlType type, std::span<const std::uint8_t> blocks,
                   std::span<std::uint32_t> weight, std::span<float> scales,
                   std::span<float> biases);

}  // namespace ominix::io::detail
