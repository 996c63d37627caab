// Tokenizer: tokenizer.json loading, added tokens, the encode pipeline, decode and streaming.
// ref: huggingface/tokenizers@3ba8ad0 tokenizers/src/tokenizer/{mod.rs,added_vocabulary.rs,
// serialization.rs}.
#include "ominix/text/tokenizer.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "bpe.h"
#include "json_util.h"
#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "pipeline.h"
#include "unicode.h"

namespace ominix::text {

using detail::json;
using detail::JsonPath;

namespace {

struct AddedToken {
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
  bool operator==(const AddedToken&) const = default;
};

/// Leftmost-longest matcher over the added tokens (what HF builds with Aho-Corasick).
class AddedMatcher {
 public:
  struct Match {
    std::size_t start, end;
    TokenId id;
  };
  void add(std::string pattern, TokenId id) {
    if (pattern.empty()) return;
    const auto first = static_cast<unsigned char>(pattern[0]);
    by_first_[first].push_back({std::move(pattern), id});
    any_ = true;
  }
  void finish() {
    for (auto& list : by_first_) {
      std::stable_sort(list.begin(), list.end(), [](const Entry& a, const Entry& b) {
        return a.pattern.size() > b.pattern.size();
      });
    }
  }
  bool empty() const { return !any_; }
  void find(std::string_view s, std::vector<Match>& out) const {
    out.clear();
    std::size_t i = 0;
    while (i < s.size()) {
      const auto& list = by_first_[static_cast<unsigned char>(s[i])];
      bool found = false;
      for (const Entry& e : list) {
        if (s.compare(i, e.pattern.size(), e.pattern) == 0) {
          out.push_back({i, i + e.pattern.size(), e.id});
          i += e.pattern.size();
          found = true;
          break;
        }
      }
      if (!found) ++i;
    }
  }

 private:
  struct Entry {
    std::string pattern;
    TokenId id;
  };
  std::array<std::vector<Entry>, 256> by_first_;
  bool any_ = false;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<IoError>("cannot open {}", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail<IoError>("cannot read {}", path.string());
  return std::move(ss).str();
}

json parse_json(std::string_view text, std::string_view source) {
  return io::parse_json(text, std::string(source));
}

// Rust regex `\w$` / `^\w` / `\s*$` / `^\s*` of added_vocabulary.rs.
bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t b = s.size() - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  return unicode::is_word_char(unicode::next_code_point(s, b));
}
bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t i = 0;
  return unicode::is_word_char(unicode::next_code_point(s, i));
}
std::size_t space_leftmost_at_end(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0) {
    std::size_t b = end - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    std::size_t j = b;
    if (!unicode::is_whitespace(unicode::next_code_point(s, j))) break;
    end = b;
  }
  return end;
}
std::size_t space_rightmost_at_start(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t j = i;
    if (!unicode::is_whitespace(unicode::next_code_point(s, j))) break;
    i = j;
  }
  return i;
}

std::optional<std::string> config_token(const json& cfg, const char* key, const JsonPath& p) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object())
    return detail::get_string(detail::require(*it, "content", p / key), p / key / "content");
  detail::bad_field(p / key, "expected a string or an object with \"content\"");
}

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  std::unique_ptr<detail::Bpe> model;
  std::unique_ptr<detail::Normalizer> normalizer;
  std::unique_ptr<detail::PreTokenizer> pre_tokenizer;
  std::unique_ptr<detail::PostProcessor> post_processor;
  std::unique_ptr<detail::Decoder> decoder;

  detail::Vocab added_map;                              // content -> id
  std::unordered_map<TokenId, AddedToken> added_by_id;  // HF added_tokens_map_r
  std::unordered_map<TokenId, std::string> normalized_cache;
  std::unordered_set<std::string> special_set;
  AddedMatcher raw_matcher, normalized_matcher;

  // Per id: the string decode uses and whether skip_special_tokens drops it.
  std::vector<std::string> id_string;
  std::vector<std::uint8_t> id_flags;  // bit 0: known, bit 1: special
  std::optional<std::string> bos, eos;

  void add_tokens(std::vector<AddedToken> tokens);
  void split_added(std::string_view s, const AddedMatcher& matcher,
                   std::vector<std::tuple<std::size_t, std::size_t, TokenId>>& out) const;
  void encode(std::string_view text, Encoding& enc, bool want_tokens) const;
};

void Tokenizer::Impl::add_tokens(std::vector<AddedToken> tokens) {
  const auto vocab_size = static_cast<TokenId>(model->size());
  TokenId next_id = vocab_size;
  for (AddedToken& token : tokens) {
    if (token.content.empty()) continue;
    if (auto it = added_map.find(token.content); it != added_map.end()) {
      if (auto r = added_by_id.find(it->second); r != added_by_id.end() && r->second == token)
        continue;
    }
    TokenId id;
    if (auto it = added_map.find(token.content); it != added_map.end()) {
      id = it->second;
    } else if (auto mid = model->token_to_id(token.content)) {
      id = *mid;
    } else {
      id = next_id++;
    }
    if (token.normalized && normalizer) {
      std::string normed = token.content;
      bool at_origin = true;
      normalizer->normalize(normed, at_origin);
      if (normed != token.content) normalized_cache[id] = std::move(normed);
    }
    added_map[token.content] = id;
    if (token.special) special_set.insert(token.content);
    added_by_id[id] = std::move(token);
  }
  for (const auto& [id, token] : added_by_id) {
    if (token.normalized) {
      auto it = normalized_cache.find(id);
      normalized_matcher.add(it != normalized_cache.end() ? it->second : token.content, id);
    } else {
      raw_matcher.add(token.content, id);
    }
  }
  raw_matcher.finish();
  normalized_matcher.finish();

  std::size_t bound = model->id_bound();
  for (const auto& [id, token] : added_by_id)
    bound = std::max(bound, static_cast<std::size_t>(id) + 1);
  id_string.assign(bound, {});
  id_flags.assign(bound, 0);
  for (std::size_t id = 0; id < model->id_bound(); ++id) {
    if (const std::string* s = model->id_to_token(static_cast<TokenId>(id))) {
      id_string[id] = *s;
      id_flags[id] = 1;
    }
  }
  for (const auto& [id, token] : added_by_id) {
    auto it = normalized_cache.find(id);
    id_string[id] = it != normalized_cache.end() ? it->second : token.content;
    id_flags[id] = 1;
  }
  for (std::size_t id = 0; id < bound; ++id) {
    if ((id_flags[id] & 1) && special_set.contains(id_string[id])) id_flags[id] |= 2;
  }
}

// added_vocabulary.rs AddedVocabulary::find_matches.
void Tokenizer::Impl::split_added(
    std::string_view s, const AddedMatcher& matcher,
    std::vector<std::tuple<std::size_t, std::size_t, TokenId>>& out) const {
  out.clear();
  if (s.empty()) return;
  if (matcher.empty()) {
    out.emplace_back(0, s.size(), -1);
    return;
  }
  thread_local std::vector<AddedMatcher::Match> matches;
  matcher.find(s, matches);
  std::size_t start_offset = 0;
  for (const auto& m : matches) {
    std::size_t start = m.start, stop = m.end;
    const AddedToken& token = added_by_id.at(m.id);
    if (token.single_word) {
      const bool start_space = start == 0 || !ends_with_word(s.substr(0, start));
      const bool stop_space = stop == s.size() || !starts_with_word(s.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) start = std::max(space_leftmost_at_end(s.substr(0, start)), start_offset);
    if (token.rstrip) stop += space_rightmost_at_start(s.substr(stop));
    if (start_offset < start) out.emplace_back(start_offset, start, -1);
    out.emplace_back(start, stop, m.id);
    start_offset = stop;
  }
  if (start_offset != s.size()) out.emplace_back(start_offset, s.size(), -1);
}

void Tokenizer::Impl::encode(std::string_view text, Encoding& enc, bool want_tokens) const {
  if (const auto bad = unicode::find_invalid_utf8(text); bad != std::string_view::npos) {
    fail<InvalidArgument>("text to encode is not valid UTF-8 (byte offset {})", bad);
  }
  auto emit_added = [&](TokenId id, std::string_view s) {
    enc.ids.push_back(id);
    if (want_tokens) enc.tokens.emplace_back(s);
  };
  std::vector<std::tuple<std::size_t, std::size_t, TokenId>> outer, inner;
  std::vector<detail::Piece> pieces;
  split_added(text, raw_matcher, outer);
  for (const auto& [start, stop, id] : outer) {
    const std::string_view part = text.substr(start, stop - start);
    if (id >= 0) {
      emit_added(id, part);
      continue;
    }
    std::string normalized(part);
    bool at_origin = start == 0;
    if (normalizer) normalizer->normalize(normalized, at_origin);
    split_added(normalized, normalized_matcher, inner);
    for (const auto& [b, e, inner_id] : inner) {
      const std::string_view sub = std::string_view(normalized).substr(b, e - b);
      if (inner_id >= 0) {
        emit_added(inner_id, sub);
        continue;
      }
      if (sub.empty()) continue;
      pieces.clear();
      pieces.push_back({std::string(sub), false, at_origin && b == 0});
      if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
      for (const detail::Piece& piece : pieces) {
        const std::size_t first = enc.ids.size();
        model->tokenize(piece.text, piece.byte_level, enc.ids);
        if (want_tokens) {
          for (std::size_t k = first; k < enc.ids.size(); ++k)
            enc.tokens.push_back(*model->id_to_token(enc.ids[k]));
        }
      }
    }
  }
}

Tokenizer Tokenizer::from_json(std::string_view text, std::string_view source) {
  return detail::build_tokenizer(parse_json(text, source), source, nullptr);
}

Tokenizer detail::build_tokenizer(const json& root, std::string_view source,
                                  std::unique_ptr<Bpe> model) {
  const JsonPath p{std::string(source), ""};
  if (!root.is_object()) detail::bad_field(p, "expected a JSON object");
  auto impl = std::make_shared<Tokenizer::Impl>();
  impl->source = source;
  if (auto it = root.find("version"); it != root.end() && !it->is_null()) {
    const std::string v = detail::get_string(*it, p / "version");
    if (v != "1.0")
      fail<UnsupportedError>("{}: unknown tokenizer version '{}'", (p / "version").str(), v);
  }
  for (const char* key : {"truncation", "padding"}) {
    if (auto it = root.find(key); it != root.end() && !it->is_null()) {
      fail<UnsupportedError>("{}: {} is not supported (must be null)", (p / key).str(), key);
    }
  }
  if (model) {
    impl->model = std::move(model);
  } else {
    const json& m = detail::require(root, "model", p);
    if (!m.is_object()) detail::bad_field(p / "model", "expected an object");
    const std::string type = detail::opt_string(m, "type", "BPE", p / "model");
    if (type != "BPE") {
      fail<UnsupportedError>("{}: model type '{}' is not supported (only BPE)",
                             (p / "model" / "type").str(), type);
    }
    impl->model = detail::Bpe::from_json(m, p / "model");
  }
  auto component = [&](const char* key) -> const json& {
    static const json null_json;
    auto it = root.find(key);
    return it == root.end() ? null_json : *it;
  };
  impl->normalizer = detail::parse_normalizer(component("normalizer"), p / "normalizer");
  impl->pre_tokenizer =
      detail::parse_pre_tokenizer(component("pre_tokenizer"), p / "pre_tokenizer");
  impl->post_processor =
      detail::parse_post_processor(component("post_processor"), p / "post_processor");
  impl->decoder = detail::parse_decoder(component("decoder"), p / "decoder");

  std::vector<AddedToken> added;
  if (const json& list = component("added_tokens"); !list.is_null()) {
    if (!list.is_array()) detail::bad_field(p / "added_tokens", "expected an array");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const JsonPath ap = (p / "added_tokens")[i];
      const json& t = list[i];
      if (!t.is_object()) detail::bad_field(ap, "expected an object");
      detail::get_int(detail::require(t, "id", ap), ap / "id");
      AddedToken token;
      token.content = detail::get_string(detail::require(t, "content", ap), ap / "content");
      if (unicode::find_invalid_utf8(token.content) != std::string::npos)
        detail::bad_field(ap / "content", "invalid UTF-8");
      token.special = detail::opt_bool(t, "special", false, ap);
      token.single_word = detail::opt_bool(t, "single_word", false, ap);
      token.lstrip = detail::opt_bool(t, "lstrip", false, ap);
      token.rstrip = detail::opt_bool(t, "rstrip", false, ap);
      token.normalized = detail::opt_bool(t, "normalized", !token.special, ap);
      added.push_back(std::move(token));
    }
  }
  impl->add_tokens(std::move(added));
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  return from_json(read_file(tokenizer_json), tokenizer_json.string());
}

Tokenizer Tokenizer::from_dir(const std::filesystem::path& dir) {
  const auto file = dir / "tokenizer.json";
  if (!std::filesystem::exists(file)) {
    fail<IoError>("{} not found (a model directory needs tokenizer.json)", file.string());
  }
  Tokenizer tok = from_file(file);
  const auto cfg_file = dir / "tokenizer_config.json";
  if (std::filesystem::exists(cfg_file)) {
    const json cfg = parse_json(read_file(cfg_file), cfg_file.string());
    const JsonPath p{cfg_file.string(), ""};
    if (!cfg.is_object()) detail::bad_field(p, "expected a JSON object");
    auto impl = std::const_pointer_cast<Impl>(tok.impl_);
    impl->bos = config_token(cfg, "bos_token", p);
    impl->eos = config_token(cfg, "eos_token", p);
  }
  return tok;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  Encoding enc;
  impl_->encode(text, enc, false);
  if (impl_->post_processor && add_special_tokens) {
    impl_->post_processor->process(enc, add_special_tokens);
  }
  return std::move(enc.ids);
}

Encoding Tokenizer::encode_with_tokens(std::string_view text, bool add_special_tokens) const {
  Encoding enc;
  impl_->encode(text, enc, true);
  if (impl_->post_processor) impl_->post_processor->process(enc, add_special_tokens);
  return enc;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const TokenId id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= im.id_flags.size()) continue;
    const std::uint8_t flags = im.id_flags[id];
    if (!(flags & 1) || (skip_special_tokens && (flags & 2))) continue;
    tokens.push_back(im.id_string[id]);
  }
  std::string out;
  if (im.decoder) {
    im.decoder->decode_chain(tokens);
    for (const auto& t : tokens) out += t;
  } else {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
  }
  return out;
}

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_map.find(token); it != impl_->added_map.end()) return it->second;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_flags.size() ||
      !(impl_->id_flags[id] & 1)) {
    return std::nullopt;
  }
  return impl_->id_string[id];
}

bool Tokenizer::is_special(TokenId id) const {
  return id >= 0 && static_cast<std::size_t>(id) < impl_->id_flags.size() &&
         (impl_->id_flags[id] & 2);
}

std::size_t Tokenizer::vocab_size() const {
  return impl_->id_flags.size();
}
std::optional<std::string> Tokenizer::bos_token() const {
  return impl_->bos;
}
std::optional<std::string> Tokenizer::eos_token() const {
  return impl_->eos;
}

// ---------------------------------------------------------------------------------------------
// Streaming: decode a window that starts at the last "clean" token, which serves as context so
// that first-token rules (Strip start, Metaspace) fall on it, and emit what follows its text.

StreamingDetokenizer::StreamingDetokenizer(Tokenizer tokenizer, bool skip_special_tokens)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special_tokens) {}

std::string StreamingDetokenizer::window_text() const {
  std::string text = tokenizer_.decode(window_, skip_special_);
  return text.size() >= context_len_ ? text.substr(context_len_) : std::string();
}

std::string StreamingDetokenizer::put(TokenId id) {
  // decode() drops unknown and skipped ids before the decoders run: they change nothing (and must
  // not close a ByteFallback group).
  const auto token = tokenizer_.id_to_token(id);
  if (!token || (skip_special_ && tokenizer_.is_special(id))) return {};
  window_.push_back(id);
  const std::string text = window_text();
  // A ByteFallback group decodes as a whole (valid UTF-8, or one U+FFFD per byte): hold it until
  // a token that is not <0xXX> closes it. A trailing U+FFFD may be an incomplete character.
  const bool byte_token =
      token && token->size() == 6 && token->starts_with("<0x") && token->ends_with('>');
  std::size_t stable = text.size();
  if (byte_token) {
    stable = emitted_;
  } else if (text.ends_with("\xEF\xBF\xBD")) {
    stable = std::max(emitted_, text.size() - 3);  // text before it is final
  }
  // Characters a Strip decoder's `stop` may still remove.
  for (std::size_t k = tokenizer_.impl_->decoder ? tokenizer_.impl_->decoder->unstable_suffix() : 0;
       k > 0 && stable > emitted_; --k) {
    do --stable;
    while (stable > emitted_ && (static_cast<unsigned char>(text[stable]) & 0xC0) == 0x80);
  }
  std::string out = stable > emitted_ ? text.substr(emitted_, stable - emitted_) : std::string();
  emitted_ = std::max(emitted_, stable);

  // Advance the window when everything is out and `id` can serve as the next context.
  if (emitted_ == text.size() && !token->empty() && !byte_token) {
    window_.assign(1, id);
    context_len_ = tokenizer_.decode(window_, skip_special_).size();
    emitted_ = 0;
  }
  return out;
}

std::string StreamingDetokenizer::finish() {
  const std::string text = window_text();
  std::string out = text.size() > emitted_ ? text.substr(emitted_) : std::string();
  window_.clear();
  context_len_ = 0;
  emitted_ = 0;
  return out;
}

}  // namespace ominix::text
