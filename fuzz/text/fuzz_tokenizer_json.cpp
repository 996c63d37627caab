// libFuzzer target: arbitrary bytes as a tokenizer.json (model, normalizer, pre-tokenizer,
// post-processor, decoder, added tokens), then a fixed text encoded and the ids decoded.
// ominix::Error is the expected outcome; crashes, sanitizer reports, other exceptions
// (nlohmann::json's included), leaks and hangs are findings.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ominix/base/error.h"
#include "ominix/text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using ominix::text::Tokenizer;
  try {
    const auto tok = Tokenizer::from_json(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz/tokenizer.json");
    const auto ids = tok.encode("Hello wörld, 123 <|im_end|>\n  ünï 😀 <s></s>", true);
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
  } catch (const ominix::Error&) {
  }
  return 0;
}
