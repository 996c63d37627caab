// Image files decoded to 8-bit RGB the way transformers' image loading and Qwen2-VL image
// processor see them (docs/vision.md): PNG, JPEG, BMP, GIF (first frame), WebP.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

namespace ominix::vision {

/// An 8-bit RGB image: rows top to bottom, pixels interleaved, data.size() == height * width * 3.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> data;
};

/// Reads an image file and returns its upright RGB pixels, as transformers does for a file:
/// PIL.ImageOps.exif_transpose (EXIF orientation applied), then the processor's convert_to_rgb
/// (grey replicated, palette expanded, alpha/transparency composited onto white as
/// PIL.Image.alpha_composite does). IoError if unreadable; FormatError naming the file (and the
/// decoder's reason) if corrupt, truncated or empty; UnsupportedError for other formats and for
/// images above Pillow's decompression-bomb limit (178,956,970 pixels).
Image load_image(const std::filesystem::path& path);

/// The same from the file's bytes; `name` names the source in error messages.
Image decode_image(std::span<const std::uint8_t> bytes, std::string_view name);

/// Bicubic resize with antialiasing (a = -0.5, support scaled when shrinking) in 8-bit fixed point,
/// horizontal pass then vertical: what torchvision's resize(BICUBIC, antialias=True) computes for a
/// uint8 tensor on the CPU (the same weights as Pillow's Image.resize(BICUBIC)). Exact to the byte.
Image resize_bicubic(const Image& image, int height, int width);

}  // namespace ominix::vision
