// The BPE model of HF `tokenizers` (models/bpe): vocab, ranked merges, byte fallback, unk.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "json_util.h"
#include "ominix/text/tokenizer.h"

namespace ominix::text::detail {

/// Hash for heterogeneous string lookup (no std::string built to look up a string_view).
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

/// Open-addressing map (a, b) -> (rank, merged id); the BPE loop's hottest lookup.
class MergeMap {
 public:
  struct Value {
    std::uint32_t rank;
    TokenId id;
  };
  void reserve(std::size_t n);
  /// Inserts or overwrites (a later duplicate merge wins, as in HF's HashMap collect).
  void insert(TokenId a, TokenId b, Value v);
  const Value* find(TokenId a, TokenId b) const {
    const std::uint64_t key = pack(a, b);
    for (std::size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }
  std::size_t size() const { return size_; }

 private:
  static constexpr std::uint64_t kEmpty = ~0ull;
  static std::uint64_t pack(TokenId a, TokenId b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
           static_cast<std::uint32_t>(b);
  }
  std::size_t slot(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
  }
  std::vector<std::uint64_t> keys_;
  std::vector<Value> values_;
  std::size_t mask_ = 0, size_ = 0;
  int shift_ = 64;
};

/// The scalar fields of a BPE "model" object.
struct BpeOptions {
  std::optional<std::string> unk_token, continuing_subword_prefix, end_of_word_suffix;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
};

/// One merge: the pair of token ids and the id of their concatenation.
struct BpeMerge {
  TokenId a, b, merged;
};

class Bpe {
 public:
  /// Parses the "model" object; `p` names it in errors.
  static std::unique_ptr<Bpe> from_json(const json& model, const JsonPath& p);
  /// The same model from its parts, for sources whose vocabulary is not JSON (GGUF): `vocab`
  /// token -> id (ids below 2^26), merges in rank order, their ids already checked by the caller.
  static std::unique_ptr<Bpe> from_parts(Vocab vocab, const std::vector<BpeMerge>& merges,
                                         BpeOptions options);

  /// Appends the ids of one pre-tokenized word. With `byte_level`, `word` holds raw bytes that
  /// stand for their GPT-2 byte-to-unicode characters (what the ByteLevel pre-tokenizer produces).
  void tokenize(std::string_view word, bool byte_level, std::vector<TokenId>& ids) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  /// The token string of `id`, or nullptr.
  const std::string* id_to_token(TokenId id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= vocab_r_.size() || !has_id_[id]) return nullptr;
    return &vocab_r_[id];
  }
  /// Number of tokens in the vocabulary (HF's get_vocab_size).
  std::size_t size() const { return vocab_.size(); }
  /// One past the largest id.
  std::size_t id_bound() const { return vocab_r_.size(); }

 private:
  struct Symbol {
    TokenId c;
    std::int32_t prev, next;
    std::uint32_t len;
  };
  void compute(std::string_view word, bool byte_level, std::vector<TokenId>& out) const;
  void split_chars(std::string_view word, std::vector<Symbol>& symbols) const;
  void merge_all(std::vector<Symbol>& symbols) const;
  // vocab_r_ and has_id_ from vocab_; then the byte tables (after the options are set).
  void index_vocab();
  void index_bytes();

  Vocab vocab_;
  std::vector<std::string> vocab_r_;
  std::vector<bool> has_id_;
  MergeMap merges_;
  std::optional<std::string> unk_token_;
  std::optional<std::string> continuing_subword_prefix_;
  std::optional<std::string> end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  // Byte-level fast path: the id of each byte's GPT-2 character, when all 256 are in the vocab.
  bool byte_ids_complete_ = false;
  std::array<TokenId, 256> byte_ids_{};
  // <0xXX> tokens for byte fallback (-1 when absent).
  std::array<TokenId, 256> fallback_ids_{};

  // Word -> ids cache, as HF keeps one (words shorter than kMaxCachedWord bytes).
  static constexpr std::size_t kMaxCachedWord = 256;
  static constexpr std::size_t kCacheCapacity = 1 << 17;
  mutable std::mutex cache_mutex_;
  mutable std::array<
      std::unordered_map<std::string, std::vector<TokenId>, StringHash, std::equal_to<>>, 2>
      cache_;
};

/// The GPT-2 byte -> unicode character table of the ByteLevel components, as UTF-8 strings.
const std::array<std::string, 256>& byte_level_chars();
/// Inverse of byte_level_chars(): code point -> byte, or -1.
int byte_level_byte(char32_t cp);
/// `bytes` spelled with byte_level_chars().
std::string byte_level_encode(std::string_view bytes);

}  // namespace ominix::text::detail
