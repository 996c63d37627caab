// libFuzzer target: open arbitrary bytes as a GGUF file, read its metadata and tokenizer, and
// load every tensor (dequantized and repacked). ominix::Error is an expected outcome; crashes,
// sanitizer reports, leaks and hangs are findings.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <mlx/transforms.h>

#include "ominix/base/error.h"
#include "ominix/io/gguf.h"

namespace io = ominix::io;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto f = io::GgufFile::from_bytes(std::vector<std::uint8_t>(data, data + size), "fuzz.gguf");
    try {
      (void)io::GgufTokenizerData::parse(f.metadata());
    } catch (const ominix::Error&) {
    }
    for (const auto& [key, value] : f.metadata().values()) {
      try {
        (void)f.metadata().optional<std::vector<std::string>>(key);
        (void)f.metadata().optional<std::int64_t>(key);
      } catch (const ominix::ConfigError&) {
      }
    }
    for (const auto& t : f.tensors()) {
      if (t.nbytes > (std::uint64_t{1} << 22)) continue;  // keep iterations fast
      for (auto policy : {io::GgufQuantPolicy::dequantize, io::GgufQuantPolicy::repack}) {
        try {
          mlx::core::eval(f.load(t, {.quant = policy}).to_dense());
        } catch (const ominix::Error&) {
        }
      }
    }
  } catch (const ominix::Error&) {
  }
  return 0;
}
