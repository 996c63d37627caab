// GGUF tokenizers as transformers 5.24 builds them (integrations/gguf/gguf_tokenizer_mapping.py
// gemma_tokenizer + add_gguf_special_tokens, models/gemma/tokenization_gemma.py GemmaTokenizer):
// the vocabulary and merges go straight into the BPE model, the rest of the equivalent
// tokenizer.json (normalizer, pre-tokenizer, post-processor, decoder, added tokens) through the
// same parser as Tokenizer::from_json.
#include "ominix/text/gguf_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bpe.h"
#include "json_util.h"
#include "ominix/base/error.h"

namespace ominix::text {
namespace {

using nlohmann::json;
const std::string kSpace = "\u2581";

/// Bytes of the UTF-8 code point at s[i] (1 where the bytes are malformed).
std::size_t code_point_size(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const std::size_t n = c < 0x80         ? 1
                        : (c >> 5) == 6  ? 2
                        : (c >> 4) == 14 ? 3
                        : (c >> 3) == 30 ? 4
                                         : 1;
  return i + n > s.size() ? 1 : n;
}

/// The code points of a UTF-8 string (one per byte where the bytes are malformed).
std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size(); i += code_point_size(s, i))
    out.emplace_back(s.substr(i, code_point_size(s, i)));
  return out;
}

/// Python's str.isspace for one code point (what `not t.strip()` tests).
bool is_py_space(std::string_view cp) {
  static const std::vector<std::string> kSpaces = {
      "\t",     "\n",     "\v",     "\f",     "\r",     "\x1c",   "\x1d",   "\x1e",
      "\x1f",   " ",      "\u0085", "\u00a0", "\u1680", "\u2000", "\u2001", "\u2002",
      "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a",
      "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"};
  return std::find(kSpaces.begin(), kSpaces.end(), cp) != kSpaces.end();
}

/// The vocabulary as a flat open-addressing table for the merge search, which looks up every
/// prefix and suffix of every token (1.5M lookups for Gemma 3's 262k tokens): tokens of up to 16
/// bytes sit in the slot itself, so a lookup costs about one cache miss where std::unordered_map's
/// buckets and nodes cost several (0.45 s of a 1.4 s load before).
class FlatVocab {
 public:
  explicit FlatVocab(const detail::Vocab& vocab) {
    std::size_t n = 16;
    while (n < vocab.size() * 2) n *= 2;
    slots_.resize(n);
    mask_ = n - 1;
    for (const auto& [token, id] : vocab) {  // keys are unique: no overwrite needed
      const auto h = std::hash<std::string_view>{}(token);
      std::size_t i = h & mask_;
      while (slots_[i].id >= 0) i = (i + 1) & mask_;
      auto& slot = slots_[i];
      slot.hash = h;
      slot.id = id;
      slot.size = static_cast<std::uint32_t>(token.size());
      if (token.size() <= kInline)
        std::copy(token.begin(), token.end(), slot.bytes);
      else
        slot.long_token = &token;
    }
  }
  /// The token's id, or -1.
  int find(std::string_view s) const {
    const auto h = std::hash<std::string_view>{}(s);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const auto& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.hash != h || slot.size != s.size()) continue;
      const std::string_view key = s.size() <= kInline ? std::string_view(slot.bytes, s.size())
                                                       : std::string_view(*slot.long_token);
      if (key == s) return slot.id;
    }
  }

 private:
  static constexpr std::size_t kInline = 16;
  struct Slot {
    std::size_t hash = 0;
    int id = -1;
    std::uint32_t size = 0;
    char bytes[kInline] = {};
    const std::string* long_token = nullptr;
  };
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

/// ref: tokenization_utils_base.py generate_merges with scores -index, for the tokens of
/// order[begin, end) (sorted by index): every split of a token into two vocabulary pieces, best
/// (lowest index) token first, longer left piece first.
std::vector<detail::BpeMerge> merges_of(const FlatVocab& vocab,
                                        const std::vector<std::pair<int, std::string_view>>& order,
                                        std::size_t begin, std::size_t end) {
  std::vector<detail::BpeMerge> merges;
  std::vector<std::size_t> starts;  // byte offset of each code point after the first
  for (std::size_t o = begin; o < end; ++o) {
    const auto& [index, t] = order[o];
    starts.clear();
    for (std::size_t i = code_point_size(t, 0); i < t.size(); i += code_point_size(t, i))
      starts.push_back(i);
    for (auto k = starts.rbegin(); k != starts.rend(); ++k) {
      const int left = vocab.find(t.substr(0, *k));
      if (left < 0) continue;
      if (const int right = vocab.find(t.substr(*k)); right >= 0)
        merges.push_back({left, right, index});
    }
  }
  return merges;
}

/// ref: gemma_tokenizer — a whitespace-only token holding a space is respelled as that many "▁".
std::string respell(const std::string& t) {
  if (t.find(' ') == std::string::npos) return t;
  const auto cps = code_points(t);
  if (!std::all_of(cps.begin(), cps.end(), [](const auto& c) { return is_py_space(c); })) return t;
  std::string out;
  for (std::size_t i = 0; i < cps.size(); ++i) out += kSpace;
  return out;
}

json string_pattern(const std::string& s) {
  return {{"String", s}};
}

json added_token(int id, const std::string& content, bool special) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", special}};
}

/// The code point of a UTF-8 sequence of code_point_size bytes (the byte itself where malformed).
char32_t decode_code_point(std::string_view s) {
  const auto b = [&](std::size_t i) { return char32_t(static_cast<unsigned char>(s[i])); };
  switch (s.size()) {
    case 2:
      return ((b(0) & 0x1f) << 6) | (b(1) & 0x3f);
    case 3:
      return ((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
    case 4:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
    default:
      return b(0);
  }
}

/// True when every character of `t` is one of the GPT-2 byte-to-unicode characters.
bool in_byte_alphabet(std::string_view t) {
  for (std::size_t i = 0; i < t.size(); i += code_point_size(t, i))
    if (detail::byte_level_byte(decode_code_point(t.substr(i, code_point_size(t, i)))) < 0)
      return false;
  return true;
}

// ref: gguf_tokenizer_mapping.py _LLAMA3_SPLIT, _TEKKEN_SPLIT, _GPT4O_SPLIT and
// models/qwen2/tokenization_qwen2.py PRETOKENIZE_REGEX; llama.cpp llama-vocab.cpp
// LLAMA_VOCAB_PRE_TYPE_CHATGLM4 for GLM-4's "glm4" / "chatglm-bpe" (not in transformers' table).
const char* const kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kGlm4Split =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kTekkenSplit =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kGpt4oSplit =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

/// The split regex of a tokenizer.ggml.pre name, or nullptr (GPT-2's own ByteLevel regex).
const char* split_regex(const std::string& pre) {
  static const std::map<std::string, const char*> kSplits = {
      {"llama3", kLlama3Split},       {"llama-v3", kLlama3Split},
      {"llama-bpe", kLlama3Split},    {"falcon3", kLlama3Split},
      {"falcon-h1", kLlama3Split},    {"pixtral", kLlama3Split},
      {"midm-2.0", kLlama3Split},     {"lfm2", kLlama3Split},
      {"jina-v5-nano", kLlama3Split}, {"dbrx", kLlama3Split},
      {"smaug-bpe", kLlama3Split},    {"tekken", kTekkenSplit},
      {"qwen2", kQwen2Split},         {"deepseek-r1-qwen", kQwen2Split},
      {"kormo", kQwen2Split},         {"f2llmv2", kQwen2Split},
      {"megrez", kQwen2Split},        {"gpt-4o", kGpt4oSplit},
      {"llama4", kGpt4oSplit},        {"kanana2", kGpt4oSplit},
      {"talkie", kGpt4oSplit},        {"minimax-m2", kGpt4oSplit},
      {"glm4", kGlm4Split},           {"chatglm-bpe", kGlm4Split}};
  const auto it = kSplits.find(pre);
  return it == kSplits.end() ? nullptr : it->second;
}

/// Post-processor <bos> $A <eos>, each only when the file asks for it.
json post_processor(const io::GgufTokenizerData& data, const std::optional<std::string>& bos,
                    const std::optional<std::string>& eos, bool add_bos_default) {
  json single = json::array(), specials = json::object();
  auto special_piece = [&](const std::string& t, int id) {
    single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
    specials[t] = {{"id", t}, {"ids", json::array({id})}, {"tokens", json::array({t})}};
  };
  if (data.add_bos_token.value_or(add_bos_default) && bos)
    special_piece(*bos, int(*data.bos_token_id));
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (data.add_eos_token.value_or(false) && eos) special_piece(*eos, int(*data.eos_token_id));
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", single},
          {"special_tokens", std::move(specials)}};
}

/// The added tokens and the bos/eos pieces of a vocabulary whose control and user-defined tokens
/// are `added` (id -> added token).
struct AddedTokens {
  json added_tokens;  ///< in id order
  std::optional<std::string> bos, eos;
};

/// ref: add_gguf_special_tokens, then the bos/eos/unk/pad tokens the transformers tokenizer adds
/// as special (those the file names, unless `added` holds their id already); `tokens` spells them.
AddedTokens with_special_tokens(std::map<int, json> added, const std::vector<std::string>& tokens,
                                const io::GgufTokenizerData& data) {
  auto special = [&](const std::optional<std::int64_t>& id) -> std::optional<std::string> {
    if (!id) return std::nullopt;
    const auto& t = tokens.at(std::size_t(*id));
    if (!added.count(int(*id))) added.emplace(int(*id), added_token(int(*id), t, true));
    return t;
  };
  AddedTokens out;
  out.bos = special(data.bos_token_id);
  out.eos = special(data.eos_token_id);
  special(data.unknown_token_id);
  special(data.padding_token_id);
  out.added_tokens = json::array();
  for (auto& [_, a] : added) out.added_tokens.push_back(std::move(a));
  return out;
}

/// ref: gguf_tokenizer_mapping.py byte_level_tokenizer (GPT2Tokenizer over the file's vocabulary
/// and merges, a token outside the byte alphabet respelled byte by byte), add_gguf_special_tokens
/// (control tokens special unless outside the byte alphabet, user-defined ones plain) and
/// set_split_regex (tokenizer.ggml.pre's split, then ByteLevel without its own regex).
Tokenizer byte_level_from_gguf(const io::GgufTokenizerData& data, const std::string& source) {
  const auto& raw = data.tokens;
  std::vector<std::string> tokens;
  tokens.reserve(raw.size());
  for (const auto& t : raw)
    tokens.push_back(in_byte_alphabet(t) ? t : detail::byte_level_encode(t));
  detail::Vocab vocab;
  vocab.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) vocab.insert_or_assign(tokens[i], int(i));

  std::vector<detail::BpeMerge> merges;
  merges.reserve(data.merges.size());
  std::string merged;
  for (std::size_t i = 0; i < data.merges.size(); ++i) {
    const auto& line = data.merges[i];
    const auto sp = line.find(' ');
    const auto a = sp == std::string::npos ? vocab.end() : vocab.find(line.substr(0, sp));
    const auto b = sp == std::string::npos ? vocab.end() : vocab.find(line.substr(sp + 1));
    merged = sp == std::string::npos ? line : line.substr(0, sp) + line.substr(sp + 1);
    const auto m = vocab.find(merged);
    if (a == vocab.end() || b == vocab.end() || m == vocab.end())
      fail<FormatError>(
          "{}: tokenizer.ggml.merges[{}] '{}' is not a pair of tokens whose join is "
          "a token",
          source, i, line);
    merges.push_back({a->second, b->second, m->second});
  }

  std::map<int, json> added;
  const auto& types = data.token_type;
  for (std::size_t i = 0; i < types.size(); ++i)
    if (types[i] == 3 && in_byte_alphabet(raw[i])) {
      const auto it = vocab.find(raw[i]);
      const int id = it != vocab.end() ? it->second : int(i);
      added.insert_or_assign(id, added_token(id, raw[i], true));
    }
  for (std::size_t i = 0; i < types.size(); ++i)
    if (types[i] == 4)
      if (auto it = vocab.find(raw[i]); it != vocab.end() && !added.count(it->second))
        added.emplace(it->second, added_token(it->second, raw[i], false));
  auto [added_json, bos, eos] = with_special_tokens(std::move(added), raw, data);

  json pre = {{"type", "ByteLevel"},
              {"add_prefix_space", false},
              {"trim_offsets", true},
              {"use_regex", true}};
  if (const char* regex = split_regex(data.pre)) {
    pre["use_regex"] = false;
    pre = {{"type", "Sequence"},
           {"pretokenizers", json::array({{{"type", "Split"},
                                           {"pattern", {{"Regex", regex}}},
                                           {"behavior", "Isolated"},
                                           {"invert", false}},
                                          pre})}};
  }
  detail::BpeOptions options;
  if (data.unknown_token_id) options.unk_token = tokens.at(std::size_t(*data.unknown_token_id));
  json j = {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", std::move(added_json)},
            {"normalizer", nullptr},
            {"pre_tokenizer", std::move(pre)},
            {"post_processor", post_processor(data, bos, eos, false)},
            {"decoder",
             {{"type", "ByteLevel"},
              {"add_prefix_space", true},
              {"trim_offsets", true},
              {"use_regex", true}}}};
  return detail::build_tokenizer(
      j, source, detail::Bpe::from_parts(std::move(vocab), merges, std::move(options)));
}

/// ref: gguf_tokenizer_mapping.py sentencepiece_tokenizer + add_gguf_special_tokens,
/// models/llama/tokenization_llama.py LlamaTokenizer: the tokenizer transformers builds for a
/// SentencePiece ("llama") vocabulary of any architecture without a builder of its own (Llama,
/// Mistral, Mixtral...). Merges from the file, else generate_merges(vocab, dict(zip(tokens,
/// scores))); no normalizer; Metaspace pre-tokenizer (prepend "▁" to the first word only); BPE with
/// byte fallback, unknown pieces fused and no unk token; <bos> $A (add_bos_token defaults to true).
Tokenizer llama_sentencepiece_from_gguf(const io::GgufTokenizerData& data,
                                        const std::string& source) {
  const auto& tokens = data.tokens;
  detail::Vocab vocab;  // later duplicates win, as in a Python dict
  vocab.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) vocab.insert_or_assign(tokens[i], int(i));
  auto id_of = [&](std::string_view t) {
    auto it = vocab.find(std::string(t));
    return it == vocab.end() ? -1 : it->second;
  };

  std::vector<detail::BpeMerge> merges;
  if (!data.merges.empty()) {
    for (std::size_t i = 0; i < data.merges.size(); ++i) {
      const auto& line = data.merges[i];
      const auto sp = line.find(' ');
      const int a = sp == std::string::npos ? -1 : id_of(line.substr(0, sp));
      const int b = sp == std::string::npos ? -1 : id_of(line.substr(sp + 1));
      const int m = sp == std::string::npos ? -1 : id_of(line.substr(0, sp) + line.substr(sp + 1));
      if (a < 0 || b < 0 || m < 0)
        fail<FormatError>(
            "{}: tokenizer.ggml.merges[{}] '{}' is not a pair of tokens whose join is "
            "a token",
            source, i, line);
      merges.push_back({a, b, m});
    }
  } else {
    if (data.scores.size() != tokens.size())
      fail<FormatError>(
          "{}: tokenizer.ggml.scores is needed to rebuild the merges of a llama "
          "vocabulary ({} scores for {} tokens)",
          source, data.scores.size(), tokens.size());
    // ref: tokenization_utils_base.py generate_merges with vocab_scores: each token (first
    // occurrence order, last occurrence's score) split into every pair of vocabulary pieces,
    // a token's pairs by (left id, right id); then a stable sort on (score, left length, right
    // length), highest first, lengths in code points.
    std::unordered_map<std::string_view, float> score;
    for (std::size_t i = 0; i < tokens.size(); ++i) score[tokens[i]] = data.scores[i];
    struct Candidate {
      detail::BpeMerge merge;
      float score;
      std::size_t left_len, right_len;
    };
    std::vector<Candidate> all;
    std::unordered_map<std::string_view, bool> seen;
    for (const auto& t : tokens) {
      if (!seen.emplace(t, true).second) continue;
      const auto cps = code_points(t);
      std::vector<Candidate> local;
      std::string left;
      for (std::size_t k = 1; k < cps.size(); ++k) {
        left += cps[k - 1];
        const int a = id_of(left), b = a < 0 ? -1 : id_of(std::string_view(t).substr(left.size()));
        if (b >= 0) local.push_back({{a, b, id_of(t)}, score.at(t), k, cps.size() - k});
      }
      std::sort(local.begin(), local.end(), [](const Candidate& x, const Candidate& y) {
        return std::pair(x.merge.a, x.merge.b) < std::pair(y.merge.a, y.merge.b);
      });
      all.insert(all.end(), local.begin(), local.end());
    }
    std::stable_sort(all.begin(), all.end(), [](const Candidate& x, const Candidate& y) {
      return std::tuple(x.score, x.left_len, x.right_len) >
             std::tuple(y.score, y.left_len, y.right_len);
    });
    merges.reserve(all.size());
    for (const auto& c : all) merges.push_back(c.merge);
  }

  // ref: add_gguf_special_tokens (control tokens special, user-defined ones plain), then the
  // bos/eos/unk/pad tokens LlamaTokenizer adds as special.
  std::map<int, json> added;
  const auto& types = data.token_type;
  for (std::size_t i = 0; i < types.size(); ++i)
    if (types[i] == 3) {
      const int id = id_of(tokens[i]);
      added.insert_or_assign(id, added_token(id, tokens[i], true));
    }
  for (std::size_t i = 0; i < types.size(); ++i)
    if (const int id = id_of(tokens[i]); types[i] == 4 && !added.count(id))
      added.emplace(id, added_token(id, tokens[i], false));
  auto [added_json, bos, eos] = with_special_tokens(std::move(added), tokens, data);

  detail::BpeOptions options;
  options.fuse_unk = true;
  options.byte_fallback = true;
  json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", std::move(added_json)},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Metaspace"},
        {"replacement", kSpace},
        {"prepend_scheme", "first"},
        {"split", false}}},
      // <bos> $A (add_bos_token defaults to true for "llama" files), then <eos>.
      {"post_processor", post_processor(data, bos, eos, true)},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         json::array({{{"type", "Replace"}, {"pattern", string_pattern(kSpace)}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
  };
  return detail::build_tokenizer(
      j, source, detail::Bpe::from_parts(std::move(vocab), merges, std::move(options)));
}

}  // namespace

Tokenizer tokenizer_from_gguf(const io::GgufTokenizerData& data, const std::string& architecture,
                              const std::string& source) {
  if (data.model == "gpt2") return byte_level_from_gguf(data, source);
  // ref: select_tokenizer_builder — gemma* (and phi3) have builders of their own; any other
  // architecture's SentencePiece vocabulary is a LlamaTokenizer.
  if (data.model == "llama" && architecture != "gemma" && architecture != "gemma2" &&
      architecture != "gemma3" && architecture != "phi3")
    return llama_sentencepiece_from_gguf(data, source);
  if (data.model != "llama" ||
      (architecture != "gemma" && architecture != "gemma2" && architecture != "gemma3"))
    fail<UnsupportedError>(
        "{}: GGUF tokenizer '{}' of architecture '{}' is not supported (gpt2; llama of any "
        "architecture but phi3)",
        source, data.model, architecture);
  const auto& raw = data.tokens;
  std::vector<std::string> tokens;
  tokens.reserve(raw.size());
  for (const auto& t : raw) tokens.push_back(respell(t));

  // vocab {token: index}, later duplicates winning as in a Python dict.
  detail::Vocab vocab;
  vocab.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) vocab.insert_or_assign(tokens[i], int(i));

  // The merges as ids for Bpe::from_parts (merges_of): the JSON round trip of a 262k-token
  // vocabulary cost more than the rest of loading the default model. Two threads take half the
  // tokens each; their merges are concatenated in order.
  std::vector<std::pair<int, std::string_view>> order;  // (last index, token), once per token
  order.reserve(vocab.size());
  for (const auto& [t, i] : vocab) order.emplace_back(i, t);
  std::sort(order.begin(), order.end());
  const FlatVocab flat(vocab);
  std::vector<detail::BpeMerge> merges;
  if (order.size() >= 4096 && std::thread::hardware_concurrency() >= 2) {
    const std::size_t half = order.size() / 2;
    auto second = std::async(std::launch::async, merges_of, std::cref(flat), std::cref(order), half,
                             order.size());
    merges = merges_of(flat, order, 0, half);
    const auto rest = second.get();
    merges.insert(merges.end(), rest.begin(), rest.end());
  } else {
    merges = merges_of(flat, order, 0, order.size());
  }

  // ref: add_gguf_special_tokens — control tokens special, user-defined ones (if in the vocab)
  // plain; GemmaTokenizer adds its bos/eos/unk/pad/mask tokens as special too.
  std::map<int, json> added;
  const auto& types = data.token_type;
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (types[i] == 3) {
      const auto it = vocab.find(raw[i]);
      added.insert_or_assign(it != vocab.end() ? it->second : int(i),
                             added_token(it != vocab.end() ? it->second : int(i), raw[i], true));
    }
  }
  for (std::size_t i = 0; i < types.size(); ++i)
    if (types[i] == 4)
      if (auto it = vocab.find(raw[i]); it != vocab.end() && !added.count(it->second))
        added.emplace(it->second, added_token(it->second, raw[i], false));
  auto [added_json, bos, eos] = with_special_tokens(std::move(added), tokens, data);

  detail::BpeOptions options;
  options.unk_token =
      data.unknown_token_id ? tokens.at(std::size_t(*data.unknown_token_id)) : "<unk>";
  options.fuse_unk = true;
  options.byte_fallback = true;
  json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", std::move(added_json)},
      {"normalizer", {{"type", "Replace"}, {"pattern", string_pattern(" ")}, {"content", kSpace}}},
      {"pre_tokenizer",
       {{"type", "Split"},
        {"pattern", string_pattern(" ")},
        {"behavior", "MergedWithPrevious"},
        {"invert", false}}},
      // <bos> $A (add_bos_token defaults to true for "llama" files), then <eos>.
      {"post_processor", post_processor(data, bos, eos, true)},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         json::array({{{"type", "Replace"}, {"pattern", string_pattern(kSpace)}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}}})}}},
  };
  return detail::build_tokenizer(
      j, source, detail::Bpe::from_parts(std::move(vocab), merges, std::move(options)));
}

std::optional<ChatTemplate> chat_template_from_gguf(const io::GgufTokenizerData& data) {
  if (!data.chat_template) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> specials;
  auto add = [&](const char* name, const std::optional<std::int64_t>& id) {
    if (id) specials.emplace_back(name, data.tokens.at(std::size_t(*id)));
  };
  add("bos_token", data.bos_token_id);
  add("eos_token", data.eos_token_id);
  add("unk_token", data.unknown_token_id);
  add("pad_token", data.padding_token_id);
  return ChatTemplate(*data.chat_template, std::move(specials));
}

}  // namespace ominix::text
