// ref: huggingface/tokenizers@3ba8ad0 tokenizers/src/{normalizers,pre_tokenizers,decoders,
// processors}/*.rs and tokenizer/{normalizer.rs (split behaviours), pattern.rs}.
#include "pipeline.h"

#include <algorithm>
#include <functional>

#include "bpe.h"
#include "regex_pcre2.h"
#include "unicode.h"

namespace ominix::text::detail {
namespace {

using Span = std::pair<std::size_t, std::size_t>;
using Part = std::pair<Span, bool>;  // (offsets, is_match) covering the whole string

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const json& v, const JsonPath& p) {
  const std::string s = get_string(v, p);
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  fail<UnsupportedError>("{}: unknown split behavior '{}'", p.str(), s);
}

/// "pattern": {"String": s} or {"Regex": r}.
Regex parse_pattern(const json& v, const JsonPath& p) {
  if (v.is_object() && v.contains("String"))
    return Regex(get_string(v["String"], p / "String"), true);
  if (v.is_object() && v.contains("Regex"))
    return Regex(get_string(v["Regex"], p / "Regex"), false);
  bad_field(p, "expected {\"String\": ...} or {\"Regex\": ...}");
}

char32_t parse_char(const json& v, const JsonPath& p) {
  const std::string s = get_string(v, p);
  if (s.empty() || unicode::find_invalid_utf8(s) != std::string::npos)
    bad_field(p, "expected one character");
  std::size_t i = 0;
  const char32_t c = unicode::next_code_point(s, i);
  if (i != s.size()) bad_field(p, "expected one character");
  return c;
}

void spell_out(Piece& piece) {
  if (piece.byte_level) {
    piece.text = byte_level_encode(piece.text);
    piece.byte_level = false;
  }
}

// pattern.rs `impl Pattern for &Regex`.
void regex_parts(const Regex& re, std::string_view s, bool invert, std::vector<Part>& parts) {
  parts.clear();
  if (s.empty()) {
    parts.push_back({{0, 0}, invert});
    return;
  }
  thread_local std::vector<Span> spans;
  re.find_all(s, spans);
  std::size_t prev = 0;
  for (const auto& [start, end] : spans) {
    if (prev != start) parts.push_back({{prev, start}, invert});
    parts.push_back({{start, end}, !invert});
    prev = end;
  }
  if (prev != s.size()) parts.push_back({{prev, s.size()}, invert});
}

// pattern.rs `impl<F: Fn(char) -> bool> Pattern for F`: every matching character on its own.
template <typename Pred>
void char_parts(std::string_view s, Pred pred, std::vector<Part>& parts) {
  parts.clear();
  if (s.empty()) {
    parts.push_back({{0, 0}, false});
    return;
  }
  std::size_t last = 0, i = 0;
  while (i < s.size()) {
    const std::size_t b = i;
    const char32_t c = unicode::next_code_point(s, i);
    if (pred(c)) {
      if (last < b) parts.push_back({{last, b}, false});
      parts.push_back({{b, i}, true});
      last = i;
    }
  }
  if (s.size() > last) parts.push_back({{last, s.size()}, false});
}

// normalizer.rs NormalizedString::split, then PreTokenizedString::split dropping empty pieces.
void apply_split(const Piece& piece, const std::vector<Part>& parts, Behavior behavior,
                 std::vector<Piece>& out) {
  thread_local std::vector<Part> splits;  // (offsets, remove)
  splits.clear();
  bool previous = false;
  switch (behavior) {
    case Behavior::Isolated:
      for (const auto& [o, m] : parts) splits.push_back({o, false});
      break;
    case Behavior::Removed:
      splits.assign(parts.begin(), parts.end());
      break;
    case Behavior::Contiguous:
      for (const auto& [o, m] : parts) {
        if (m == previous && !splits.empty()) {
          splits.back().first.second = o.second;
        } else {
          splits.push_back({o, false});
        }
        previous = m;
      }
      break;
    case Behavior::MergedWithPrevious:
      for (const auto& [o, m] : parts) {
        if (m && !previous && !splits.empty()) {
          splits.back().first.second = o.second;
        } else {
          splits.push_back({o, false});
        }
        previous = m;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        const auto& [o, m] = *it;
        if (m && !previous && !splits.empty()) {
          splits.back().first.first = o.first;
        } else {
          splits.push_back({o, false});
        }
        previous = m;
      }
      std::reverse(splits.begin(), splits.end());
      break;
  }
  for (const auto& [o, remove] : splits) {
    if (remove || o.second <= o.first) continue;
    out.push_back({piece.text.substr(o.first, o.second - o.first), piece.byte_level,
                   piece.at_origin && o.first == 0});
  }
}

/// Runs `fn(piece, parts)` to compute the parts of each piece, then splits it.
template <typename Fn>
void split_all(std::vector<Piece>& pieces, Behavior behavior, Fn fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 4);
  std::vector<Part> parts;
  for (Piece& piece : pieces) {
    fn(piece, parts);
    apply_split(piece, parts, behavior, out);
  }
  pieces = std::move(out);
}

std::string replace_all(const Regex& re, std::string_view s, std::string_view content) {
  thread_local std::vector<Span> spans;
  re.find_all(s, spans);
  if (spans.empty()) return std::string(s);
  std::string out;
  out.reserve(s.size());
  std::size_t prev = 0;
  for (const auto& [start, end] : spans) {
    out.append(s.substr(prev, start - prev));
    out.append(content);
    prev = end;
  }
  out.append(s.substr(prev));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Normalizers

struct UnicodeNormalizer : Normalizer {
  unicode::NormalForm form;
  explicit UnicodeNormalizer(unicode::NormalForm f) : form(f) {}
  void normalize(std::string& s, bool&) const override { s = unicode::normalize(s, form); }
};

struct LowercaseNormalizer : Normalizer {
  void normalize(std::string& s, bool&) const override { s = unicode::to_lowercase(s); }
};

struct StripNormalizer : Normalizer {
  bool left, right;
  StripNormalizer(bool l, bool r) : left(l), right(r) {}
  void normalize(std::string& s, bool& at_origin) const override {
    std::size_t begin = 0, end = s.size();
    if (left) {
      std::size_t i = 0;
      while (i < s.size()) {
        std::size_t j = i;
        if (!unicode::is_whitespace(unicode::next_code_point(s, j))) break;
        i = j;
      }
      begin = i;
    }
    if (right) {
      while (end > begin) {
        std::size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        std::size_t j = start;
        if (!unicode::is_whitespace(unicode::next_code_point(s, j))) break;
        end = start;
      }
    }
    if (begin > 0) at_origin = false;
    s = s.substr(begin, end - begin);
  }
};

struct StripAccentsNormalizer : Normalizer {
  void normalize(std::string& s, bool&) const override {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
      const std::size_t b = i;
      if (!unicode::is_combining_mark(unicode::next_code_point(s, i))) out.append(s, b, i - b);
    }
    s = std::move(out);
  }
};

struct ReplaceNormalizer : Normalizer {
  Regex pattern;
  std::string content;
  ReplaceNormalizer(Regex re, std::string c) : pattern(std::move(re)), content(std::move(c)) {}
  void normalize(std::string& s, bool&) const override { s = replace_all(pattern, s, content); }
};

struct PrependNormalizer : Normalizer {
  std::string prepend;
  explicit PrependNormalizer(std::string p) : prepend(std::move(p)) {}
  void normalize(std::string& s, bool&) const override {
    if (!s.empty()) s = prepend + s;
  }
};

struct ByteLevelNormalizer : Normalizer {
  void normalize(std::string& s, bool&) const override { s = byte_level_encode(s); }
};

struct SequenceNormalizer : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> items;
  void normalize(std::string& s, bool& at_origin) const override {
    for (const auto& n : items) n->normalize(s, at_origin);
  }
};

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers

struct SplitPreTokenizer : PreTokenizer {
  Regex pattern;
  Behavior behavior;
  bool invert;
  SplitPreTokenizer(Regex re, Behavior b, bool inv)
      : pattern(std::move(re)), behavior(b), invert(inv) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_all(pieces, behavior, [&](Piece& piece, std::vector<Part>& parts) {
      spell_out(piece);
      regex_parts(pattern, piece.text, invert, parts);
    });
  }
};

struct ByteLevelPreTokenizer : PreTokenizer {
  bool add_prefix_space, use_regex;
  Regex gpt2{R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
             false};
  ByteLevelPreTokenizer(bool prefix, bool regex) : add_prefix_space(prefix), use_regex(regex) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (Piece& piece : pieces) {
      spell_out(piece);
      if (add_prefix_space && !piece.text.starts_with(' ')) piece.text = " " + piece.text;
    }
    if (use_regex) {
      split_all(pieces, Behavior::Isolated, [&](Piece& piece, std::vector<Part>& parts) {
        regex_parts(gpt2, piece.text, false, parts);
      });
    } else {
      std::erase_if(pieces, [](const Piece& p) { return p.text.empty(); });
    }
    for (Piece& piece : pieces) piece.byte_level = true;
  }
};

enum class PrependScheme { First, Never, Always };

PrependScheme parse_prepend_scheme(const json& v, const JsonPath& p) {
  PrependScheme scheme = PrependScheme::Always;
  bool given = false;
  if (auto it = v.find("prepend_scheme"); it != v.end() && !it->is_null()) {
    const std::string s = get_string(*it, p / "prepend_scheme");
    given = true;
    if (s == "first") {
      scheme = PrependScheme::First;
    } else if (s == "never") {
      scheme = PrependScheme::Never;
    } else if (s == "always") {
      scheme = PrependScheme::Always;
    } else {
      fail<UnsupportedError>("{}: unknown prepend_scheme '{}'", (p / "prepend_scheme").str(), s);
    }
  }
  if (!opt_bool(v, "add_prefix_space", true, p)) {
    if (given && scheme != PrependScheme::Never) {
      bad_field(p / "add_prefix_space", "false does not match the declared prepend_scheme");
    }
    scheme = PrependScheme::Never;
  }
  return scheme;
}

struct MetaspacePreTokenizer : PreTokenizer {
  char32_t replacement;
  std::string rep;
  PrependScheme scheme;
  bool split;
  MetaspacePreTokenizer(char32_t r, PrependScheme s, bool sp)
      : replacement(r), scheme(s), split(sp) {
    unicode::append_utf8(rep, r);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (Piece& piece : pieces) {
      spell_out(piece);
      std::string out;
      out.reserve(piece.text.size() + rep.size() * 4);
      for (char c : piece.text) {
        if (c == ' ') {
          out += rep;
        } else {
          out += c;
        }
      }
      piece.text = std::move(out);
      const bool starts = piece.text.starts_with(rep);
      if ((scheme == PrependScheme::Always && !starts) ||
          (scheme == PrependScheme::First && !starts && piece.at_origin)) {
        piece.text = rep + piece.text;
      }
    }
    if (split) {
      split_all(pieces, Behavior::MergedWithNext, [&](Piece& piece, std::vector<Part>& parts) {
        char_parts(
            piece.text, [&](char32_t c) { return c == replacement; }, parts);
      });
    } else {
      std::erase_if(pieces, [](const Piece& p) { return p.text.empty(); });
    }
  }
};

struct CharClassPreTokenizer : PreTokenizer {
  std::function<bool(char32_t)> pred;
  Behavior behavior;
  CharClassPreTokenizer(std::function<bool(char32_t)> f, Behavior b)
      : pred(std::move(f)), behavior(b) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_all(pieces, behavior, [&](Piece& piece, std::vector<Part>& parts) {
      spell_out(piece);
      char_parts(piece.text, pred, parts);
    });
  }
};

// whitespace.rs Whitespace: keep the runs of `\w+|[^\w\s]+` (Rust regex classes), drop the rest.
struct WhitespacePreTokenizer : PreTokenizer {
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_all(pieces, Behavior::Removed, [&](Piece& piece, std::vector<Part>& parts) {
      spell_out(piece);
      parts.clear();
      const std::string& s = piece.text;
      if (s.empty()) {
        parts.push_back({{0, 0}, true});
        return;
      }
      // 0: space, 1: word, 2: other.
      auto cls = [](char32_t c) {
        return unicode::is_word_char(c) ? 1 : unicode::is_whitespace(c) ? 0 : 2;
      };
      std::size_t i = 0;
      while (i < s.size()) {
        const std::size_t b = i;
        const int k = cls(unicode::next_code_point(s, i));
        while (i < s.size()) {
          std::size_t j = i;
          if (cls(unicode::next_code_point(s, j)) != k) break;
          i = j;
        }
        // A whitespace run is a delimiter (removed); runs of either other class are kept. Two
        // adjacent kept runs stay separate pieces, as the regex yields two matches.
        parts.push_back({{b, i}, k == 0});
      }
    });
  }
};

struct SequencePreTokenizer : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> items;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& t : items) t->pre_tokenize(pieces);
  }
};

// ---------------------------------------------------------------------------------------------
// Decoders

struct ByteLevelDecoder : Decoder {
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const std::size_t mark = bytes.size();
      std::size_t i = 0;
      bool ok = true;
      while (i < t.size()) {
        const int b = byte_level_byte(unicode::next_code_point(t, i));
        if (b < 0) {
          ok = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!ok) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, unicode::from_utf8_lossy(bytes));
  }
};

struct ByteFallbackDecoder : Decoder {
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (unicode::find_invalid_utf8(pending) == std::string::npos) {
        out.push_back(pending);
      } else {
        for (std::size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.starts_with("<0x") && t.back() == '>') {
        auto hex = [](char c) {
          return c >= '0' && c <= '9'   ? c - '0'
                 : c >= 'A' && c <= 'F' ? c - 'A' + 10
                 : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : -1;
        };
        const int hi = hex(t[3]), lo = hex(t[4]);
        if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

struct FuseDecoder : Decoder {
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

struct StripDecoder : Decoder {
  char32_t content;
  std::size_t start, stop;
  StripDecoder(char32_t c, std::size_t b, std::size_t e) : content(c), start(b), stop(e) {}
  std::size_t unstable_suffix() const override { return stop; }
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::size_t> bounds;  // byte offset of each character, then the end
    for (std::string& t : tokens) {
      bounds.clear();
      std::vector<char32_t> chars;
      std::size_t i = 0;
      while (i < t.size()) {
        bounds.push_back(i);
        chars.push_back(unicode::next_code_point(t, i));
      }
      bounds.push_back(t.size());
      std::size_t start_cut = 0;
      for (std::size_t k = 0; k < std::min(start, chars.size()); ++k) {
        if (chars[k] != content) break;
        start_cut = k + 1;
      }
      std::size_t stop_cut = chars.size();
      for (std::size_t k = 0; k < std::min(stop, chars.size()); ++k) {
        const std::size_t index = chars.size() - k - 1;
        if (chars[index] != content) break;
        stop_cut = index;
      }
      if (stop_cut < start_cut) stop_cut = start_cut;
      t = t.substr(bounds[start_cut], bounds[stop_cut] - bounds[start_cut]);
    }
  }
};

struct ReplaceDecoder : Decoder {
  Regex pattern;
  std::string content;
  ReplaceDecoder(Regex re, std::string c) : pattern(std::move(re)), content(std::move(c)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = replace_all(pattern, t, content);
  }
};

struct MetaspaceDecoder : Decoder {
  char32_t replacement;
  PrependScheme scheme;
  MetaspaceDecoder(char32_t r, PrependScheme s) : replacement(r), scheme(s) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      const std::string& t = tokens[k];
      std::string out;
      out.reserve(t.size());
      std::size_t i = 0;
      while (i < t.size()) {
        const std::size_t b = i;
        if (unicode::next_code_point(t, i) == replacement) {
          if (!(k == 0 && scheme != PrependScheme::Never)) out += ' ';
        } else {
          out.append(t, b, i - b);
        }
      }
      tokens[k] = std::move(out);
    }
  }
};

struct SequenceDecoder : Decoder {
  std::vector<std::unique_ptr<Decoder>> items;
  std::size_t unstable_suffix() const override {
    std::size_t n = 0;
    for (const auto& d : items) n += d->unstable_suffix();
    return n;
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items) d->decode_chain(tokens);
  }
};

// ---------------------------------------------------------------------------------------------
// Post-processors

struct SpecialPiece {
  bool is_sequence = false;
  std::vector<TokenId> ids;
  std::vector<std::string> tokens;
};

struct TemplateProcessor : PostProcessor {
  std::vector<SpecialPiece> single;
  void process(Encoding& enc, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    Encoding out;
    for (const SpecialPiece& piece : single) {
      if (piece.is_sequence) {
        out.ids.insert(out.ids.end(), enc.ids.begin(), enc.ids.end());
        out.tokens.insert(out.tokens.end(), enc.tokens.begin(), enc.tokens.end());
      } else {
        out.ids.insert(out.ids.end(), piece.ids.begin(), piece.ids.end());
        out.tokens.insert(out.tokens.end(), piece.tokens.begin(), piece.tokens.end());
      }
    }
    enc = std::move(out);
  }
};

struct NoopProcessor : PostProcessor {
  void process(Encoding&, bool) const override {}
};

struct SequenceProcessor : PostProcessor {
  std::vector<std::unique_ptr<PostProcessor>> items;
  void process(Encoding& enc, bool add_special_tokens) const override {
    for (const auto& pp : items) pp->process(enc, add_special_tokens);
  }
};

SpecialPiece parse_token_pair(const json& v, const JsonPath& p) {
  if (!v.is_array() || v.size() != 2) bad_field(p, "expected [token, id]");
  const std::int64_t id = get_int(v[1], p[1]);
  if (id < 0 || id > INT32_MAX) bad_field(p[1], "id out of range");
  return {false, {static_cast<TokenId>(id)}, {get_string(v[0], p[0])}};
}

template <typename T>
std::vector<std::unique_ptr<T>> parse_list(const json& v, const JsonPath& p,
                                           std::unique_ptr<T> (*parse)(const json&,
                                                                       const JsonPath&)) {
  if (!v.is_array()) bad_field(p, "expected an array");
  std::vector<std::unique_ptr<T>> items;
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto item = parse(v[i], p[i]);
    if (!item) bad_field(p[i], "null inside a Sequence");
    items.push_back(std::move(item));
  }
  return items;
}

[[noreturn]] void unsupported(const JsonPath& p, std::string_view kind, std::string_view type) {
  fail<UnsupportedError>("{}: {} type '{}' is not supported", (p / "type").str(), kind, type);
}

}  // namespace

std::unique_ptr<Normalizer> parse_normalizer(const json& v, const JsonPath& p) {
  if (v.is_null()) return nullptr;
  const std::string type = type_of(v, p);
  using unicode::NormalForm;
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(
        get_bool(require(v, "strip_left", p), p / "strip_left"),
        get_bool(require(v, "strip_right", p), p / "strip_right"));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(
        parse_pattern(require(v, "pattern", p), p / "pattern"),
        get_string(require(v, "content", p), p / "content"));
  }
  if (type == "Prepend") {
    return std::make_unique<PrependNormalizer>(get_string(require(v, "prepend", p), p / "prepend"));
  }
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceNormalizer>();
    seq->items =
        parse_list<Normalizer>(require(v, "normalizers", p), p / "normalizers", parse_normalizer);
    return seq;
  }
  unsupported(p, "normalizer", type);
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& v, const JsonPath& p) {
  if (v.is_null()) return nullptr;
  const std::string type = type_of(v, p);
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(
        parse_pattern(require(v, "pattern", p), p / "pattern"),
        parse_behavior(require(v, "behavior", p), p / "behavior"), opt_bool(v, "invert", false, p));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(opt_bool(v, "add_prefix_space", true, p),
                                                   opt_bool(v, "use_regex", true, p));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(
        parse_char(require(v, "replacement", p), p / "replacement"), parse_prepend_scheme(v, p),
        opt_bool(v, "split", true, p));
  }
  if (type == "Digits") {
    const bool individual = opt_bool(v, "individual_digits", false, p);
    return std::make_unique<CharClassPreTokenizer>(
        unicode::is_numeric, individual ? Behavior::Isolated : Behavior::Contiguous);
  }
  if (type == "Punctuation") {
    Behavior b = Behavior::Isolated;
    if (auto it = v.find("behavior"); it != v.end() && !it->is_null()) {
      b = parse_behavior(*it, p / "behavior");
    }
    return std::make_unique<CharClassPreTokenizer>(unicode::is_punctuation, b);
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<CharClassPreTokenizer>(unicode::is_whitespace, Behavior::Removed);
  }
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "Sequence") {
    auto seq = std::make_unique<SequencePreTokenizer>();
    seq->items = parse_list<PreTokenizer>(require(v, "pretokenizers", p), p / "pretokenizers",
                                          parse_pre_tokenizer);
    return seq;
  }
  unsupported(p, "pre_tokenizer", type);
}

std::unique_ptr<Decoder> parse_decoder(const json& v, const JsonPath& p) {
  if (v.is_null()) return nullptr;
  const std::string type = type_of(v, p);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto count = [&](const char* key) {
      const std::int64_t n = get_int(require(v, key, p), p / key);
      if (n < 0) bad_field(p / key, "must be >= 0");
      return static_cast<std::size_t>(n);
    };
    return std::make_unique<StripDecoder>(parse_char(require(v, "content", p), p / "content"),
                                          count("start"), count("stop"));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(parse_pattern(require(v, "pattern", p), p / "pattern"),
                                            get_string(require(v, "content", p), p / "content"));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspaceDecoder>(
        parse_char(require(v, "replacement", p), p / "replacement"), parse_prepend_scheme(v, p));
  }
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceDecoder>();
    seq->items = parse_list<Decoder>(require(v, "decoders", p), p / "decoders", parse_decoder);
    return seq;
  }
  unsupported(p, "decoder", type);
}

std::unique_ptr<PostProcessor> parse_post_processor(const json& v, const JsonPath& p) {
  if (v.is_null()) return nullptr;
  const std::string type = type_of(v, p);
  if (type == "ByteLevel") return std::make_unique<NoopProcessor>();
  if (type == "TemplateProcessing") {
    auto tp = std::make_unique<TemplateProcessor>();
    const json& specials = v.contains("special_tokens") ? v["special_tokens"] : json::object();
    const json& single = require(v, "single", p);
    if (!single.is_array()) bad_field(p / "single", "expected an array of pieces");
    for (std::size_t i = 0; i < single.size(); ++i) {
      const JsonPath ip = (p / "single")[i];
      const json& piece = single[i];
      if (piece.is_object() && piece.contains("Sequence")) {
        const std::string id =
            get_string(require(piece["Sequence"], "id", ip / "Sequence"), ip / "Sequence" / "id");
        if (id != "A") {
          fail<UnsupportedError>("{}: sequence '{}' in a single-sequence template",
                                 (ip / "Sequence" / "id").str(), id);
        }
        tp->single.push_back({true, {}, {}});
      } else if (piece.is_object() && piece.contains("SpecialToken")) {
        const std::string name = get_string(
            require(piece["SpecialToken"], "id", ip / "SpecialToken"), ip / "SpecialToken" / "id");
        const JsonPath sp = p / "special_tokens" / name;
        if (!specials.is_object() || !specials.contains(name)) bad_field(sp, "missing");
        const json& st = specials[name];
        SpecialPiece out;
        const json& ids = require(st, "ids", sp);
        const json& tokens = require(st, "tokens", sp);
        if (!ids.is_array() || !tokens.is_array() || ids.size() != tokens.size()) {
          bad_field(sp, "ids and tokens must be arrays of the same length");
        }
        for (std::size_t k = 0; k < ids.size(); ++k) {
          const std::int64_t id = get_int(ids[k], (sp / "ids")[k]);
          if (id < 0 || id > INT32_MAX) bad_field((sp / "ids")[k], "id out of range");
          out.ids.push_back(static_cast<TokenId>(id));
          out.tokens.push_back(get_string(tokens[k], (sp / "tokens")[k]));
        }
        tp->single.push_back(std::move(out));
      } else {
        bad_field(ip, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    return tp;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto tp = std::make_unique<TemplateProcessor>();
    tp->single.push_back(parse_token_pair(require(v, "cls", p), p / "cls"));
    tp->single.push_back({true, {}, {}});
    tp->single.push_back(parse_token_pair(require(v, "sep", p), p / "sep"));
    return tp;
  }
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceProcessor>();
    seq->items = parse_list<PostProcessor>(require(v, "processors", p), p / "processors",
                                           parse_post_processor);
    return seq;
  }
  unsupported(p, "post_processor", type);
}

}  // namespace ominix::text::detail
