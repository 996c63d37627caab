// Tokenizer errors (malformed or unsupported tokenizer.json, invalid UTF-8 input) and properties
// that hold for any input: streaming equals decode, thread-safe encoding, the regex iteration.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/text/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ominix::text::Tokenizer;

// A small real tokenizer.json (embedded in a golden fixture) to break in various ways.
json base_tokenizer() {
  std::ifstream in(fs::path(OMINIX_TOKENIZER_FIXTURES) / "syn_bytelevel_nfkc_lower_roberta.json");
  return json::parse(in)["tokenizer"];
}

template <typename E>
std::string error_of(const std::string& text) {
  try {
    Tokenizer::from_json(text, "broken.json");
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no exception";
  return {};
}

TEST(TokenizerErrors, TruncatedJson) {
  const std::string text = base_tokenizer().dump();
  const std::string msg = error_of<ominix::FormatError>(text.substr(0, text.size() / 2));
  EXPECT_NE(msg.find("broken.json"), std::string::npos) << msg;
}

TEST(TokenizerErrors, UnknownModelType) {
  json j = base_tokenizer();
  j["model"]["type"] = "WordPiece";
  const std::string msg = error_of<ominix::UnsupportedError>(j.dump());
  EXPECT_NE(msg.find("model.type"), std::string::npos) << msg;
  EXPECT_NE(msg.find("WordPiece"), std::string::npos) << msg;
}

TEST(TokenizerErrors, MergeWithUnknownToken) {
  json j = base_tokenizer();
  j["model"]["merges"].push_back({"not-a-token", "e"});
  const std::string msg = error_of<ominix::FormatError>(j.dump());
  EXPECT_NE(msg.find("model.merges["), std::string::npos) << msg;
  EXPECT_NE(msg.find("not-a-token"), std::string::npos) << msg;
}

TEST(TokenizerErrors, MalformedMergeString) {
  json j = base_tokenizer();
  j["model"]["merges"] = json::array({"a b c"});
  EXPECT_NE(error_of<ominix::FormatError>(j.dump()).find("model.merges[0]"), std::string::npos);
}

TEST(TokenizerErrors, MissingVocab) {
  json j = base_tokenizer();
  j["model"].erase("vocab");
  EXPECT_NE(error_of<ominix::FormatError>(j.dump()).find("model.vocab"), std::string::npos);
}

TEST(TokenizerErrors, VocabIdNotAnInteger) {
  json j = base_tokenizer();
  j["model"]["vocab"]["a"] = "one";
  EXPECT_NE(error_of<ominix::FormatError>(j.dump()).find("model.vocab.a"), std::string::npos);
}

TEST(TokenizerErrors, DropoutUnsupported) {
  json j = base_tokenizer();
  j["model"]["dropout"] = 0.1;
  EXPECT_NE(error_of<ominix::UnsupportedError>(j.dump()).find("model.dropout"), std::string::npos);
}

TEST(TokenizerErrors, UnknownComponents) {
  for (const char* key : {"normalizer", "pre_tokenizer", "decoder", "post_processor"}) {
    json j = base_tokenizer();
    j[key] = {{"type", "Nonexistent"}};
    const std::string msg = error_of<ominix::UnsupportedError>(j.dump());
    EXPECT_NE(msg.find(std::string(key) + ".type"), std::string::npos) << msg;
  }
}

TEST(TokenizerErrors, BadSplitRegex) {
  json j = base_tokenizer();
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "(unclosed"}}},
                        {"behavior", "Isolated"},
                        {"invert", false}};
  EXPECT_NE(error_of<ominix::UnsupportedError>(j.dump()).find("(unclosed"), std::string::npos);
}

TEST(TokenizerErrors, MissingFileAndDirectory) {
  EXPECT_THROW(Tokenizer::from_dir("/nonexistent/model"), ominix::IoError);
  EXPECT_THROW(Tokenizer::from_file("/nonexistent/tokenizer.json"), ominix::IoError);
}

TEST(TokenizerErrors, InvalidUtf8Text) {
  const auto tok = Tokenizer::from_json(base_tokenizer().dump());
  for (const std::string bad : {"abc\xff", "\xc3", "x\xed\xa0\x80y", "\xf0\x9f\x98", "\xc0\xaf"}) {
    EXPECT_THROW(tok.encode(bad), ominix::InvalidArgument) << bad;
  }
  EXPECT_NO_THROW(tok.encode("valid \xc3\xa9 \xf0\x9f\x98\x80"));
}

// Streaming output equals decode() for random id sequences: byte tokens split mid-character,
// special tokens, unknown ids, with and without skip_special_tokens.
TEST(StreamingDetokenizer, EqualsDecodeOnRandomIds) {
  const fs::path shared(OMINIX_SHARED_TOKENIZERS);
  std::vector<Tokenizer> toks{Tokenizer::from_json(base_tokenizer().dump())};
  for (const char* name : {"llama2", "qwen3"}) {
    if (fs::exists(shared / name)) toks.push_back(Tokenizer::from_dir(shared / name));
  }
  std::mt19937 rng(5);
  for (const auto& tok : toks) {
    const auto n = static_cast<int>(tok.vocab_size());
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<ominix::text::TokenId> ids;
      const int len = 1 + static_cast<int>(rng() % 40);
      for (int k = 0; k < len; ++k) {
        const unsigned r = rng() % 4;
        ids.push_back(r == 0   ? static_cast<int>(rng() % 300)
                      : r == 1 ? n - 1 - static_cast<int>(rng() % 30)
                               : static_cast<int>(rng() % (n + 5)));
      }
      for (bool skip : {false, true}) {
        ominix::text::StreamingDetokenizer stream(tok, skip);
        std::string out;
        for (auto id : ids) out += stream.put(id);
        out += stream.finish();
        ASSERT_EQ(out, tok.decode(ids, skip)) << json(ids).dump();
      }
    }
  }
}

TEST(Tokenizer, ConcurrentEncodeIsConsistent) {
  const auto tok = Tokenizer::from_json(base_tokenizer().dump());
  const std::string text = "Concurrent encoding: hello world, 你好, 12345, <sp> ok";
  const auto expected = tok.encode(text);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 200; ++k) ok[t] += tok.encode(text) == expected;
    });
  }
  for (auto& th : threads) th.join();
  for (int v : ok) EXPECT_EQ(v, 200);
}

}  // namespace
