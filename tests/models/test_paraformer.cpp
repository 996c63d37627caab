// Paraformer stage by stage against funasr (tools/fixtures/gen_paraformer.py): fp32 encoder
// output, CIF alphas and acoustic embeddings, decoder log-probabilities by normalised error
// <= 1e-5; CIF fired positions, tokens and text exactly; the batch equal to the singles.
#include <unistd.h>

#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/audio/io.h"
#include "ominix/base/error.h"
#include "ominix/io/safetensors.h"
#include "ominix/models/paraformer.h"
#include "support/testing.h"

namespace mx = mlx::core;
namespace pf = ominix::paraformer;
using ominix::tests::fixture;

namespace {

const std::filesystem::path kDir = fixture("models/paraformer/tiny");

struct Fixture {
  pf::ModelPtr model = pf::load_model(kDir);
  ominix::io::TensorMap want = ominix::io::load_safetensors(kDir / "expected.safetensors");
  nlohmann::json meta = ominix::tests::load_json(kDir / "expected.json");
  pf::Vocabulary vocab = pf::Vocabulary::load(kDir / "tokens.json");
};
Fixture& fx() {
  static Fixture f;
  return f;
}

using ominix::tests::expect_rel;

void check_case(const std::string& c) {
  auto& f = fx();
  const auto& w = f.want;
  auto enc = pf::encode(*f.model, w.at(c + ".feats"), w.at(c + ".feat_lens"));
  expect_rel(enc.out, w.at(c + ".encoder_out"), 1e-5, c + " encoder_out");
  // The rest runs from funasr's encoder output so that each stage is checked alone.
  pf::EncoderOutput ref_enc{w.at(c + ".encoder_out"), w.at(c + ".encoder_lens")};
  auto cif = pf::predict(*f.model, ref_enc);
  expect_rel(cif.alphas, w.at(c + ".alphas"), 1e-5, c + " alphas");
  // Fired positions exactly: peaks >= 1.
  EXPECT_TRUE(mx::array_equal(mx::greater_equal(cif.peaks, mx::array(1.0f)),
                              mx::greater_equal(w.at(c + ".peaks"), mx::array(1.0f)))
                  .item<bool>())
      << c;
  expect_rel(cif.peaks, w.at(c + ".peaks"), 1e-5, c + " peaks");
  EXPECT_TRUE(mx::array_equal(cif.token_num, w.at(c + ".token_num")).item<bool>()) << c;
  expect_rel(cif.acoustic_embeds, w.at(c + ".acoustic_embeds"), 1e-5, c + " acoustic_embeds");
  pf::CifOutput ref_cif{w.at(c + ".acoustic_embeds"), w.at(c + ".token_num"), cif.alphas,
                        cif.peaks};
  auto logp = pf::decode(*f.model, ref_enc, ref_cif);
  expect_rel(logp, w.at(c + ".logprobs"), 1e-5, c + " logprobs");
}

}  // namespace

TEST(Paraformer, SingleStages) {
  check_case("single");
}
TEST(Paraformer, BatchStages) {
  check_case("batch");
}

TEST(Paraformer, Postprocess) {
  auto& f = fx();
  for (const auto& c : f.meta["postprocess"]) {
    std::vector<std::string> toks = c["tokens"];
    std::vector<int> ids;
    for (const auto& t : toks)
      for (std::size_t i = 0; i < f.vocab.size(); ++i)
        if (f.vocab.token(static_cast<int>(i)) == t) ids.push_back(static_cast<int>(i));
    EXPECT_EQ(f.vocab.text(ids), c["text"].get<std::string>());
  }
}

// Real speech end to end with our frontend; tokens and text as funasr's.
TEST(Paraformer, TranscribeEndToEndAndBatchEqualsSingles) {
  auto& f = fx();
  auto a = ominix::audio::load_wav(fixture("audio/speech_001.wav")).samples;
  auto b = ominix::audio::load_wav(fixture("audio/speech_003.wav")).samples;
  auto one = pf::transcribe(*f.model, a, f.vocab);
  EXPECT_EQ(one.tokens, f.meta["tokens"]["single.0"].get<std::vector<int>>());
  EXPECT_EQ(one.text, f.meta["text"]["single.0"].get<std::string>());
  auto batch = pf::transcribe_batch(*f.model, {a, b}, f.vocab);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].tokens, one.tokens);
  EXPECT_EQ(batch[1].tokens, f.meta["tokens"]["batch.1"].get<std::vector<int>>());
  EXPECT_EQ(batch[1].tokens, pf::transcribe(*f.model, b, f.vocab).tokens);
  EXPECT_EQ(batch[1].text, f.meta["text"]["batch.1"].get<std::string>());
}

TEST(Paraformer, MissingModelIsClearError) {
  EXPECT_THROW(pf::load_model("/nonexistent/paraformer"), ominix::IoError);
}

// funasr's sentence_postprocess and abbr_dispose on generated token lists
// (tools/fixtures/gen_paraformer_postprocess.py).
TEST(Paraformer, PostprocessMatchesFunasr) {
  const auto cases = ominix::tests::load_json(fixture("models/paraformer/postprocess.json"));
  for (const auto& c : cases["sentence_postprocess"]) {
    const auto toks = c["tokens"].get<std::vector<std::string>>();
    std::vector<int> ids(toks.size());
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>(i);
    EXPECT_EQ(pf::Vocabulary(toks).text(ids), c["text"].get<std::string>()) << c.dump();
  }
  for (const auto& c : cases["abbr_dispose"])
    EXPECT_EQ(pf::abbr_dispose(c["words"].get<std::vector<std::string>>()),
              c["out"].get<std::vector<std::string>>())
        << c.dump();
}

namespace {

// The two recorded utterances, alternating n times, with `gap` seconds of digital silence around
// each.
mx::array long_audio(int n, double gap) {
  auto a = ominix::audio::load_wav(fixture("audio/speech_001.wav")).samples;
  auto b = ominix::audio::load_wav(fixture("audio/speech_003.wav")).samples;
  const int g = static_cast<int>(gap * 16000);
  std::vector<mx::array> parts{mx::zeros({g})};
  for (int i = 0; i < n; ++i) parts.push_back(i % 2 ? b : a), parts.push_back(mx::zeros({g}));
  return mx::concatenate(parts);
}

}  // namespace

// Long audio with pauses (tools/fixtures/gen_paraformer_long.py): the two recorded utterances,
// trimmed to whole 10 ms frames, alternated 12 times with 0.6 s of silence between them and 0.3 s
// at the ends (22.9 s), in chunks of at most 3 s. The plan cuts in the middle of every gap, so each
// chunk holds one utterance, and the transcript equals the concatenation of funasr's transcripts
// of those 12 pieces: no token dropped or doubled at the cuts.
TEST(Paraformer, LongAudioCutAtPausesEqualsFunasr) {
  auto& f = fx();
  const auto want = ominix::tests::load_json(fixture("models/paraformer/long_audio.json"));
  const int frame = want["frame"], n = want["utterances"];
  std::vector<mx::array> utts;
  for (const char* name : {"audio/speech_001.wav", "audio/speech_003.wav"}) {
    auto u = ominix::audio::load_wav(fixture(name)).samples;
    utts.push_back(mx::slice(u, {0}, {u.shape(0) / frame * frame}));
  }
  std::vector<mx::array> parts{mx::zeros({want["edge_frames"].get<int>() * frame})};
  for (int i = 0; i < n; ++i)
    parts.push_back(utts[i % 2]),
        parts.push_back(mx::zeros(
            {(i + 1 < n ? want["gap_frames"].get<int>() : want["edge_frames"].get<int>()) *
             frame}));
  const auto x = mx::concatenate(parts);
  ASSERT_EQ(x.shape(0), want["samples"].get<int>());

  const pf::TranscribeOptions opts{
      .chunking = {.max_seconds = 3.0, .min_seconds = 0.5, .overlap_seconds = 0.5},
      .batch_size = 1};
  const auto plan = ominix::audio::plan_chunks(x, 16000, opts.chunking);
  ASSERT_EQ(plan.size(), want["chunks"].size());
  for (std::size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].begin, want["chunks"][i]["begin"].get<std::int64_t>()) << i;
    EXPECT_EQ(plan[i].end, want["chunks"][i]["end"].get<std::int64_t>()) << i;
  }
  for (std::size_t i = 0; i < plan.size(); ++i) {  // each piece alone, as funasr ran it
    auto piece = mx::slice(x, {static_cast<int>(plan[i].begin)}, {static_cast<int>(plan[i].end)});
    EXPECT_EQ(pf::transcribe(*f.model, piece, f.vocab, opts).tokens,
              want["chunks"][i]["tokens"].get<std::vector<int>>())
        << "piece " << i;
  }
  const auto got = pf::transcribe(*f.model, x, f.vocab, opts);
  EXPECT_EQ(got.chunks, n);
  EXPECT_EQ(got.tokens, want["tokens"].get<std::vector<int>>());
  EXPECT_EQ(got.text, want["text"].get<std::string>());
  ASSERT_EQ(got.token_times.size(), got.tokens.size());
  EXPECT_TRUE(std::is_sorted(got.token_times.begin(), got.token_times.end()));
  // All chunks in one padded batch: the same tokens (funasr's own padded batch loses the last
  // token of the 6 shorter pieces here, see docs/models/paraformer.md).
  auto all = opts;
  all.batch_size = 0;
  EXPECT_EQ(pf::transcribe(*f.model, x, f.vocab, all).tokens, got.tokens);
}

// Long audio without usable pauses (pause finding off; tools/fixtures/gen_paraformer_long.py):
// 3 s chunks overlapping by 1 s. Each chunk's tokens and CIF fire times equal funasr's, and the
// transcript is funasr's chunk transcripts joined by merge_chunks: the earlier chunk's tokens up to
// an agreed token in the overlap, the later chunk's after it (the joining itself is tested on
// synthetic sequences in tests/audio/test_chunk.cpp).
TEST(Paraformer, LongAudioOverlappingChunksSplice) {
  auto& f = fx();
  const auto want =
      ominix::tests::load_json(fixture("models/paraformer/long_audio.json"))["overlap"];
  const auto x = long_audio(6, 0.1);
  ASSERT_EQ(x.shape(0), want["samples"].get<int>());
  const pf::TranscribeOptions opts{.chunking = {.max_seconds = 3.0,
                                                .min_seconds = 1.0,
                                                .overlap_seconds = 1.0,
                                                .min_pause_seconds = 1000.0},
                                   .batch_size = 1};
  const auto plan = ominix::audio::plan_chunks(x, 16000, opts.chunking);
  ASSERT_EQ(plan.size(), want["chunks"].size());
  std::vector<std::vector<ominix::audio::TimedToken>> funasr;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const auto& w = want["chunks"][i];
    ASSERT_EQ(plan[i].begin, w["begin"].get<std::int64_t>()) << i;
    ASSERT_EQ(plan[i].end, w["end"].get<std::int64_t>()) << i;
    const auto ids = w["tokens"].get<std::vector<int>>();
    const auto times = w["times"].get<std::vector<double>>();
    funasr.emplace_back();
    for (std::size_t k = 0; k < ids.size(); ++k) funasr.back().push_back({ids[k], times[k]});
    auto piece = mx::slice(x, {static_cast<int>(plan[i].begin)}, {static_cast<int>(plan[i].end)});
    const auto t = pf::transcribe(*f.model, piece, f.vocab, opts);
    EXPECT_EQ(t.tokens, ids) << "chunk " << i;
    ASSERT_EQ(t.token_times.size(), times.size()) << "chunk " << i;
    for (std::size_t k = 0; k < times.size(); ++k)
      EXPECT_NEAR(t.token_times[k] + plan[i].begin / 16000.0, times[k], 1e-6) << i << ", " << k;
  }
  const auto got = pf::transcribe(*f.model, x, f.vocab, opts);
  EXPECT_EQ(got.chunks, static_cast<int>(plan.size()));
  std::vector<int> joined;
  for (const auto& t : ominix::audio::merge_chunks(plan, funasr, 16000)) joined.push_back(t.id);
  EXPECT_EQ(got.tokens, joined);
  // The first chunk's tokens before the first overlap are all kept, in order.
  std::vector<int> head;
  for (const auto& t : funasr.front())
    if (t.time < plan[1].begin / 16000.0) head.push_back(t.id);
  ASSERT_LE(head.size(), got.tokens.size());
  EXPECT_TRUE(std::equal(head.begin(), head.end(), got.tokens.begin()));
}

// Clips too short for a token to fire and 1 s of silence (tools/fixtures/gen_paraformer_short.py):
// funasr's transcript of each file (none fires: the empty transcript, funasr returning no result),
// alone and in a batch after a longer clip, which gives the tokens of the single run (funasr's own
// padded batch raises or fires a token on padding there, see docs/models/paraformer.md).
TEST(Paraformer, ShortClipsGiveFunasrsTranscript) {
  auto& f = fx();
  const auto dir = fixture("models/paraformer/short");
  const auto want = ominix::tests::load_json(dir / "expected.json");
  const auto speech = ominix::audio::load_audio(fixture("audio/speech_001.wav")).samples;
  ASSERT_EQ(want["clips"].size(), 5u);
  for (const auto& c : want["clips"]) {
    const auto name = c["file"].get<std::string>();
    const auto path = std::filesystem::exists(dir / name) ? dir / name : fixture("audio/" + name);
    const auto x = ominix::audio::load_audio(path, {.sample_rate = 16000}).samples;
    ASSERT_EQ(x.shape(0), c["frames"].get<int>()) << name;
    const auto tokens = c["tokens"].get<std::vector<int>>();
    const auto one = pf::transcribe(*f.model, x, f.vocab);
    EXPECT_EQ(one.tokens, tokens) << name;
    EXPECT_EQ(one.text, c["text"].get<std::string>()) << name;
    EXPECT_EQ(one.token_times.size(), tokens.size()) << name;
    EXPECT_EQ(one.chunks, 1) << name;
    const auto batch = pf::transcribe_batch(*f.model, {speech, x}, f.vocab, {.batch_size = 0});
    ASSERT_EQ(batch.size(), 2u);
    EXPECT_EQ(batch[0].text, want["speech_001.wav"].get<std::string>()) << name;
    EXPECT_EQ(batch[1].tokens, tokens) << name;
    EXPECT_EQ(batch[1].text, c["text"].get<std::string>()) << name;
  }
}

// No audio at all (a valid file with no frames): nothing to hear, an empty transcript, alone and
// beside speech.
TEST(Paraformer, EmptyAudioGivesEmptyTranscript) {
  auto& f = fx();
  const auto empty = ominix::audio::load_audio(fixture("audio/empty_frames.wav")).samples;
  ASSERT_EQ(empty.shape(0), 0);
  const auto one = pf::transcribe(*f.model, empty, f.vocab);
  EXPECT_TRUE(one.tokens.empty());
  EXPECT_EQ(one.text, "");
  EXPECT_EQ(one.audio_seconds, 0.0);
  const auto speech = ominix::audio::load_audio(fixture("audio/speech_001.wav")).samples;
  // And shorter than one 25 ms fbank window (no feature frame), in the same batch.
  const auto under_a_frame = mx::full({300}, 0.1f);
  const auto batch =
      pf::transcribe_batch(*f.model, {empty, speech, under_a_frame}, f.vocab, {.batch_size = 0});
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].text, "");
  EXPECT_EQ(batch[1].tokens, f.meta["tokens"]["single.0"].get<std::vector<int>>());
  EXPECT_TRUE(batch[2].tokens.empty());
  EXPECT_EQ(batch[2].text, "");
}

// Stage functions with no token: decode gives [B, 0, V] log-probabilities, not an MLX error.
TEST(Paraformer, DecodeWithNoTokens) {
  auto& f = fx();
  const auto x = ominix::audio::load_audio(fixture("audio/float.wav")).samples;
  const auto feats = pf::features(*f.model, x);
  ASSERT_EQ(feats.ndim(), 2);
  const auto enc =
      pf::encode(*f.model, mx::expand_dims(feats, 0), mx::array({feats.shape(0)}, {1}, mx::int32));
  const auto cif = pf::predict(*f.model, enc);
  ASSERT_EQ(cif.acoustic_embeds.shape(1), 0);
  const auto logp = pf::decode(*f.model, enc, cif);
  EXPECT_EQ(logp.shape(0), 1);
  EXPECT_EQ(logp.shape(1), 0);
}

namespace {

// A copy of the tiny model in a fresh temporary directory, for breaking one file of it.
struct ModelCopy {
  std::filesystem::path dir;
  explicit ModelCopy(const std::string& name)
      : dir(std::filesystem::temp_directory_path() /
            fmt::format("ominix_paraformer_{}_{}", name, ::getpid())) {
    std::filesystem::remove_all(dir);
    std::filesystem::copy(kDir, dir);
  }
  ~ModelCopy() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  // config.yaml with `from` (which must be there once) replaced by `to`.
  void edit_config(const std::string& from, const std::string& to) const {
    std::ifstream in(dir / "config.yaml");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = s.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    std::ofstream(dir / "config.yaml") << s;
  }
  // `file` replaced by an empty directory of that name.
  void make_directory(const std::string& file) const {
    std::filesystem::remove(dir / file);
    std::filesystem::create_directory(dir / file);
  }
};

// f throws E (an ominix::Error) whose message holds `needle`.
template <typename E, typename F>
void expect_error(F&& f, const std::string& needle, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << what << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": not the expected ominix::Error: " << e.what();
  }
}

}  // namespace

// A broken model directory fails at load with an ominix::Error naming the file and field: never a
// raw filesystem or stream exception, and no setting silently misread (a window kaldi does not
// know was taken as povey; frame and LFR sizes of 0 failed only at the first transcription).
TEST(Paraformer, BrokenModelDirectoriesAreClearErrors) {
  {
    ModelCopy m("config_dir");
    m.make_directory("config.yaml");
    expect_error<ominix::IoError>([&] { pf::load_model(m.dir); }, "config.yaml: not a regular file",
                                  "config.yaml a directory");
  }
  {
    ModelCopy m("mvn_dir");
    m.make_directory("am.mvn");
    expect_error<ominix::IoError>([&] { pf::load_model(m.dir); }, "am.mvn: cannot open CMVN file",
                                  "am.mvn a directory");
  }
  {
    ModelCopy m("tokens_dir");
    m.make_directory("tokens.json");
    expect_error<ominix::IoError>([&] { pf::Vocabulary::load(m.dir / "tokens.json"); },
                                  "tokens.json: not a regular file", "tokens.json a directory");
  }
  {
    ModelCopy m("tokens_bad");
    std::ofstream(m.dir / "tokens.json") << "[\"a\", 1E400]";
    expect_error<ominix::FormatError>([&] { pf::Vocabulary::load(m.dir / "tokens.json"); },
                                      "tokens.json: not valid JSON", "tokens.json out of range");
  }
  const struct {
    const char *from, *to, *needle;
  } config_cases[] = {
      {"window: hamming", "window: blah", "frontend_conf.window 'blah'"},
      {"fs: 16000", "fs: 0", "frontend_conf.fs must be positive"},
      {"frame_shift: 10", "frame_shift: 0", "frontend_conf.frame_shift must be positive"},
      {"lfr_n: 6", "lfr_n: 0", "frontend_conf.lfr_n must be positive"},
      {"  kernel_size: 11\n  sanm_shfit: 0\n  selfattention",
       "  kernel_size: 0\n  sanm_shfit: 0\n  selfattention",
       "encoder_conf.kernel_size must be positive"},
      {"  num_blocks: 2\n  dropout_rate: 0.1\n  positional_dropout_rate: 0.1\n  attention",
       "  num_blocks: -1\n  dropout_rate: 0.1\n  positional_dropout_rate: 0.1\n  attention",
       "encoder_conf.num_blocks must be positive"},
      {"input_layer: pe", "input_layer: [pe]", "config.yaml"},
  };
  for (const auto& c : config_cases) {
    ModelCopy m("config");
    m.edit_config(c.from, c.to);
    expect_error<ominix::ConfigError>([&] { pf::load_model(m.dir); }, c.needle, c.to);
  }
  ModelCopy m("threshold");
  m.edit_config("threshold: 1.0", "threshold: 0.9");
  expect_error<ominix::UnsupportedError>(
      [&] { pf::load_model(m.dir); }, "predictor_conf.threshold 0.9 is not supported", "threshold");
}
