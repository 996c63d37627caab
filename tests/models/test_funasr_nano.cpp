// Fun-ASR-Nano stage by stage against funasr (tools/fixtures/gen_funasr_nano.py): features,
// encoder output, adaptor output, the prompt's ids and input embeddings, the LLM's logits over the
// prompt by normalised error; the greedy tokens and text of FunASRNano.inference exactly, from
// model.pt and from the same tensors as safetensors; the qwen3 input-embeddings hook; bad inputs.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "ominix/audio/chunk.h"
#include "ominix/audio/io.h"
#include "ominix/base/error.h"
#include "ominix/io/safetensors.h"
#include "ominix/io/torch_zip.h"
#include "ominix/io/weights.h"
#include "ominix/models/funasr_nano.h"
#include "ominix/models/qwen3.h"
#include "support/testing.h"

namespace mx = mlx::core;
namespace fn = ominix::funasr_nano;
namespace fs = std::filesystem;
using ominix::tests::fixture;

namespace {

const fs::path kDir = fixture("models/funasr_nano/tiny");
const char* kClips[] = {"speech_001", "speech_003"};

struct Fixture {
  fn::ModelPtr model = fn::load_model(kDir);
  ominix::io::TensorMap want = ominix::io::load_safetensors(kDir / "expected.safetensors");
  nlohmann::json meta = ominix::tests::load_json(kDir / "expected.json");
};
Fixture& fx() {
  static Fixture f;
  return f;
}

using ominix::tests::expect_rel;

mx::array batch1(const mx::array& x) {
  return mx::expand_dims(x, 0);
}

fn::TranscribeOptions options() {
  return {.max_new_tokens = fx().meta["max_new_tokens"].get<int>()};
}

mx::array clip(const std::string& name) {
  return ominix::audio::load_wav(fixture("audio/" + name + ".wav")).samples;
}

// A scratch copy of the fixture directory (config.yaml, Qwen3-0.6B/), without the checkpoint.
fs::path scratch(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("ominix_funasr_nano_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy(kDir / "Qwen3-0.6B", dir / "Qwen3-0.6B", fs::copy_options::recursive);
  fs::copy_file(kDir / "config.yaml", dir / "config.yaml");
  return dir;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

// Runs `f`, expecting an Error of type E whose message holds `needle`.
template <typename E, typename F>
void expect_error(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(FunAsrNano, Stages) {
  auto& f = fx();
  const auto& w = f.want;
  for (std::string c : kClips) {
    // Each stage runs from funasr's input to it, so that it is checked alone.
    const auto& feats = w.at(c + ".feats");
    expect_rel(fn::features(*f.model, clip(c)), feats, 1e-5, c + ".features");
    const auto lens = mx::array({feats.shape(0)}, {1}, mx::int32);
    expect_rel(fn::encode(*f.model, batch1(feats), lens), batch1(w.at(c + ".encoder_out")), 1e-5,
               c + ".encoder_out");
    const auto adaptor_want = batch1(w.at(c + ".adaptor_out"));
    expect_rel(fn::adapt(*f.model, batch1(w.at(c + ".encoder_out")), lens), adaptor_want, 1e-5,
               c + ".adaptor_out");
    auto prompt = fn::build_prompt(*f.model, feats.shape(0), adaptor_want);
    const auto ids = mx::astype(w.at(c + ".source_ids"), mx::int32);
    mx::eval(ids);
    ASSERT_EQ(prompt.ids.size(), static_cast<std::size_t>(ids.size())) << c;
    EXPECT_EQ(prompt.ids, std::vector<int>(ids.data<int>(), ids.data<int>() + ids.size())) << c;
    EXPECT_EQ(prompt.speech_begin, f.meta["cases"][c]["fbank_beg"].get<int>()) << c;
    EXPECT_EQ(prompt.speech_length, f.meta["cases"][c]["fake_token_len"].get<int>()) << c;
    expect_rel(prompt.embeddings, batch1(w.at(c + ".inputs_embeds")), 1e-6, c + ".inputs_embeds");
    prompt.embeddings = batch1(w.at(c + ".inputs_embeds"));
    expect_rel(fn::prompt_logits(*f.model, prompt), batch1(w.at(c + ".logits")), 1e-5,
               c + ".logits");
  }
}

// Real speech end to end with our frontend: funasr's greedy tokens and text exactly.
TEST(FunAsrNano, TranscribeMatchesFunasr) {
  auto& f = fx();
  for (std::string c : kClips) {
    const auto& want = f.meta["cases"][c];
    auto t = fn::transcribe(*f.model, clip(c), options());
    EXPECT_EQ(t.tokens, want["tokens"].get<std::vector<int>>()) << c;
    EXPECT_EQ(t.text, want["text"].get<std::string>()) << c;
    EXPECT_GT(t.audio_seconds, 1.0) << c;
  }
}

// get_prompt's hotwords, language and no-ITN branches: the prompt ids and the transcript.
TEST(FunAsrNano, PromptOptionsMatchFunasr) {
  auto& f = fx();
  const auto& want = f.meta["options"];
  auto o = options();
  o.hotwords = want["hotwords"].get<std::vector<std::string>>();
  o.language = want["language"].get<std::string>();
  o.itn = want["itn"].get<bool>();
  const auto& w = f.want;
  auto prompt = fn::build_prompt(*f.model, w.at("speech_001.feats").shape(0),
                                 batch1(w.at("speech_001.adaptor_out")), o);
  EXPECT_EQ(prompt.ids, want["source_ids"].get<std::vector<int>>());
  auto t = fn::transcribe(*f.model, clip("speech_001"), o);
  EXPECT_EQ(t.tokens, want["tokens"].get<std::vector<int>>());
  EXPECT_EQ(t.text, want["text"].get<std::string>());
}

// Longer audio is cut at the pause between two utterances; the pieces' transcripts are joined.
TEST(FunAsrNano, LongAudioInChunks) {
  auto& f = fx();
  const auto a = clip("speech_001"), b = clip("speech_003");
  const auto audio = mx::concatenate({a, mx::zeros({16000}), b});
  auto o = options();
  o.chunking = ominix::audio::chunk_options(2.5);  // cut between 1.25 and 2.5 s
  auto t = fn::transcribe(*f.model, audio, o);
  ASSERT_EQ(t.chunks, 2);
  const auto plan = ominix::audio::plan_chunks(audio, 16000, o.chunking);
  auto piece = [&](int i) {
    return fn::transcribe(
        *f.model,
        mx::slice(audio, {static_cast<int>(plan[i].begin)}, {static_cast<int>(plan[i].end)}), o);
  };
  const auto first = piece(0), second = piece(1);
  auto tokens = first.tokens;
  tokens.insert(tokens.end(), second.tokens.begin(), second.tokens.end());
  EXPECT_EQ(t.tokens, tokens);
  EXPECT_EQ(t.text, first.text + " " + second.text);
  EXPECT_EQ(first.chunks, 1);
}

// Without a pause to cut at, chunks overlap and their tokens are joined by aligning ids
// (audio::merge_untimed, tested on its own in audio_tests): the transcript is that join of the
// pieces' tokens, with each piece's closing EOS dropped but the last.
TEST(FunAsrNano, LongAudioWithoutPausesOverlaps) {
  auto& f = fx();
  const auto audio = mx::concatenate({clip("speech_001"), clip("speech_003")});  // no gap
  auto o = options();
  o.chunking = ominix::audio::chunk_options(1.5);
  o.chunking.min_pause_seconds = 1e9;  // no stretch counts as a pause
  const auto plan = ominix::audio::plan_chunks(audio, 16000, o.chunking);
  ASSERT_GT(plan.size(), 1u);
  ASSERT_LT(plan[1].begin, plan[0].end);  // they overlap
  const auto t = fn::transcribe(*f.model, audio, o);
  EXPECT_EQ(t.chunks, static_cast<int>(plan.size()));
  std::vector<int> eos;  // the LLM's config.json: one id or a list
  const auto config = ominix::tests::load_json(kDir / "Qwen3-0.6B" / "config.json");
  if (config["eos_token_id"].is_array())
    eos = config["eos_token_id"].get<std::vector<int>>();
  else
    eos.push_back(config["eos_token_id"].get<int>());
  std::vector<int> joined;
  std::vector<int> last_piece;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    auto piece =
        fn::transcribe(
            *f.model,
            mx::slice(audio, {static_cast<int>(plan[i].begin)}, {static_cast<int>(plan[i].end)}), o)
            .tokens;
    last_piece = piece;
    if (!piece.empty() && std::count(eos.begin(), eos.end(), piece.back())) piece.pop_back();
    if (i == 0) {
      joined = piece;
      continue;
    }
    const double shared =
        double(plan[i - 1].end - plan[i].begin) / double(plan[i - 1].end - plan[i - 1].begin);
    joined = ominix::audio::merge_untimed(joined, piece,
                                          static_cast<int>(std::lround(shared * joined.size())));
  }
  if (!last_piece.empty() && std::count(eos.begin(), eos.end(), last_piece.back()))
    joined.push_back(last_piece.back());
  EXPECT_EQ(t.tokens, joined);
  EXPECT_FALSE(t.text.empty());
}

// Paths the release does not take, against funasr (variants.*): an adaptor stacking 2 frames
// (funasr then fills only the adaptor's frames into the speech slots), use_low_frame_rate, and
// dataset_conf without the system prompt and with the empty think block.
TEST(FunAsrNano, VariantsMatchFunasr) {
  auto& f = fx();
  const auto v = ominix::io::load_safetensors(kDir / "variants.safetensors");
  const auto meta = ominix::tests::load_json(kDir / "variants.json");
  auto tensors = ominix::io::load_torch_zip(kDir / "model.pt");
  tensors.insert_or_assign("audio_adaptor.linear1.weight", v.at("linear1"));
  for (std::string name : {"k2", "k2_low_frame_rate"}) {
    const auto dir = scratch("variant_" + name);
    fs::copy_file(kDir / "variants" / name / "config.yaml", dir / "config.yaml",
                  fs::copy_options::overwrite_existing);
    ominix::io::save_safetensors(dir / "model.safetensors", tensors);
    auto model = fn::load_model(dir);
    const auto& enc = f.want.at("speech_001.encoder_out");
    const auto lens = mx::array({enc.shape(0)}, {1}, mx::int32);
    const auto adaptor = fn::adapt(*model, batch1(enc), lens);
    expect_rel(adaptor, batch1(v.at(name + ".adaptor_out")), 1e-5, name + ".adaptor_out");
    auto prompt = fn::build_prompt(*model, enc.shape(0), batch1(v.at(name + ".adaptor_out")));
    const auto& want = meta[name];
    EXPECT_EQ(prompt.ids, want["source_ids"].get<std::vector<int>>()) << name;
    EXPECT_EQ(prompt.speech_begin, want["fbank_beg"].get<int>()) << name;
    EXPECT_EQ(prompt.speech_length, want["fake_token_len"].get<int>()) << name;
    expect_rel(prompt.embeddings, batch1(v.at(name + ".inputs_embeds")), 1e-6,
               name + ".inputs_embeds");
    auto t = fn::transcribe(*model, clip("speech_001"), options());
    EXPECT_EQ(t.tokens, want["tokens"].get<std::vector<int>>()) << name;
    EXPECT_EQ(t.text, want["text"].get<std::string>()) << name;
    fs::remove_all(dir);
  }
}

// The same tensors as model.safetensors (what `ominix convert` writes) transcribe the same.
TEST(FunAsrNano, SafetensorsCheckpoint) {
  const auto dir = scratch("safetensors");
  ominix::io::save_safetensors(dir / "model.safetensors",
                               ominix::io::load_torch_zip(kDir / "model.pt"));
  auto model = fn::load_model(dir);
  auto t = fn::transcribe(*model, clip("speech_001"), options());
  const auto want = fx().meta["cases"]["speech_001"]["tokens"].get<std::vector<int>>();
  EXPECT_EQ(t.tokens, want);
  // A training checkpoint's layout: everything under "state_dict".
  ominix::io::TensorMap nested;
  for (auto& [k, v] : ominix::io::load_torch_zip(kDir / "model.pt"))
    nested.emplace("state_dict." + k, v);
  ominix::io::save_safetensors(dir / "model.safetensors", nested);
  EXPECT_EQ(fn::transcribe(*fn::load_model(dir), clip("speech_001"), options()).tokens, want);
  fs::remove_all(dir);
}

// The qwen3 hook: embeddings in give the logits token ids give, with and without a cache.
TEST(FunAsrNano, Qwen3EmbeddingsHook) {
  const auto dir = fixture("models/qwen3/qwen3_untied");
  auto llm = ominix::qwen3::load_from_tensors(dir, ominix::io::load_checkpoint(dir), dir.string());
  const auto want = ominix::io::load_safetensors(dir / "expected.safetensors");
  const auto ids = mx::astype(want.at("input_ids"), mx::int32);
  auto c1 = llm->make_cache();
  auto by_ids = (*llm)(ids, c1);
  auto c2 = llm->make_cache();
  auto by_embeddings = llm->forward_embeddings(llm->embed(ids), c2);
  EXPECT_TRUE(mx::array_equal(by_ids, by_embeddings).item<bool>());
  EXPECT_EQ(c2.offset(), ids.shape(1));
  expect_rel(by_embeddings, want.at("logits"), 1e-5, "qwen3_untied.logits");
  // Prefill embeddings, then decode one token id on the same cache = the full forward.
  const int L = ids.shape(1);
  auto head = mx::slice(ids, {0, 0}, {ids.shape(0), L - 1});
  auto last = mx::slice(ids, {0, L - 1}, {ids.shape(0), L});
  auto c3 = llm->make_cache();
  llm->forward_embeddings(llm->embed(head), c3);
  auto step = (*llm)(last, c3);
  expect_rel(step, mx::slice(by_ids, {0, L - 1, 0}, by_ids.shape()), 1e-5, "qwen3.step");
  EXPECT_THROW(llm->forward_embeddings(mx::zeros({1, 2, 3}), c3), ominix::InvalidArgument);
}

TEST(FunAsrNano, MissingTensorIsNamed) {
  const auto dir = scratch("missing");
  auto t = ominix::io::load_torch_zip(kDir / "model.pt");
  t.erase("audio_encoder.encoders.0.self_attn.fsmn_block.weight");
  t.erase("llm.model.layers.1.mlp.up_proj.weight");
  ominix::io::save_safetensors(dir / "model.safetensors", t);
  // The LLM's part is bound first, its keys without the "llm." prefix.
  expect_error<ominix::WeightError>([&] { fn::load_model(dir); },
                                    "model.layers.1.mlp.up_proj.weight");
  t.insert_or_assign(
      "llm.model.layers.1.mlp.up_proj.weight",
      ominix::io::load_torch_zip(kDir / "model.pt").at("llm.model.layers.1.mlp.up_proj.weight"));
  ominix::io::save_safetensors(dir / "model.safetensors", t);
  expect_error<ominix::WeightError>([&] { fn::load_model(dir); },
                                    "audio_encoder.encoders.0.self_attn.fsmn_block.weight");
  fs::remove_all(dir);
}

TEST(FunAsrNano, WrongShapeIsNamed) {
  const auto dir = scratch("shape");
  auto t = ominix::io::load_torch_zip(kDir / "model.pt");
  t.insert_or_assign("audio_adaptor.linear1.weight", mx::zeros({48, 31}));
  ominix::io::save_safetensors(dir / "model.safetensors", t);
  expect_error<ominix::WeightError>([&] { fn::load_model(dir); }, "audio_adaptor.linear1.weight");
  fs::remove_all(dir);
}

TEST(FunAsrNano, BadConfigFieldIsNamed) {
  const auto dir = scratch("config");
  fs::copy_file(kDir / "model.pt", dir / "model.pt");
  const auto yaml = read(kDir / "config.yaml");
  auto edit = [&](const std::string& from, const std::string& to) {
    auto s = yaml;
    const auto p = s.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    write(dir / "config.yaml", s.replace(p, from.size(), to));
  };
  edit("attention_heads: 4\n  linear_units", "attention_heads: 0\n  linear_units");
  expect_error<ominix::ConfigError>([&] { fn::load_model(dir); },
                                    "audio_encoder_conf.attention_heads");
  edit("num_blocks: 2", "num_blocks: two");
  expect_error<ominix::ConfigError>([&] { fn::load_model(dir); }, "audio_encoder_conf.num_blocks");
  edit("model: FunASRNano", "model: Paraformer");
  expect_error<ominix::UnsupportedError>([&] { fn::load_model(dir); }, "model 'Paraformer'");
  edit("init_param_path: Qwen3-0.6B\naudio_adaptor", "init_param_path: Qwen3-1.7B\naudio_adaptor");
  expect_error<ominix::IoError>([&] { fn::load_model(dir); }, "llm_conf.init_param_path");
  fs::remove_all(dir);
}

TEST(FunAsrNano, BadInputsAreClearErrors) {
  auto& f = fx();
  EXPECT_THROW(fn::load_model("/nonexistent/funasr_nano"), ominix::IoError);
  EXPECT_THROW(fn::transcribe(*f.model, mx::zeros({0})), ominix::InvalidArgument);
  EXPECT_THROW(fn::transcribe(*f.model, mx::zeros({2, 400})), ominix::InvalidArgument);
  // Shorter than a frame: the frame is shortened to the audio as WavFrontend does (funasr's kaldi
  // fbank then rejects so few FFT bins for 80 mel banks; ours gives one frame); a single sample
  // is too short for any window.
  EXPECT_THROW(fn::transcribe(*f.model, mx::full({1}, 0.1f)), ominix::InvalidArgument);
  for (int n : {7, 100}) {
    auto o = options();
    o.max_new_tokens = 2;
    EXPECT_EQ(fn::transcribe(*f.model, mx::full({n}, 0.1f), o).tokens.size(), 2u) << n;
  }
  EXPECT_THROW(fn::encode(*f.model, mx::zeros({1, 4, 80}), mx::array({4})),
               ominix::InvalidArgument);
}

// At the release's sizes with the real Qwen3 tokenizer (tools/fixtures/check_funasr_nano_full.py
// writes the 2 GB model and funasr's results): the prompt ids, 16 greedy tokens and the text.
// Not in ctest (tests/models/funasr_nano.cmake); run by hand.
TEST(FunAsrNano, FullSize) {
  const char* dir = std::getenv("OMINIX_FUNASR_NANO_FULL");
  ASSERT_NE(dir, nullptr) << "set OMINIX_FUNASR_NANO_FULL to check_funasr_nano_full.py's directory";
  const auto want = ominix::tests::load_json(fs::path(dir) / "expected.json");
  auto model = fn::load_model(dir);
  const auto wav = clip("speech_001");
  const auto feats = fn::features(*model, wav);
  const auto lens = mx::array({feats.shape(0)}, {1}, mx::int32);
  const auto enc = fn::encode(*model, batch1(feats), lens);
  const auto prompt = fn::build_prompt(*model, feats.shape(0), fn::adapt(*model, enc, lens));
  EXPECT_EQ(prompt.ids, want["source_ids"].get<std::vector<int>>());
  auto o = options();
  o.max_new_tokens = 16;
  auto t = fn::transcribe(*model, wav, o);
  EXPECT_EQ(t.tokens, want["tokens"].get<std::vector<int>>());
  EXPECT_EQ(t.text, want["text"].get<std::string>());
  testing::Test::RecordProperty("transcribe_seconds", std::to_string(t.compute_seconds));
}

// Audio too short for the front end says so (not a bare shape complaint): an empty file through
// `ominix transcribe` reaches this with 0 samples.
TEST(FunAsrNano, TooShortAudioSaysSo) {
  auto& f = fx();
  for (int n : {0, 1}) {
    try {
      fn::transcribe(*f.model, mx::zeros({n}));
      ADD_FAILURE() << n << " samples: no error";
    } catch (const ominix::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(fmt::format("audio of {} sample(s) is too short", n)),
                std::string::npos)
          << e.what();
    }
  }
}

// Clips shorter than a second and 1 s of silence (tools/fixtures/gen_funasr_nano_short.py):
// funasr's greedy tokens and text exactly. The frame of a clip shorter than 25 ms is shortened to
// the clip as WavFrontend does.
TEST(FunAsrNano, ShortClipsAndSilenceMatchFunasr) {
  auto& f = fx();
  const auto want = ominix::tests::load_json(fixture("models/funasr_nano/short.json"));
  ASSERT_EQ(want["clips"].size(), 5u);
  for (const auto& c : want["clips"]) {
    const auto name = c["file"].get<std::string>();
    const auto short_dir = fixture("models/paraformer/short");
    const auto path = fs::exists(short_dir / name) ? short_dir / name : fixture("audio/" + name);
    const auto x = ominix::audio::load_audio(path, {.sample_rate = 16000}).samples;
    ASSERT_EQ(x.shape(0), c["frames"].get<int>()) << name;
    const auto t =
        fn::transcribe(*f.model, x, {.max_new_tokens = want["max_new_tokens"].get<int>()});
    EXPECT_EQ(t.tokens, c["tokens"].get<std::vector<int>>()) << name;
    EXPECT_EQ(t.text, c["text"].get<std::string>()) << name;
    EXPECT_EQ(t.chunks, 1) << name;
  }
}
