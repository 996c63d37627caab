// Token ids to text, as FunASR's sentence_postprocess (without time stamps) joins them.
// ref: funasr 1.4.16 funasr/utils/postprocess_utils.py: isChinese, isAllChinese, isAllAlpha,
// abbr_dispose, sentence_postprocess.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <utf8proc.h>
#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/models/paraformer.h"

namespace ominix::paraformer {

Vocabulary Vocabulary::load(const std::filesystem::path& tokens_json) {
  const std::string where = tokens_json.string();
  std::error_code ec;
  if (!std::filesystem::exists(tokens_json, ec)) fail<IoError>("{}: no such file", where);
  if (!std::filesystem::is_regular_file(tokens_json, ec))
    fail<IoError>("{}: not a regular file (a directory?)", where);
  std::ifstream in(tokens_json, std::ios::binary);
  if (!in) fail<IoError>("{}: cannot open", where);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail<IoError>("{}: read error", where);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    fail<FormatError>("{}: not valid JSON: {}", where, e.what());
  }
  if (!j.is_array()) fail<FormatError>("{}: not a JSON list of tokens", tokens_json.string());
  std::vector<std::string> t;
  for (const auto& x : j) {
    if (!x.is_string())
      fail<FormatError>("{}: token {} is not a string", tokens_json.string(), t.size());
    t.push_back(x.get<std::string>());
  }
  return Vocabulary(std::move(t));
}

const std::string& Vocabulary::token(int id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size())
    fail<InvalidArgument>("token id {} outside the vocabulary of {}", id, tokens_.size());
  return tokens_[id];
}

namespace {

std::u32string utf32(const std::string& s) {
  std::u32string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char32_t v = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n && i + k < s.size(); ++k) v = (v << 6) | (s[i + k] & 0x3F);
    out.push_back(v);
    i += n;
  }
  return out;
}

std::vector<std::string> chars_of(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string strip_markers(std::string s) {  // the cleaning in isAllChinese / isAllAlpha
  for (const char* m : {" ", "</s>", "<s>", "<unk>", "<OOV>"})
    for (std::size_t p; (p = s.find(m)) != std::string::npos;) s.erase(p, std::strlen(m));
  return s;
}

// isChinese: Python string comparisons "\u4e00" <= s <= "\u9fff" or "0" <= s <= "9", or "@".
// On whole strings, so "12" counts (it sorts between "0" and "9"), as in funasr.
bool is_chinese(const std::string& s) {
  const auto u = utf32(s);
  return (std::u32string(U"\u4e00") <= u && u <= std::u32string(U"\u9fff")) ||
         (std::u32string(U"0") <= u && u <= std::u32string(U"9")) || u == U"@";
}

// Python's str.isalpha: non-empty, every code point a letter (Lu, Ll, Lt, Lm, Lo).
bool is_alpha(const std::string& s) {
  const auto u = utf32(s);
  if (u.empty()) return false;
  for (char32_t c : u) {
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    if (cat != UTF8PROC_CATEGORY_LU && cat != UTF8PROC_CATEGORY_LL && cat != UTF8PROC_CATEGORY_LT &&
        cat != UTF8PROC_CATEGORY_LM && cat != UTF8PROC_CATEGORY_LO)
      return false;
  }
  return true;
}

bool all_chinese(const std::vector<std::string>& xs) {  // isAllChinese
  if (xs.empty()) return false;
  for (const auto& x : xs)
    if (!is_chinese(strip_markers(x))) return false;
  return true;
}

bool all_alpha(const std::vector<std::string>& xs) {  // isAllAlpha
  if (xs.empty()) return false;
  for (const auto& x : xs) {
    const auto c = strip_markers(x);
    if (!is_alpha(c) && c != "'") return false;
    if (is_alpha(c) && is_chinese(c)) return false;
  }
  return true;
}

// bytes.isalpha() of one character: a single ASCII letter.
bool ascii_letter(const std::string& w) {
  return w.size() == 1 && ((w[0] >= 'a' && w[0] <= 'z') || (w[0] >= 'A' && w[0] <= 'Z'));
}

std::string upper(std::string s) {
  for (auto& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

std::string unpiece(const std::string& w) {  // ch.replace("@@", "")
  std::string out = w;
  for (std::size_t p; (p = out.find("@@")) != std::string::npos;) out.erase(p, 2);
  return out;
}

}  // namespace

std::vector<std::string> abbr_dispose(const std::vector<std::string>& words) {
  // A run "x", " ", "y" (, " ", "z" ...) of single ASCII letters is one abbreviation, upper case;
  // its last letter ends it (the blank after it stays).
  const std::size_t n = words.size();
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(ascii_letter(words[i]) && i + 2 < n && words[i + 1] == " " &&
          ascii_letter(words[i + 2]))) {
      out.push_back(words[i]);
      continue;
    }
    std::string abbr = upper(words[i]);
    std::size_t last = i;
    while (last + 2 < n && words[last + 1] == " " && ascii_letter(words[last + 2])) {
      abbr += upper(words[last + 2]);
      last += 2;
    }
    out.push_back(abbr);
    i = last;
  }
  return out;
}

std::string Vocabulary::text(const std::vector<int>& ids) const {
  std::vector<std::string> words;  // middle_lists
  for (int id : ids) {
    const auto& t = token(id);
    if (t == "<s>" || t == "</s>" || t == "<unk>" || t == "<OOV>") continue;
    words.push_back(t);
  }
  std::vector<std::string> out;  // word_lists
  std::string item;
  if (all_chinese(words)) {
    for (const auto& w : words) {
      std::string c = w;
      for (std::size_t p; (p = c.find(' ')) != std::string::npos;) c.erase(p, 1);
      out.push_back(c);
    }
  } else if (all_alpha(words)) {
    for (const auto& w : words) {
      if (w.find("@@") != std::string::npos) {
        item += unpiece(w);
      } else {
        out.push_back(item + w), out.push_back(" "), item.clear();
      }
    }
  } else {
    bool alpha_blank = false;
    for (const auto& w : words) {
      if (all_chinese(chars_of(w))) {
        if (alpha_blank) out.pop_back();
        out.push_back(w), alpha_blank = false;
      } else if (w.find("@@") != std::string::npos) {
        item += unpiece(w), alpha_blank = false;
      } else if (all_alpha(chars_of(w))) {
        out.push_back(item + w), out.push_back(" "), item.clear(), alpha_blank = true;
      } else {
        out.push_back(w);
      }
    }
  }
  std::string s;
  for (const auto& w : abbr_dispose(out)) s += w;
  // str.strip(): Python strips all Unicode white space; tokens carry at most ASCII blanks.
  const auto b = s.find_first_not_of(" \t\n\r\f\v"), e = s.find_last_not_of(" \t\n\r\f\v");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace ominix::paraformer
