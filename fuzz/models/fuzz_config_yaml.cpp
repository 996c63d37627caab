// libFuzzer target: arbitrary bytes as a FunASR model's config.yaml, read by both speech families'
// parsers: Paraformer (through its loader, which then finds no weights) and FunASR-Nano. The
// first byte picks the family (and is dropped). ominix::Error is the expected outcome; crashes,
// sanitizer reports, other exceptions (yaml-cpp's included) are findings.
#include <cstddef>
#include <cstdint>

#include "models/funasr_nano/config.h"
#include "ominix/base/error.h"
#include "ominix/models/paraformer.h"
#include "support/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto path = ominix::fuzz::write_input("model/config.yaml", data + 1, size - 1);
  try {
    if (data[0] & 1)
      (void)ominix::funasr_nano::Config::load(path.parent_path());
    else
      (void)ominix::paraformer::load_model(path.parent_path());
  } catch (const ominix::Error&) {
  }
  return 0;
}
