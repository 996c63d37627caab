// Internals shared by the Jinja lexer, parser and interpreter: errors without a location yet,
// UTF-8 helpers that give Python's code-point semantics.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ominix/text/jinja.h"

namespace ominix::text::detail {

enum class ErrorKind { Render, Raised, Limit };

/// A render error thrown by value operations; the interpreter attaches the source location.
struct JinjaError : std::runtime_error {
  JinjaError(std::string msg, ErrorKind k = ErrorKind::Render)
      : std::runtime_error(std::move(msg)), kind(k) {}
  ErrorKind kind;
};

[[noreturn]] inline void jfail(std::string msg) {
  throw JinjaError(std::move(msg));
}

/// Decodes UTF-8 into code points; invalid bytes become U+DC80+byte (Python surrogateescape).
std::vector<char32_t> utf8_decode(std::string_view s);
/// Encodes code points as UTF-8 (lone surrogates from surrogateescape restore the byte).
std::string utf8_encode(const std::u32string_view cps);
void utf8_append(std::string& out, char32_t cp);
/// Number of code points (Python len()).
size_t utf8_length(std::string_view s);
/// True for the characters Python's str.isspace() accepts.
bool py_isspace(char32_t c);
/// str.strip/lstrip/rstrip with Python semantics (chars absent = whitespace).
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                     bool right);
/// str.lower()/str.upper() for ASCII, Latin-1, Greek and Cyrillic.
char32_t py_lower(char32_t c);
char32_t py_upper(char32_t c);
std::string py_lower_str(std::string_view s);
std::string py_upper_str(std::string_view s);
bool py_isalnum(char32_t c);
/// Python repr() of a string.
std::string py_repr_string(std::string_view s);
/// JSON string literal as json.dumps(ensure_ascii=False) writes it.
void json_escape(std::string& out, std::string_view s);

/// Serialises like json.dumps; indent nullopt = None.
std::string to_json_impl(const Value& v, const std::optional<std::string>& indent,
                         std::string_view item_sep, std::string_view key_sep, bool sort_keys);

}  // namespace ominix::text::detail
