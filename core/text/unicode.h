// UTF-8 and Unicode helpers of the tokenizer: validation, code point iteration, normalization
// forms (utf8proc), and the character classes HF `tokenizers` takes from Rust's char methods.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ominix::text::unicode {

/// Byte offset of the first invalid UTF-8 sequence in `s`, or npos when `s` is valid.
std::size_t find_invalid_utf8(std::string_view s);

/// Length in bytes of the UTF-8 sequence starting with lead byte `b` (1 for invalid leads).
inline std::size_t utf8_len(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

/// Decodes the code point at `s[i]` (valid UTF-8 assumed) and advances `i` past it.
char32_t next_code_point(std::string_view s, std::size_t& i);

/// Appends the UTF-8 encoding of `cp`.
void append_utf8(std::string& out, char32_t cp);

/// Replaces invalid sequences with U+FFFD, one per maximal invalid subpart (Rust's
/// String::from_utf8_lossy, which HF decoders use).
std::string from_utf8_lossy(std::string_view bytes);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
/// Unicode normalization of valid UTF-8 text.
std::string normalize(std::string_view s, NormalForm form);

/// Rust's char::to_lowercase over every code point (full mappings; U+0130 gives two).
std::string to_lowercase(std::string_view s);

/// Rust's char::is_whitespace (the White_Space property).
bool is_whitespace(char32_t cp);
/// Rust's char::is_numeric (general categories Nd, Nl, No).
bool is_numeric(char32_t cp);
/// HF's Punctuation pre-tokenizer test: ASCII punctuation or a P* general category.
bool is_punctuation(char32_t cp);
/// Rust regex's `\w`: Alphabetic, M*, Nd, Pc, Join_Control.
bool is_word_char(char32_t cp);
/// General category M* (what StripAccents removes).
bool is_combining_mark(char32_t cp);

}  // namespace ominix::text::unicode
