// ref: huggingface/tokenizers@3ba8ad0 tokenizers/src/models/bpe/{model.rs,word.rs,serialization.rs}
#include "bpe.h"

#include <algorithm>
#include <bit>

#include "unicode.h"

namespace ominix::text::detail {

void MergeMap::reserve(std::size_t n) {
  std::size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  keys_.assign(cap, kEmpty);
  values_.assign(cap, Value{});
  mask_ = cap - 1;
  shift_ = 64 - std::countr_zero(cap);
  size_ = 0;
}

void MergeMap::insert(TokenId a, TokenId b, Value v) {
  if ((size_ + 1) * 2 > keys_.size()) {
    std::vector<std::uint64_t> old_keys = std::move(keys_);
    std::vector<Value> old_values = std::move(values_);
    reserve(std::max<std::size_t>(16, size_ + 1) * 2);
    for (std::size_t i = 0; i < old_keys.size(); ++i) {
      if (old_keys[i] != kEmpty) {
        insert(static_cast<TokenId>(old_keys[i] >> 32),
               static_cast<TokenId>(old_keys[i] & 0xFFFFFFFFu), old_values[i]);
      }
    }
  }
  const std::uint64_t key = pack(a, b);
  std::size_t i = slot(key);
  while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
  if (keys_[i] == kEmpty) ++size_;
  keys_[i] = key;
  values_[i] = v;
}

const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      unicode::append_utf8(t[b], cp);
    }
    return t;
  }();
  return table;
}

int byte_level_byte(char32_t cp) {
  static const std::array<int, 324> inverse = [] {
    std::array<int, 324> inv;
    inv.fill(-1);
    const auto& chars = byte_level_chars();
    for (int b = 0; b < 256; ++b) {
      std::size_t i = 0;
      inv[unicode::next_code_point(chars[b], i)] = b;
    }
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

std::string byte_level_encode(std::string_view bytes) {
  const auto& chars = byte_level_chars();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += chars[static_cast<unsigned char>(c)];
  return out;
}

std::unique_ptr<Bpe> Bpe::from_json(const json& model, const JsonPath& p) {
  auto bpe = std::make_unique<Bpe>();
  if (auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 0.0) {
      fail<UnsupportedError>("{}: BPE dropout is not supported (must be null)",
                             (p / "dropout").str());
    }
  }
  const json& vocab = require(model, "vocab", p);
  if (!vocab.is_object()) bad_field(p / "vocab", "expected an object of token -> id");
  bpe->vocab_.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    const std::int64_t id = get_int(id_json, p / "vocab" / token);
    if (id < 0 || id >= (1 << 26)) bad_field(p / "vocab" / token, "id out of range");
    bpe->vocab_[token] = static_cast<TokenId>(id);
  }
  bpe->index_vocab();

  auto opt_str = [&](const char* key) -> std::optional<std::string> {
    auto it = model.find(key);
    if (it == model.end() || it->is_null()) return std::nullopt;
    return get_string(*it, p / key);
  };
  bpe->unk_token_ = opt_str("unk_token");
  bpe->continuing_subword_prefix_ = opt_str("continuing_subword_prefix");
  bpe->end_of_word_suffix_ = opt_str("end_of_word_suffix");
  bpe->fuse_unk_ = opt_bool(model, "fuse_unk", false, p);
  bpe->byte_fallback_ = opt_bool(model, "byte_fallback", false, p);
  bpe->ignore_merges_ = opt_bool(model, "ignore_merges", false, p);

  const json& merges = require(model, "merges", p);
  if (!merges.is_array()) bad_field(p / "merges", "expected an array");
  bpe->merges_.reserve(merges.size());
  const std::size_t prefix_len =
      bpe->continuing_subword_prefix_ ? bpe->continuing_subword_prefix_->size() : 0;
  std::uint32_t rank = 0;
  std::string merged;
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    const JsonPath mp = (p / "merges")[i];
    std::string a, b;
    if (m.is_string()) {
      const std::string& line = m.get_ref<const std::string&>();
      if (line.starts_with("#version")) continue;
      const auto sp = line.find(' ');
      if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos) {
        bad_field(mp, "a merge must be two tokens separated by one space");
      }
      a = line.substr(0, sp);
      b = line.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2) {
      a = get_string(m[0], mp[0]);
      b = get_string(m[1], mp[1]);
    } else {
      bad_field(mp, "a merge must be \"a b\" or [\"a\", \"b\"]");
    }
    const auto ia = bpe->vocab_.find(a);
    const auto ib = bpe->vocab_.find(b);
    if (ia == bpe->vocab_.end()) bad_field(mp, fmt::format("token '{}' is not in model.vocab", a));
    if (ib == bpe->vocab_.end()) bad_field(mp, fmt::format("token '{}' is not in model.vocab", b));
    if (b.size() < prefix_len) bad_field(mp, "token shorter than continuing_subword_prefix");
    merged.assign(a);
    merged.append(b, prefix_len);
    const auto im = bpe->vocab_.find(merged);
    if (im == bpe->vocab_.end()) {
      bad_field(mp, fmt::format("merged token '{}' is not in model.vocab", merged));
    }
    bpe->merges_.insert(ia->second, ib->second, {rank++, im->second});
  }

  bpe->index_bytes();
  return bpe;
}

std::unique_ptr<Bpe> Bpe::from_parts(Vocab vocab, const std::vector<BpeMerge>& merges,
                                     BpeOptions options) {
  auto bpe = std::make_unique<Bpe>();
  bpe->vocab_ = std::move(vocab);
  bpe->index_vocab();
  bpe->unk_token_ = std::move(options.unk_token);
  bpe->continuing_subword_prefix_ = std::move(options.continuing_subword_prefix);
  bpe->end_of_word_suffix_ = std::move(options.end_of_word_suffix);
  bpe->fuse_unk_ = options.fuse_unk;
  bpe->byte_fallback_ = options.byte_fallback;
  bpe->ignore_merges_ = options.ignore_merges;
  bpe->merges_.reserve(merges.size());
  std::uint32_t rank = 0;
  for (const auto& m : merges) bpe->merges_.insert(m.a, m.b, {rank++, m.merged});
  bpe->index_bytes();
  return bpe;
}

void Bpe::index_vocab() {
  TokenId max_id = -1;
  for (const auto& [token, id] : vocab_) max_id = std::max(max_id, id);
  vocab_r_.assign(static_cast<std::size_t>(max_id + 1), std::string());
  has_id_.assign(vocab_r_.size(), false);
  for (const auto& [token, id] : vocab_) {
    vocab_r_[id] = token;
    has_id_[id] = true;
  }
}

void Bpe::index_bytes() {
  const auto& chars = byte_level_chars();
  byte_ids_complete_ = !continuing_subword_prefix_ && !end_of_word_suffix_;
  for (int byte = 0; byte < 256; ++byte) {
    auto it = vocab_.find(chars[byte]);
    if (it == vocab_.end()) {
      byte_ids_complete_ = false;
    } else {
      byte_ids_[byte] = it->second;
    }
    auto fb = vocab_.find(fmt::format("<0x{:02X}>", byte));
    fallback_ids_[byte] = fb == vocab_.end() ? -1 : fb->second;
  }
}

std::optional<TokenId> Bpe::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void Bpe::tokenize(std::string_view word, bool byte_level, std::vector<TokenId>& ids) const {
  if (word.empty()) return;
  const bool cacheable = word.size() < kMaxCachedWord;
  auto& cache = cache_[byte_level ? 1 : 0];
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache.find(word); it != cache.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t first = ids.size();
  compute(word, byte_level, ids);
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache.size() < kCacheCapacity) {
      cache.emplace(std::string(word), std::vector<TokenId>(ids.begin() + first, ids.end()));
    }
  }
}

void Bpe::compute(std::string_view word, bool byte_level, std::vector<TokenId>& out) const {
  if (byte_level && !byte_ids_complete_) {
    compute(byte_level_encode(word), false, out);
    return;
  }
  if (ignore_merges_) {
    const std::string spelled = byte_level ? byte_level_encode(word) : std::string();
    if (auto it = vocab_.find(byte_level ? std::string_view(spelled) : word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  if (byte_level) {
    for (std::size_t i = 0; i < word.size(); ++i) {
      const auto n = static_cast<std::int32_t>(i);
      symbols.push_back({byte_ids_[static_cast<unsigned char>(word[i])], n - 1,
                         i + 1 < word.size() ? n + 1 : -1, 1});
    }
  } else {
    split_chars(word, symbols);
  }
  merge_all(symbols);
  for (const Symbol& s : symbols) {
    if (s.len != 0) out.push_back(s.c);
  }
}

void Bpe::split_chars(std::string_view w, std::vector<Symbol>& symbols) const {
  auto add = [&](TokenId c, std::size_t len) {
    const auto n = static_cast<std::int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back({c, n - 1, -1, static_cast<std::uint32_t>(len)});
  };
  // A pending unk: (id, byte length), when unk_len > 0.
  TokenId unk = -1;
  std::size_t unk_len = 0;
  auto unk_id = [&]() -> TokenId {
    auto it = vocab_.find(*unk_token_);
    if (it == vocab_.end()) {
      fail<InvalidArgument>("unk_token '{}' is not in the vocabulary", *unk_token_);
    }
    return it->second;
  };
  std::string s;
  std::size_t i = 0;
  while (i < w.size()) {
    const std::size_t len =
        std::min(unicode::utf8_len(static_cast<unsigned char>(w[i])), w.size() - i);
    const bool is_first = i == 0;
    const bool is_last = i + len >= w.size();
    std::string_view piece = w.substr(i, len);
    i += len;
    if ((!is_first && continuing_subword_prefix_) || (is_last && end_of_word_suffix_)) {
      s.clear();
      if (!is_first && continuing_subword_prefix_) s += *continuing_subword_prefix_;
      s += piece;
      if (is_last && end_of_word_suffix_) s += *end_of_word_suffix_;
      piece = s;
    }
    if (auto it = vocab_.find(piece); it != vocab_.end()) {
      if (unk_len) {
        add(unk, unk_len);
        unk_len = 0;
      }
      add(it->second, len);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : piece) all = all && fallback_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : piece) add(fallback_ids_[static_cast<unsigned char>(c)], 1);
        continue;
      }
    }
    if (unk_token_) {
      if (unk_len && fuse_unk_) {
        unk_len += len;
      } else {
        if (unk_len) add(unk, unk_len);
        unk = unk_id();
        unk_len = len;
      }
    }
  }
  if (unk_len) add(unk, unk_len);
}

void Bpe::merge_all(std::vector<Symbol>& symbols) const {
  struct Merge {
    std::uint32_t rank;
    std::int32_t pos;
    TokenId id;
  };
  // Lowest rank first, then leftmost position (word.rs `impl Ord for Merge`).
  auto later = [](const Merge& x, const Merge& y) {
    return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
  };
  std::vector<Merge> queue;
  queue.reserve(symbols.size());
  for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const auto* m = merges_.find(symbols[i].c, symbols[i + 1].c)) {
      queue.push_back({m->rank, static_cast<std::int32_t>(i), m->id});
    }
  }
  std::make_heap(queue.begin(), queue.end(), later);
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), later);
    const Merge top = queue.back();
    queue.pop_back();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const std::int32_t next_pos = cur.next;
    const Symbol right = symbols[next_pos];
    const auto* target = merges_.find(cur.c, right.c);
    if (!target || target->id != top.id) continue;  // an expired entry
    cur.c = top.id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next > -1 && static_cast<std::size_t>(right.next) < symbols.size()) {
      symbols[right.next].prev = top.pos;
    }
    if (cur.prev >= 0) {
      if (const auto* m = merges_.find(symbols[cur.prev].c, cur.c)) {
        queue.push_back({m->rank, cur.prev, m->id});
        std::push_heap(queue.begin(), queue.end(), later);
      }
    }
    if (cur.next >= 0 && static_cast<std::size_t>(cur.next) < symbols.size()) {
      if (const auto* m = merges_.find(cur.c, symbols[cur.next].c)) {
        queue.push_back({m->rank, top.pos, m->id});
        std::push_heap(queue.begin(), queue.end(), later);
      }
    }
  }
}

}  // namespace ominix::text::detail
