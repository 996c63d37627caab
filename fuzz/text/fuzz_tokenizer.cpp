// libFuzzer target: the first byte picks the Qwen3 (byte-level) or Llama-2 (SentencePiece-style)
// tokenizer and the mode. Encoding must not crash (invalid UTF-8 must throw InvalidArgument) and
// must yield known ids; decoding arbitrary ids must not crash, and streaming must equal decode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "ominix/base/error.h"
#include "ominix/text/tokenizer.h"

namespace {

using ominix::text::TokenId;
using ominix::text::Tokenizer;

const Tokenizer& tokenizer(int which) {
  static const Tokenizer qwen = Tokenizer::from_dir(OMINIX_SHARED_TOKENIZERS "/qwen3");
  static const Tokenizer llama = Tokenizer::from_dir(OMINIX_SHARED_TOKENIZERS "/llama2");
  return which ? llama : qwen;
}

void check_stream(const Tokenizer& tok, const std::vector<TokenId>& ids, bool skip) {
  ominix::text::StreamingDetokenizer stream(tok, skip);
  std::string out;
  for (TokenId id : ids) out += stream.put(id);
  out += stream.finish();
  if (out != tok.decode(ids, skip)) std::abort();
}

}  // namespace

// Loading (seconds under ASan) happens here, outside the per-input timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizer(0);
  tokenizer(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int which = data[0] & 1;
  const bool decode_mode = data[0] & 2;
  const bool flag = data[0] & 4;
  const Tokenizer& tok = tokenizer(which);
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (!decode_mode) {
    std::vector<TokenId> ids;
    try {
      ids = tok.encode(rest, flag);
    } catch (const ominix::InvalidArgument&) {
      return 0;  // invalid UTF-8
    }
    for (TokenId id : ids) {
      if (!tok.id_to_token(id)) std::abort();
    }
    check_stream(tok, ids, !flag);
    return 0;
  }
  std::vector<TokenId> ids;
  for (std::size_t i = 0; i + 4 <= rest.size(); i += 4) {
    std::uint32_t v;
    std::memcpy(&v, rest.data() + i, 4);
    // Mostly ids inside the vocabulary, sometimes anything at all.
    ids.push_back(static_cast<TokenId>((v & 0x80000000u) ? v : v % (tok.vocab_size() + 8)));
  }
  check_stream(tok, ids, flag);
  return 0;
}
