// Paraformer stage by stage against funasr (tools/fixtures/gen_paraformer.py): fp32 encoder
// output, CIF alphas and acoustic embeddings, decoder log-probabilities by normalised error
// <= 1e-5; CIF fired positions, tokens and text exactly; the batch equal to the singles.
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

void expect_rel(const mx::array& got, const mx::array& want, double tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto d = ominix::tests::diff(got, want);
  EXPECT_LE(d.rel, tol) << what << ": max abs " << d.max_abs;
}

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
