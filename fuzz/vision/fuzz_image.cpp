// libFuzzer target: arbitrary bytes as an image file (PNG, JPEG, BMP, GIF, WebP; EXIF orientation,
// palettes, alpha), decoded to RGB as load_image does. ominix::Error is the expected outcome;
// crashes, sanitizer reports, other exceptions, huge allocations and hangs are findings.
#include <cstddef>
#include <cstdint>
#include <span>

#include "ominix/base/error.h"
#include "ominix/vision/image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto image = ominix::vision::decode_image(std::span(data, size), "fuzz.img");
    if (image.data.size() != std::size_t(image.width) * image.height * 3) __builtin_trap();
  } catch (const ominix::Error&) {
  }
  return 0;
}
