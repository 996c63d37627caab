// ref: onig crate FindMatches::next (empty-match rule) as used by HF `tokenizers` utils/onig.rs.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex_pcre2.h"

#include <pcre2.h>

#include "ominix/base/error.h"
#include "unicode.h"

namespace ominix::text {
namespace {

struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
    if (!data || !context || !stack) throw std::bad_alloc();
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

std::string onig_compatible_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  std::size_t class_start = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 's') {
        out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (e == 'S' && !in_class) {
        out += "[^\\s\\x{85}]";
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      class_start = i + 1;
      if (class_start < p.size() && p[class_start] == '^') ++class_start;
    } else if (in_class && c == ']' && i != class_start) {
      in_class = false;
    }
    out += c;
  }
  return out;
}

Regex::Regex(std::string_view pattern, bool literal)
    : pattern_(pattern), code_(std::make_unique<Code>()) {
  if (literal) {
    literal_ = true;  // plain substring search, no PCRE2 needed
    return;
  }
  const std::string compiled = onig_compatible_pattern(pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(),
                              options, &err, &offset, nullptr);
  if (!code_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    fail<UnsupportedError>("regex '{}' does not compile at offset {}: {}", pattern, offset,
                           reinterpret_cast<const char*>(msg));
  }
  code_->jit = pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

void Regex::find_all(std::string_view s,
                     std::vector<std::pair<std::size_t, std::size_t>>& out) const {
  out.clear();
  std::size_t last_end = 0;
  std::size_t last_match_end = std::string_view::npos;
  if (literal_) {
    while (last_end <= s.size()) {
      const std::size_t start = s.find(pattern_, last_end);
      if (start == std::string_view::npos) break;
      const std::size_t end = start + pattern_.size();
      if (start == end && last_match_end == end) {
        last_end +=
            last_end < s.size() ? unicode::utf8_len(static_cast<unsigned char>(s[last_end])) : 1;
        continue;
      }
      last_end = last_match_end = end;
      out.emplace_back(start, end);
    }
    return;
  }
  MatchState& st = match_state();
  const auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  while (last_end <= s.size()) {
    const int rc = code_->jit ? pcre2_jit_match(code_->code, subject, s.size(), last_end, 0,
                                                st.data, st.context)
                              : pcre2_match(code_->code, subject, s.size(), last_end,
                                            PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      fail<InvalidArgument>("regex '{}' failed on a {}-byte input: {}", pattern_, s.size(),
                            reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const std::size_t start = ov[0], end = ov[1];
    if (start == end && last_match_end == end) {
      last_end +=
          last_end < s.size() ? unicode::utf8_len(static_cast<unsigned char>(s[last_end])) : 1;
      continue;
    }
    last_end = end;
    last_match_end = end;
    out.emplace_back(start, end);
  }
}

}  // namespace ominix::text
