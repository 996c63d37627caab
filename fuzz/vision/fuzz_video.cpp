// libFuzzer target: arbitrary bytes as a video file (any container and codec this FFmpeg reads),
// decoded and sampled as load_video does, with small limits so one input stays quick.
// ominix::Error is the expected outcome; crashes, sanitizer reports, other exceptions, huge
// allocations and hangs are findings.
#include <cstddef>
#include <cstdint>

#include "ominix/base/error.h"
#include "ominix/vision/video.h"
#include "support/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = ominix::fuzz::write_input("fuzz.video", data, size);
  try {
    const auto video = ominix::vision::load_video(path);
    for (const auto& f : video.frames)
      if (f.data.size() != std::size_t(f.width) * f.height * 3) __builtin_trap();
  } catch (const ominix::Error&) {
  }
  return 0;
}
