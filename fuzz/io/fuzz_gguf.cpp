// libFuzzer target: open arbitrary bytes as a GGUF file, read its metadata, build its tokenizer
// and chat template, and load every tensor (dequantized and repacked). ominix::Error is an
// expected outcome; crashes, sanitizer reports, other exceptions and hangs are findings.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <mlx/transforms.h>

#include "ominix/base/error.h"
#include "ominix/io/gguf.h"
#include "ominix/text/gguf_tokenizer.h"
#include "ominix/text/tokenizer.h"

namespace io = ominix::io;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto f = io::GgufFile::from_bytes(std::vector<std::uint8_t>(data, data + size), "fuzz.gguf");
    try {  // the tokenizer and chat template a GGUF model would use
      const auto data = io::GgufTokenizerData::parse(f.metadata());
      const auto arch = f.metadata().get<std::string>("general.architecture", "llama");
      const auto tok = ominix::text::tokenizer_from_gguf(data, arch, "fuzz.gguf");
      (void)tok.decode(tok.encode("Hello wörld 123 <s>", true));
      (void)ominix::text::chat_template_from_gguf(data);
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
