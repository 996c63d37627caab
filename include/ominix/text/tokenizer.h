// Hugging Face `tokenizer.json` tokenizers (BPE: byte-level and SentencePiece-style), built to give
// exactly the ids and decodes of HF `tokenizers` (Tokenizer.from_file(...).encode/.decode).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ominix::text {

/// A token id, as the model's embedding table indexes it.
using TokenId = std::int32_t;

class Tokenizer;
namespace detail {
class Bpe;
/// Internal (core/text/tokenizer.cpp): Tokenizer::from_json of a parsed root, with the BPE model
/// given instead of read from root's "model" when `model` is not null (the GGUF path).
Tokenizer build_tokenizer(const nlohmann::json& root, std::string_view source,
                          std::unique_ptr<Bpe> model);
}  // namespace detail

/// The result of an encode: ids and the token strings HF reports beside them.
struct Encoding {
  std::vector<TokenId> ids;
  std::vector<std::string> tokens;
};

/// An immutable tokenizer; cheap to copy (shared state), safe to use from several threads.
class Tokenizer {
 public:
  /// Loads `dir/tokenizer.json` and, if present, `dir/tokenizer_config.json`.
  /// Throws IoError, FormatError (malformed file, naming file and JSON field) or UnsupportedError.
  static Tokenizer from_dir(const std::filesystem::path& dir);
  /// Loads one tokenizer.json file (no tokenizer_config.json).
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);
  /// Parses tokenizer.json content; `source` names it in error messages.
  static Tokenizer from_json(std::string_view json, std::string_view source = "tokenizer.json");

  /// Token ids of UTF-8 `text`; `add_special_tokens` applies the post-processor (e.g. BOS).
  /// Throws InvalidArgument if `text` is not valid UTF-8.
  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = true) const;
  /// As encode(), with the token strings.
  Encoding encode_with_tokens(std::string_view text, bool add_special_tokens = true) const;

  /// Text of `ids`. Unknown ids are dropped, as HF does. Invalid byte sequences decode to U+FFFD.
  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const;

  /// The id of a token string (added tokens first, then the model vocabulary).
  std::optional<TokenId> token_to_id(std::string_view token) const;
  /// The token string of an id (added tokens first, then the model vocabulary).
  std::optional<std::string> id_to_token(TokenId id) const;
  /// Whether `id` is a special added token (what skip_special_tokens removes).
  bool is_special(TokenId id) const;
  /// One past the largest id the tokenizer knows (model vocabulary and added tokens).
  std::size_t vocab_size() const;

  /// bos_token / eos_token named by tokenizer_config.json, when it was loaded and names them.
  /// Informational: like transformers >= 5, encode() takes BOS/EOS from tokenizer.json's
  /// post-processor only (transformers drops add_bos_token/add_eos_token when tokenizer.json
  /// exists).
  std::optional<std::string> bos_token() const;
  std::optional<std::string> eos_token() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
  friend class StreamingDetokenizer;
  friend Tokenizer detail::build_tokenizer(const nlohmann::json&, std::string_view,
                                           std::unique_ptr<detail::Bpe>);
};

/// Turns ids given one at a time into text, emitting only complete UTF-8. The concatenation of
/// everything put() and finish() return equals tokenizer.decode(all ids, skip_special_tokens).
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(Tokenizer tokenizer, bool skip_special_tokens = false);
  /// Adds one id; returns the text that became final (possibly empty).
  std::string put(TokenId id);
  /// Returns whatever text is still held back (e.g. an incomplete byte sequence, as U+FFFD).
  std::string finish();

 private:
  std::string window_text() const;

  Tokenizer tokenizer_;
  bool skip_special_;
  std::vector<TokenId> window_;  // [context token] + ids since the last clean boundary
  std::size_t context_len_ = 0;  // bytes of decode(context) at the start of window_text()
  std::size_t emitted_ = 0;      // bytes of window_text() after the context already returned
};

}  // namespace ominix::text
