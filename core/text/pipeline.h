// The components around the model in a tokenizer.json: normalizers, pre-tokenizers, decoders and
// post-processors, each a port of its HF `tokenizers` counterpart.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "json_util.h"
#include "ominix/text/tokenizer.h"

namespace ominix::text::detail {

/// A span of text on its way to the model.
struct Piece {
  std::string text;
  /// `text` holds raw bytes standing for their ByteLevel characters (spelled out lazily).
  bool byte_level = false;
  /// The piece starts at offset 0 of the original input (Metaspace prepend_scheme "first").
  bool at_origin = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  /// Normalizes `s` in place; clears `at_origin` when the start moved off the original offset 0.
  virtual void normalize(std::string& s, bool& at_origin) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  /// Splits every piece; empty pieces are dropped, as PreTokenizedString::split does.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  /// HF's decode_chain: token strings in, strings out (joined by the caller).
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  /// Sum of Strip `stop` counts: trailing characters a later token may still change.
  virtual std::size_t unstable_suffix() const { return 0; }
};

/// Adds special tokens around an encoded sequence (single sequences only).
class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(Encoding& enc, bool add_special_tokens) const = 0;
};

/// Resolves token strings to ids for post-processors that name tokens (Bert/Roberta).
std::unique_ptr<Normalizer> parse_normalizer(const json& v, const JsonPath& p);
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& v, const JsonPath& p);
std::unique_ptr<Decoder> parse_decoder(const json& v, const JsonPath& p);
std::unique_ptr<PostProcessor> parse_post_processor(const json& v, const JsonPath& p);

}  // namespace ominix::text::detail
