// Llama (model_type llama) and llama.cpp's "llama" GGUF architecture (Llama, Mistral, Mixtral)
// against the fixtures of tools/fixtures/gen_llama.py: transformers 5.24 (fp32 logits at every
// position, greedy continuations), mlx-lm 0.32.2 (4-bit copies) and GGUF files written with gguf
// 0.19 as convert_hf_to_gguf.py writes them.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/error.h"
#include "ominix/convert.h"
#include "ominix/generate/model.h"
#include "ominix/io/gguf.h"
#include "ominix/models/mixtral.h"
#include "ominix/ominix.h"
#include "ominix/text/gguf_tokenizer.h"
#include "support/lm_golden.h"
#include "support/lm_testing.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;
namespace fs = std::filesystem;

namespace {

using tests::copy_model;
using tests::error_of;
using tests::expect_logits_close;
using tests::forward;
using tests::greedy;
using tests::kFp32Tol;
using tests::kNew;
using tests::kQuantTol;
using tests::row;
using tests::TempDir;
using tests::to_vector;

fs::path model_dir(const std::string& name) {
  return tests::fixture("models/llama/" + name);
}
/// gguf/<name>: model.gguf and its expected.safetensors.
fs::path gguf_dir(const std::string& name) {
  return tests::fixture("models/llama/gguf/" + name);
}
io::TensorMap expected(const fs::path& dir) {
  return tests::load_expected(dir);
}

// ----------------------------------------------------------------------------------------------
// fp32 parity with transformers: Llama 2 style (untied, GQA, head_dim 32 != hidden / heads,
// attention and MLP biases) and Llama 3.2 style (tied, llama3 RoPE scaling).

class LlamaGolden : public tests::LmGolden {};

OMINIX_LM_GOLDEN_TESTS(LlamaGolden)

INSTANTIATE_TEST_SUITE_P(Fixtures, LlamaGolden,
                         ::testing::ValuesIn(tests::lm_fixtures(
                             model_dir, [](const fs::path& dir) { return mixtral::load(dir); },
                             {"llama", "llama3_tied"})),
                         tests::lm_fixture_name);

// The same six tests on the GGUF copies: F32 files against the safetensors originals' transformers
// outputs (same logits, same greedy tokens), Q8_0 files against transformers on the weights the
// file holds. Mistral and Mixtral here are gen_mixtral.py's fixtures without a sliding window;
// mistral_linear adds linear RoPE scaling (factor 2, against transformers with that config);
// mixtral_legacy holds each expert's matrices as separate tensors (older llama.cpp files).

class LlamaGgufGolden : public tests::LmGolden {};

OMINIX_LM_GOLDEN_TESTS(LlamaGgufGolden)

INSTANTIATE_TEST_SUITE_P(
    Fixtures, LlamaGgufGolden,
    ::testing::ValuesIn(tests::lm_fixtures(
        gguf_dir, [](const fs::path& dir) { return mixtral::load_gguf(dir / "model.gguf"); },
        {"llama-f32", "llama-q8_0", "llama3_tied-f32", "mistral-f32", "mistral_linear-f32",
         "mixtral-f32", "mixtral-q8_0", "mixtral_legacy-f32"})),
    [](const ::testing::TestParamInfo<tests::LmFixture>& info) {  // llama-f32 -> llama_f32
      auto name = info.param.name;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

// ----------------------------------------------------------------------------------------------
// RoPE scaling, quantized, GGUF specifics.

// llama3 scaling changes the logits (without it the fixture would not test it).
TEST(LlamaRope, Llama3ScalingChangesTheLogits) {
  TempDir dir("norope");
  copy_model(model_dir("llama3_tied"), dir.path, [](auto& c) { c.erase("rope_scaling"); });
  auto ids = expected(model_dir("llama3_tied")).at("input_ids");
  auto d = tests::diff(forward(*mixtral::load(dir.path), ids),
                       forward(*mixtral::load(model_dir("llama3_tied")), ids));
  EXPECT_GT(d.rel, 1e-3);
}

TEST(LlamaDtypes, Bf16AndFp16LoadAndRun) {
  for (const char* name : {"llama", "llama3_tied"}) {
    auto ref = expected(model_dir(name));
    for (auto dtype : {mx::bfloat16, mx::float16}) {
      SCOPED_TRACE(std::string(name) + (dtype == mx::bfloat16 ? " bf16" : " fp16"));
      tests::expect_half_precision_close(*mixtral::load(model_dir(name), {.dtype = dtype}), dtype,
                                         ref);
    }
  }
}

TEST(LlamaQuantized, LogitsAndGreedyMatchMlxLm) {
  for (const char* name : {"llama_q4", "llama3_tied_q4"}) {
    SCOPED_TRACE(name);
    tests::expect_logits_and_greedy(*mixtral::load(model_dir(name)), expected(model_dir(name)),
                                    kQuantTol);
  }
}

// Q8_0 stays near the fp32 original's logits: normalised error 0.026 (Llama) and 0.087 (Mixtral,
// where rounding moves a few near-tied router choices) on these random weights; a wrong layout
// or scale would be of order 1. Exact parity is LlamaGgufGolden's, against transformers on the
// weights the file holds.
TEST(LlamaGguf, Q8_0LogitsNearTheOriginal) {
  for (auto [gguf, original] : {std::pair{"llama-q8_0", "llama"}, {"mixtral-q8_0", "mixtral"}}) {
    SCOPED_TRACE(gguf);
    auto model = mixtral::load_gguf(gguf_dir(gguf) / "model.gguf");
    auto ref = expected(gguf_dir(original + std::string("-f32")));
    EXPECT_LT(tests::diff(forward(*model, ref.at("input_ids")), ref.at("logits")).rel, 0.15);
  }
}

TEST(LlamaGguf, ModelInfoFromTheMetadata) {
  struct Case {
    const char* name;
    const char* model_type;
  };
  for (auto [name, type] : {Case{"llama-f32", "llama"}, Case{"mistral-f32", "llama"},
                            Case{"mixtral-q8_0", "mixtral"}}) {
    SCOPED_TRACE(name);
    auto model = mixtral::load_gguf(gguf_dir(name) / "model.gguf");
    EXPECT_EQ(model->info().model_type, type);
    EXPECT_EQ(model->info().vocab_size, 128);
    EXPECT_EQ(model->info().num_layers, 2);
    EXPECT_EQ(model->info().max_position_embeddings, 512);
    EXPECT_EQ(model->info().eos_token_ids, std::vector<int>{2});
    EXPECT_EQ(model->info().bos_token_id, 1);
  }
}

// A dtype asked for at load is the activations' dtype, and the model still runs.
TEST(LlamaGguf, Bf16Load) {
  auto model = mixtral::load_gguf(gguf_dir("llama-q8_0") / "model.gguf", {.dtype = mx::bfloat16});
  auto ref = expected(gguf_dir("llama-q8_0"));
  auto logits = forward(*model, ref.at("input_ids"));
  EXPECT_EQ(logits.dtype(), mx::bfloat16);
  EXPECT_LT(tests::diff(logits, ref.at("logits")).rel, 0.05);
}

TEST(LlamaGguf, UnsupportedMetadataIsNamed) {
  for (auto [file, key] : {std::pair{"yarn", "llama.rope.scaling.type"},
                           {"partial_rotary", "llama.rope.dimension_count"}}) {
    SCOPED_TRACE(file);
    auto path = gguf_dir("errors") / (file + std::string(".gguf"));
    auto msg = error_of<UnsupportedError>([&] { mixtral::load_gguf(path); });
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  }
}

TEST(LlamaGguf, BadMetadataIsNamed) {
  for (auto [file, key] : {std::pair{"zero_heads", "llama.attention.head_count"},
                           {"many_layers", "llama.block_count"}}) {
    SCOPED_TRACE(file);
    auto path = gguf_dir("errors") / (file + std::string(".gguf"));
    auto msg = error_of<ConfigError>([&] { mixtral::load_gguf(path); });
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
  }
}

TEST(LlamaGguf, OtherArchitecturesAreRejected) {
  auto path = tests::fixture("models/gemma3/tiny-f32.gguf");
  auto msg = error_of<UnsupportedError>([&] { mixtral::load_gguf(path); });
  EXPECT_NE(msg.find("gemma3"), std::string::npos) << msg;
}

// SentencePiece ("llama": Llama 2, Mistral, Mixtral) as LlamaTokenizer: merges rebuilt from the
// scores, Metaspace on the first word, byte fallback. Llama 2's first 3000 tokens and its
// characters, and the tiny fixtures' vocabulary (no byte tokens: unknown characters are dropped).
TEST(LlamaTokenizer, GgufSentencePieceMatchesTransformers) {
  tests::expect_gguf_tokenizer_matches(tests::fixture("models/llama/tokenizer/llama2_head.gguf"),
                                       tests::fixture("models/llama/tokenizer/llama2_head.json"));
  tests::expect_gguf_tokenizer_matches(gguf_dir("llama-f32") / "model.gguf",
                                       tests::fixture("models/llama/tokenizer/tiny.json"));
}

// Llama 3's kind: byte-level BPE ("gpt2") split as "llama-bpe", its special tokens as control
// tokens, BOS added (a BPE trained on the tokenizer corpus, with a chat-formatted string).
TEST(LlamaTokenizer, GgufLlama3BpeMatchesTransformers) {
  tests::expect_gguf_tokenizer_matches(tests::fixture("models/llama/tokenizer/llama3_bpe.gguf"),
                                       tests::fixture("models/llama/tokenizer/llama3_bpe.json"));
}

// phi3's SentencePiece tokenizer differs (a normalizer adds the prefix space): not built as
// Llama's.
TEST(LlamaTokenizer, Phi3SentencePieceIsRejected) {
  auto gguf = tests::fixture("models/llama/tokenizer/llama2_head.gguf");
  auto data = io::GgufTokenizerData::parse(io::GgufFile::open(gguf).metadata());
  auto msg = error_of<UnsupportedError>([&] { text::tokenizer_from_gguf(data, "phi3", "x.gguf"); });
  EXPECT_NE(msg.find("phi3"), std::string::npos) << msg;
}

// ----------------------------------------------------------------------------------------------
// Through the library: convert, and a GGUF with its tokenizer.

// `ominix convert --quantize 4 --group-size 32` of a Llama checkpoint writes mlx-lm's
// quantize_model tensors bit for bit (the *_q4 fixtures).
TEST(LlamaConvert, QuantizedCopyEqualsMlxLm) {
  for (auto [name, q4] : {std::pair{"llama", "llama_q4"}, {"llama3_tied", "llama3_tied_q4"}}) {
    SCOPED_TRACE(name);
    TempDir dir("convert");
    const auto out = dir.path / "out";
    convert_checkpoint({.model = model_dir(name), .out = out, .quantize = io::QuantSpec{32, 4}});
    auto ours = io::load_checkpoint(out), theirs = io::load_checkpoint(model_dir(q4));
    EXPECT_EQ(ours.size(), theirs.size());
    for (const auto& [key, want] : theirs) {
      auto it = ours.find(key);
      ASSERT_NE(it, ours.end()) << key;
      EXPECT_TRUE(mx::array_equal(it->second, want).item<bool>()) << key;
    }
  }
}

// ominix::load_model on a llama GGUF: the model through the GGUF registry, the tokenizer from the
// file (the ids transformers gives, tokenizer/tiny.json).
TEST(LlamaGguf, LoadModelReadsModelAndTokenizer) {
  auto model = load_model(gguf_dir("llama-f32"));  // a directory holding one .gguf
  EXPECT_EQ(model.lm().info().model_type, "llama");
  auto g = tests::load_json(tests::fixture("models/llama/tokenizer/tiny.json"));
  for (const auto& s : g["strings"])
    EXPECT_EQ(model.encode(s["text"].get<std::string>()), s["ids"].get<std::vector<int>>())
        << s["text"];
  auto ref = expected(gguf_dir("llama-f32"));
  expect_logits_close(forward(model.lm(), ref.at("input_ids")), ref.at("logits"), kFp32Tol);
}

// ----------------------------------------------------------------------------------------------
// Registries and load errors.

TEST(LlamaRegistry, LoadModelAndLoadGgufModelDispatch) {
  mixtral::register_family();
  auto model = generate::load_model(model_dir("llama"));
  EXPECT_EQ(model->info().model_type, "llama");
  auto ref = expected(model_dir("llama"));
  expect_logits_close(forward(*model, ref.at("input_ids")), ref.at("logits"), kFp32Tol);
  auto gguf = generate::load_gguf_model(gguf_dir("llama-f32") / "model.gguf");
  expect_logits_close(forward(*gguf, ref.at("input_ids")), ref.at("logits"), kFp32Tol);
}

TEST(LlamaErrors, BiasFlagsBindTheirTensors) {
  struct Case {
    const char* name;
    std::function<void(nlohmann::json&)> edit;
    const char* tensor;
  };
  std::vector<Case> cases{
      // The config promises biases the checkpoint lacks: each missing tensor is named.
      {"llama3_tied", [](auto& c) { c["mlp_bias"] = true; }, "model.layers.1.mlp.down_proj.bias"},
      {"llama3_tied", [](auto& c) { c["attention_bias"] = true; },
       "model.layers.0.self_attn.o_proj.bias"},
      // The checkpoint has biases the config denies: reported as unexpected.
      {"llama", [](auto& c) { c["attention_bias"] = false; },
       "model.layers.0.self_attn.q_proj.bias"},
  };
  for (const auto& [name, edit, tensor] : cases) {
    SCOPED_TRACE(tensor);
    TempDir dir("bias");
    copy_model(model_dir(name), dir.path, edit);
    auto msg = error_of<WeightError>([&] { mixtral::load(dir.path); });
    EXPECT_NE(msg.find(tensor), std::string::npos) << msg;
  }
}

TEST(LlamaErrors, BadConfigFieldsAreNamed) {
  TempDir dir("layer_types");
  copy_model(model_dir("llama"), dir.path, [](auto& c) {
    c["layer_types"] = {"sliding_attention", "full_attention"};
  });
  auto msg = error_of<UnsupportedError>([&] { mixtral::load(dir.path); });
  EXPECT_NE(msg.find("config.json: layer_types"), std::string::npos) << msg;
  TempDir rope("rope");
  copy_model(model_dir("llama3_tied"), rope.path,
             [](auto& c) { c["rope_scaling"]["high_freq_factor"] = 1.0; });
  msg = error_of<ConfigError>([&] { mixtral::load(rope.path); });
  EXPECT_NE(msg.find("high_freq_factor"), std::string::npos) << msg;
}

}  // namespace
