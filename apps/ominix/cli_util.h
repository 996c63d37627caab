// Small helpers the subcommands share: range validators with plain messages, UTF-8 checks that
// report the byte offset within what the user gave, reading a file or stdin, parsing token ids.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "ominix/base/error.h"

namespace ominix::cli {

/// "0.5" -> "0.5", "1e+300" as is: a number as the user would write it.
inline std::string number_str(double v) {
  return fmt::format("{}", v);
}

/// Accepts numbers >= lo ("must be ≥ lo, got x").
inline CLI::Validator at_least(double lo) {
  return CLI::Validator(
      [lo](std::string& in) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(in, v) || std::isnan(v))
          return "'" + in + "' is not a number";
        if (v < lo) return "must be ≥ " + number_str(lo) + ", got " + in;
        return {};
      },
      "≥ " + number_str(lo), "at_least");
}

/// Accepts numbers > lo ("must be > lo, got x").
inline CLI::Validator greater_than(double lo) {
  return CLI::Validator(
      [lo](std::string& in) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(in, v) || std::isnan(v))
          return "'" + in + "' is not a number";
        if (!(v > lo)) return "must be > " + number_str(lo) + ", got " + in;
        return {};
      },
      "> " + number_str(lo), "greater_than");
}

/// Accepts numbers in [lo, hi] ("must be between lo and hi, got x").
inline CLI::Validator between(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& in) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(in, v) || std::isnan(v))
          return "'" + in + "' is not a number";
        if (v < lo || v > hi)
          return "must be between " + number_str(lo) + " and " + number_str(hi) + ", got " + in;
        return {};
      },
      "in [" + number_str(lo) + ", " + number_str(hi) + "]", "between");
}

/// Byte offset of the first invalid UTF-8 sequence of s (Unicode 15, table 3-7: no overlong
/// forms, no surrogates, nothing above U+10FFFF), or npos.
inline std::size_t find_invalid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      n = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + n > s.size()) return i;
    for (std::size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return i;
    }
    i += n;
  }
  return std::string_view::npos;
}

/// InvalidArgument "<what> is not valid UTF-8 (byte offset N)" when s is not.
inline void check_utf8(std::string_view s, std::string_view what) {
  if (const auto bad = find_invalid_utf8(s); bad != std::string_view::npos)
    fail<InvalidArgument>("{} is not valid UTF-8 (byte offset {})", what, bad);
}

/// The bytes of a file ("-": stdin). IoError naming the file when it is missing, a directory or
/// unreadable.
inline std::string read_input(const std::string& path, std::string_view flag) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return std::move(ss).str();
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail<IoError>("{} {}: no such file", flag, path);
  if (std::filesystem::is_directory(path, ec))
    fail<IoError>("{} {}: is a directory, expected a text file", flag, path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<IoError>("{} {}: cannot open the file", flag, path);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail<IoError>("{} {}: read error", flag, path);
  return out;
}

/// Token ids: "1,2,3", "1 2 3" and "[1, 2, 3]" all parse. InvalidArgument naming the flag for a
/// non-id or for no ids at all.
inline std::vector<int> parse_token_ids(const std::string& s, std::string_view flag) {
  std::vector<int> ids;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(cur, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != cur.size() || v < 0 || v > std::numeric_limits<std::int32_t>::max())
      fail<InvalidArgument>("{}: '{}' is not a token id", flag, cur);
    ids.push_back(static_cast<int>(v));
    cur.clear();
  };
  for (char c : s) {
    if (c == ',' || c == ' ' || c == '[' || c == ']' || c == '\n' || c == '\t' || c == '\r') {
      flush();
    } else {
      cur += c;
    }
  }
  flush();
  if (ids.empty()) fail<InvalidArgument>("{}: no token ids in '{}'", flag, s);
  return ids;
}

/// InvalidArgument when an id is outside [0, vocab_size).
inline void check_ids_in_vocab(const std::vector<int>& ids, std::size_t vocab_size,
                               std::string_view flag) {
  for (int id : ids)
    if (id < 0 || static_cast<std::size_t>(id) >= vocab_size)
      fail<InvalidArgument>("{}: token id {} is outside the vocabulary (size {}: ids 0 to {})",
                            flag, id, vocab_size, vocab_size - 1);
}

}  // namespace ominix::cli
