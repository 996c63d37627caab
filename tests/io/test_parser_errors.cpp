// Hostile files for every parser a user's file reaches: each must fail with an ominix::Error
// whose message names the file (and the field where there is one), never with the parser's own
// exception (nlohmann::json, yaml-cpp, std::filesystem...), which a caller catching
// ominix::Error would not catch. Findings of the fuzz targets (docs/fuzzing.md) are added here.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <typeinfo>

#include <gtest/gtest.h>

#include "support/testing.h"

#include "models/funasr_nano/config.h"
#include "models/gemma3/config.h"
#include "models/qwen3/config.h"
#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/io/safetensors.h"
#include "ominix/io/torch_zip.h"
#include "ominix/models/paraformer.h"
#include "ominix/text/chat_template.h"
#include "ominix/text/tokenizer.h"
#include "ominix/vision/image.h"

namespace fs = std::filesystem;
using namespace ominix;

namespace {

class ParserErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ominix_parse_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& content) {
    auto p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  // A safetensors file with this header text and `data_bytes` bytes of data.
  fs::path safetensors(const std::string& header, std::size_t data_bytes) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    return write("model.safetensors", bytes + header + std::string(data_bytes, '\0'));
  }

  fs::path dir_;
};

// Runs f; it must throw E (an ominix::Error) whose message holds every one of `needles`.
// Anything else (no exception, or a foreign one) fails the test with its type and message.
template <typename E = Error>
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> needles) {
  try {
    f();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "foreign exception " << typeid(e).name() << ": " << e.what();
    return;
  }
  ADD_FAILURE() << "no exception";
}

// A zip of stored entries, as torch.save writes them (CRCs left 0: the reader does not check).
std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  auto le = [](std::string& out, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  std::string out, dir;
  for (const auto& [name, data] : entries) {
    const std::uint64_t local = out.size();
    le(out, 0x04034b50, 4), le(out, 20, 2), le(out, 0, 2), le(out, 0, 2), le(out, 0, 4);
    le(out, 0, 4), le(out, data.size(), 4), le(out, data.size(), 4), le(out, name.size(), 2);
    le(out, 0, 2), out += name, out += data;
    le(dir, 0x02014b50, 4), le(dir, 20, 2), le(dir, 20, 2), le(dir, 0, 2), le(dir, 0, 2);
    le(dir, 0, 4), le(dir, 0, 4), le(dir, data.size(), 4), le(dir, data.size(), 4);
    le(dir, name.size(), 2), le(dir, 0, 2), le(dir, 0, 2), le(dir, 0, 2), le(dir, 0, 2);
    le(dir, 0, 4), le(dir, local, 4), dir += name;
  }
  const std::uint64_t dir_offset = out.size();
  out += dir;
  le(out, 0x06054b50, 4), le(out, 0, 2), le(out, 0, 2), le(out, entries.size(), 2);
  le(out, entries.size(), 2), le(out, dir.size(), 4), le(out, dir_offset, 4), le(out, 0, 2);
  return out;
}

const char* kQwen3Config = R"({"model_type": "qwen3", "hidden_size": 64,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 128,
  "num_hidden_layers": 2, "vocab_size": 256, "rms_norm_eps": %s})";

}  // namespace

// The fuzzing finding of issue 16: a number beyond double's range in a safetensors header
// escaped as nlohmann::json::out_of_range (406) with no file name.
TEST_F(ParserErrors, SafetensorsNumberOverflow) {
  auto p = safetensors(R"({"a":{"dtype":"F32","shape":[45E04465],"data_offsets":[0,4]}})", 4);
  expect_error<FormatError>([&] { io::read_safetensors_header(p); },
                            {p.string(), "number overflow", "45E04465"});
  expect_error<FormatError>([&] { io::load_safetensors(p); }, {p.string()});
}

TEST_F(ParserErrors, SafetensorsNestingTooDeep) {
  auto p = safetensors(R"({"a":)" + std::string(2000, '[') + std::string(2000, ']') + "}", 0);
  expect_error<FormatError>([&] { io::read_safetensors_header(p); },
                            {p.string(), "nested deeper than 512"});
}

TEST_F(ParserErrors, ConfigJsonNumberOverflow) {
  auto p = write("config.json", R"({"model_type": "qwen3", "hidden_size": 1E400})");
  expect_error<FormatError>([&] { io::ConfigReader::load(p); }, {p.string(), "number overflow"});
}

TEST_F(ParserErrors, ConfigJsonIntegerOutOfRange) {
  io::ConfigReader c(nlohmann::json::parse(R"({"hidden_size": 18446744073709551615,
      "eos_token_id": [1, 4294967296], "bos_token_id": 2147483648})"),
                     "config.json");
  expect_error<ConfigError>([&] { c.required<int>("hidden_size"); },
                            {"config.json: hidden_size", "out of range"});
  expect_error<ConfigError>([&] { c.int_list("eos_token_id"); },
                            {"config.json: eos_token_id", "4294967296", "out of range"});
  expect_error<ConfigError>([&] { c.optional<int>("bos_token_id"); },
                            {"config.json: bos_token_id", "out of range"});
}

TEST_F(ParserErrors, ConfigJsonFloatOutOfRange) {
  char text[512];
  std::snprintf(text, sizeof text, kQwen3Config, "1e300");
  io::ConfigReader c(nlohmann::json::parse(text), "config.json");
  expect_error<ConfigError>([&] { qwen3::Config::parse(c); },
                            {"config.json: rms_norm_eps", "out of range"});
}

TEST_F(ParserErrors, Gemma3RopeScalingNotAnObject) {
  io::ConfigReader c(nlohmann::json::parse(R"({"model_type": "gemma3_text", "hidden_size": 64,
      "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
      "rope_scaling": "linear"})"),
                     "config.json");
  expect_error<ConfigError>([&] { gemma3::Config::parse(c); }, {"config.json: rope_scaling"});
}

TEST_F(ParserErrors, TokenizerJsonNumberOverflow) {
  const std::string text =
      R"({"model": {"type": "BPE", "vocab": {"a": 1E400}, "merges": []}, "added_tokens": []})";
  expect_error<FormatError>([&] { text::Tokenizer::from_json(text, "dir/tokenizer.json"); },
                            {"dir/tokenizer.json", "number overflow"});
  auto p = write("tok/tokenizer.json", text);
  expect_error<FormatError>([&] { text::Tokenizer::from_file(p); }, {p.string()});
}

TEST_F(ParserErrors, ChatTemplateJsonNumberOverflow) {
  auto p =
      write("tc/tokenizer_config.json", R"({"chat_template": "x", "model_max_length": 1E400})");
  expect_error<FormatError>([&] { text::ChatTemplate::from_model_dir(dir_ / "tc"); },
                            {p.string(), "number overflow"});
  auto q = write("ct/chat_template.json", R"({"chat_template": "x", "n": -1E400})");
  expect_error<FormatError>([&] { text::ChatTemplate::from_model_dir(dir_ / "ct"); },
                            {q.string(), "number overflow"});
}

// config.yaml fields of another type than the reader expects: yaml-cpp's TypedBadConversion and
// BadSubscript escaped Paraformer's reader.
TEST_F(ParserErrors, ParaformerConfigYamlWrongTypes) {
  auto p = write("pf1/config.yaml", "encoder: [SANMEncoder]\n");
  expect_error<ConfigError>([&] { paraformer::load_model(dir_ / "pf1"); }, {p.string()});
  auto q = write("pf2/config.yaml", "encoder: SANMEncoder\nencoder_conf: 5\n");
  expect_error<ConfigError>([&] { paraformer::load_model(dir_ / "pf2"); }, {q.string()});
  auto r = write("pf3/config.yaml", "encoder_conf:\n  attention_heads: 0\n");
  expect_error<ConfigError>([&] { paraformer::load_model(dir_ / "pf3"); },
                            {r.string(), "positive"});
}

// A path the system rejects (longer than NAME_MAX) made std::filesystem throw filesystem_error.
TEST_F(ParserErrors, FunasrNanoConfigYamlPathTooLong) {
  std::ifstream in(tests::fixture("models/funasr_nano/tiny/config.yaml"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string from = "init_param_path: Qwen3-0.6B";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(), "init_param_path: " + std::string(5000, 'a'));
  auto p = write("nano/config.yaml", text);
  expect_error<IoError>([&] { funasr_nano::Config::load(dir_ / "nano"); },
                        {p.string(), "llm_conf.init_param_path", "not a directory"});
}

// A million nested tuples: the values' recursive destruction overflowed the stack.
TEST_F(ParserErrors, TorchZipPickleNestedTooDeep) {
  const std::string pkl = "\x80\x02N" + std::string(1'000'000, '\x85') + ".";
  auto p = write("deep.pt", stored_zip({{"archive/data.pkl", pkl}}));
  expect_error<FormatError>([&] { io::load_torch_zip(p); },
                            {p.string(), "data.pkl", "nested deeper than 1000"});
}

// Dicts that hold the dict below them twice (through the memo): walking them for tensors took
// 2^60 steps.
TEST_F(ParserErrors, TorchZipPickleSharedDicts) {
  std::string d = "}";
  const std::string key_a = std::string("U\x01") + 'a', key_b = std::string("U\x01") + 'b';
  for (int n = 1; n <= 60; ++n) d = "}(" + key_a + d + 'q' + char(n) + key_b + 'h' + char(n) + 'u';
  auto p = write("shared.pt", stored_zip({{"archive/data.pkl", "\x80\x02" + d + "."}}));
  expect_error<FormatError>([&] { io::load_torch_zip(p); },
                            {p.string(), "data.pkl", "dict entries"});
}

// fuzz_image's first finding: a BMP header whose row stride times height overflows int64 (signed
// overflow, undefined behaviour: UBSan aborts the sanitizer run of this suite).
TEST_F(ParserErrors, BmpHugeDimensions) {
  const std::string bytes(
      "\x42\x4d\xfe\x04\x00\x3b\x00\x00\x00\x00\x36\x00\x00\x00\x00\x00\xc4\x0e\x1e\xd6"
      "\xd6\x12\xe6\xc7\x21\xdf\x34\x2f\xd3\x1d\x00\x00\x00\x00\x00\xc8\x04\x00\x00\xc4"
      "\x0e\x00\x00\xc4\x0e\x1e\xd6\xd6\x12\xe6\xc7\x21\xdf\x34\x2f\xd3\x1d\x15",
      58);
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  expect_error<FormatError>(
      [&] {
        vision::decode_image({p, bytes.size()}, "huge.bmp");
      },
      {"huge.bmp", "BMP"});
}
