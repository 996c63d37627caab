// PCRE2 (UTF + UCP, JIT) standing in for the Oniguruma regexes of HF `tokenizers`.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ominix::text {

/// A compiled pattern. Thread-safe: matching keeps its scratch state per call and per thread.
class Regex {
 public:
  /// Compiles `pattern` (a regex, or a literal string when `literal`). Throws UnsupportedError
  /// with PCRE2's message and offset when the pattern does not compile.
  Regex(std::string_view pattern, bool literal);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  /// Every match in `s` (valid UTF-8) as [start, end) byte ranges, iterated as the `onig` crate's
  /// find_iter does: an empty match right after the previous match is skipped by one character.
  void find_all(std::string_view s, std::vector<std::pair<std::size_t, std::size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  bool literal_ = false;
  std::unique_ptr<Code> code_;
};

/// Oniguruma's Unicode `\s` also matches U+0085, which PCRE2's does not: rewrites `\s`/`\S` so
/// that they agree. Exposed for tests.
std::string onig_compatible_pattern(std::string_view pattern);

}  // namespace ominix::text
