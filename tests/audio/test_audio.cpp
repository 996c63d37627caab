// The audio wing against the references of tools/fixtures/gen_audio.py: soundfile (decoding),
// soxr (resampling), kaldi-native-fbank (fbank), librosa and Whisper (log-mel), FunASR (LFR,
// CMVN), on real speech and synthetic signals; and bad audio, which must give a clear error or a
// defined result.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/audio/cmvn.h"
#include "ominix/audio/fbank.h"
#include "ominix/audio/io.h"
#include "ominix/audio/lfr.h"
#include "ominix/audio/log_mel.h"
#include "ominix/audio/resample.h"
#include "ominix/base/error.h"
#include "support/testing.h"

using namespace ominix;
namespace mx = mlx::core;
namespace fs = std::filesystem;

namespace {

fs::path audio_file(const std::string& name) {
  return tests::fixture("audio/" + name);
}

const io::TensorMap& expected() {
  static io::TensorMap t = io::load_safetensors(audio_file("expected.safetensors"));
  return t;
}
mx::array E(const std::string& key) {
  return expected().at(key);
}

const nlohmann::json& cases(const char* group) {
  static nlohmann::json j = tests::load_json(audio_file("cases.json"));
  return j.at(group);
}

// "file:NAME" is a WAV in the fixture directory; anything else a tensor in expected.safetensors.
mx::array input(const std::string& ref) {
  if (ref.rfind("file:", 0) == 0) return audio::load_audio(audio_file(ref.substr(5))).samples;
  return E(ref);
}

// Runs `f`, expects it to throw E with every one of `parts` in the message.
template <typename Err, typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const Err& e) {
    std::string what = e.what();
    for (const auto& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << what << "\n  lacks: " << p;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// Keeps the measured errors in the test report (--gtest_output=json|xml).
void record(const std::string& what, const tests::Diff& d) {
  ::testing::Test::RecordProperty(what + ".rel", fmt::format("{:.3g}", d.rel));
  ::testing::Test::RecordProperty(what + ".max_abs", fmt::format("{:.3g}", d.max_abs));
}

float at(const mx::array& a, int i) {
  auto v = mx::slice(mx::flatten(a), {i}, {i + 1});
  v.eval();
  return v.item<float>();
}

// A scratch directory removed at the end of each test.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("ominix_audio_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

// ------------------------------------------------------------------------------------ decoding

// libsndfile gives soundfile.read(dtype="float32")'s samples bit for bit (both scale PCM by
// 1/2^(bits-1)); Vorbis is a lossy float decoder, compared to 1e-6.
TEST(AudioLoad, DecodesLikeSoundfile) {
  for (const auto& c : cases("decode")) {
    const std::string file = c["file"];
    SCOPED_TRACE(file);
    auto a = audio::load_audio(audio_file(file), {.mono = false});
    EXPECT_EQ(a.sample_rate, c["sample_rate"].get<int>());
    EXPECT_EQ(a.channels, c["channels"].get<int>());
    EXPECT_EQ(a.frames(), c["frames"].get<int>());
    EXPECT_EQ(a.samples.dtype(), mx::float32);
    auto want = E(c["key"]);
    ASSERT_EQ(a.samples.shape(), want.shape());
    if (a.frames() == 0) continue;
    OMINIX_EXPECT_CLOSE(a.samples, want, file.find(".ogg") != std::string::npos ? 1e-6 : 0.0);
  }
}

TEST(AudioLoad, MixesDownByTheMeanOfChannels) {
  for (const char* file : {"stereo.wav", "eight_channels.wav"}) {
    SCOPED_TRACE(file);
    auto mono = audio::load_audio(audio_file(file));
    auto want = mx::mean(
        E(std::string("decode.") + (file[0] == 's' ? "stereo_wav" : "eight_channels_wav")), 0);
    EXPECT_EQ(mono.samples.ndim(), 1);
    EXPECT_EQ(mono.channels, file[0] == 's' ? 2 : 8);
    OMINIX_EXPECT_CLOSE(mono.samples, want, 1e-7);
  }
  auto kept = audio::load_audio(audio_file("eight_channels.wav"), {.mono = false});
  EXPECT_EQ(kept.samples.shape(), (mx::Shape{8, 1000}));
  auto one = audio::load_audio(audio_file("pcm16.wav"), {.mono = false});
  EXPECT_EQ(one.samples.shape(), (mx::Shape{1, 2000}));  // channels kept: always [C, T]
}

TEST(AudioLoad, FileWithNoFramesIsEmptyNotAnError) {
  auto a = audio::load_audio(audio_file("empty_frames.wav"));
  EXPECT_EQ(a.samples.shape(), (mx::Shape{0}));
  EXPECT_EQ(a.sample_rate, 16000);
  EXPECT_EQ(audio::fbank(a.samples).shape(), (mx::Shape{0, 23}));
  EXPECT_EQ(audio::log_mel(a.samples).shape(), (mx::Shape{0, 80}));
}

TEST(AudioLoad, ResamplesToTheRequestedRate) {
  auto a = audio::load_audio(audio_file("pcm16.wav"), {.sample_rate = 8000});
  EXPECT_EQ(a.sample_rate, 8000);
  auto direct = audio::resample(audio::load_audio(audio_file("pcm16.wav")).samples, 16000, 8000);
  OMINIX_EXPECT_CLOSE(a.samples, direct, 0.0);
  auto same = audio::load_audio(audio_file("pcm16.wav"), {.sample_rate = 16000});
  EXPECT_EQ(same.frames(), 2000);
  expect_error<InvalidArgument>(
      [] { audio::load_audio(audio_file("pcm16.wav"), {.sample_rate = 0}); },
      {"pcm16.wav", "sample rate"});
}

TEST(AudioLoad, BadFilesGiveClearErrors) {
  expect_error<IoError>([] { audio::load_audio(audio_file("no_such_file.wav")); },
                        {"no_such_file.wav", "no such file"});
  expect_error<IoError>([] { audio::load_audio(tests::fixture("audio")); }, {"directory"});
  expect_error<FormatError>([] { audio::load_audio(audio_file("empty.wav")); },
                            {"empty.wav", "empty"});
  expect_error<FormatError>([] { audio::load_audio(audio_file("not_audio.wav")); },
                            {"not_audio.wav", "not a readable audio file"});
  expect_error<FormatError>([] { audio::load_audio(audio_file("truncated.wav")); },
                            {"truncated.wav", "truncated", "allow_truncated"});
  expect_error<FormatError>([] { audio::load_audio(audio_file("truncated.flac")); },
                            {"truncated.flac", "truncated", "2000 frames"});
  expect_error<FormatError>([] { audio::load_audio(audio_file("truncated.ogg")); },
                            {"truncated.ogg", "malformed"});
  expect_error<FormatError>([] { audio::load_audio(audio_file("nan.wav")); },
                            {"nan.wav", "2 32-bit float samples are NaN or infinite", "frame 17"});
}

TEST(AudioLoad, TruncatedFilesCanBeReadOnRequest) {
  auto full = E("decode.pcm16_wav");
  for (const char* file : {"truncated.wav", "truncated.flac"}) {
    SCOPED_TRACE(file);
    auto a = audio::load_audio(audio_file(file), {.allow_truncated = true});
    // Half of the WAV's data is there; the FLAC's only frame (4096 samples a block) is cut short.
    ASSERT_EQ(a.frames(), file[10] == 'w' ? 989 : 0);
    if (a.frames() == 0) continue;
    OMINIX_EXPECT_CLOSE(a.samples, mx::slice(mx::reshape(full, {-1}), {0}, {a.frames()}), 0.0);
  }
}

TEST(AudioLoad, NonFiniteSamplesPassThroughOnRequest) {
  auto a = audio::load_audio(audio_file("nan.wav"), {.allow_non_finite = true});
  EXPECT_TRUE(std::isnan(at(a.samples, 17)));
  EXPECT_TRUE(std::isinf(at(a.samples, 40)));
  EXPECT_TRUE(std::isfinite(at(a.samples, 16)));
}

// ------------------------------------------------------------------------------------ writing

TEST(AudioSave, Pcm16RoundTripsExactlyAndClips) {
  TempDir dir;
  std::vector<float> v;
  for (int k = -32768; k < 32768; k += 97) v.push_back(k / 32768.0f);
  v.push_back(1.5f);   // clipped to 32767 / 32768
  v.push_back(-2.0f);  // clipped to -1
  v.push_back(0.3f);   // rounded to the nearest step
  const int n = static_cast<int>(v.size());
  audio::save_wav(dir / "x.wav", mx::array(v.data(), {n}), 16000);
  auto a = audio::load_audio(dir / "x.wav");
  EXPECT_EQ(a.sample_rate, 16000);
  ASSERT_EQ(a.frames(), n);
  OMINIX_EXPECT_CLOSE(mx::slice(a.samples, {0}, {n - 3}), mx::array(v.data(), {n - 3}), 0.0);
  EXPECT_EQ(at(a.samples, n - 3), 32767 / 32768.0f);
  EXPECT_EQ(at(a.samples, n - 2), -1.0f);
  EXPECT_EQ(at(a.samples, n - 1), std::nearbyint(0.3f * 32768) / 32768.0f);
}

TEST(AudioSave, Float32AndChannelsRoundTrip) {
  TempDir dir;
  auto x = mx::random::normal({2, 500}, mx::float32, 0.0f, 1.5f, mx::random::key(3));
  audio::save_wav(dir / "f.wav", x, 44100, {.format = audio::WavFormat::float32});
  auto a = audio::load_audio(dir / "f.wav", {.mono = false});
  EXPECT_EQ(a.sample_rate, 44100);
  EXPECT_EQ(a.channels, 2);
  OMINIX_EXPECT_CLOSE(a.samples, x, 0.0);
}

TEST(AudioSave, ReplacesAtomicallyAndLeavesNoTemporaryFiles) {
  TempDir dir;
  auto target = dir / "out.wav";
  audio::save_wav(target, mx::zeros({100}), 16000);
  audio::save_wav(target, mx::full({300}, 0.5f), 8000);
  auto a = audio::load_audio(target);
  EXPECT_EQ(a.frames(), 300);
  EXPECT_EQ(a.sample_rate, 8000);
  // A refused write leaves the previous file as it was.
  auto bad = mx::array({0.1f, std::numeric_limits<float>::quiet_NaN()});
  expect_error<InvalidArgument>([&] { audio::save_wav(target, bad, 16000); },
                                {"out.wav", "channel 0", "nan"});
  EXPECT_EQ(audio::load_audio(target).frames(), 300);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(AudioSave, EmptySignalIsAValidFile) {
  TempDir dir;
  audio::save_wav(dir / "empty.wav", mx::zeros({0}), 16000);
  auto a = audio::load_wav(dir / "empty.wav");
  EXPECT_EQ(a.samples.shape(), (mx::Shape{0}));
  EXPECT_EQ(a.sample_rate, 16000);
}

TEST(AudioSave, BadArgumentsGiveClearErrors) {
  TempDir dir;
  expect_error<InvalidArgument>([&] { audio::save_wav(dir / "a.wav", mx::zeros({10}), 0); },
                                {"a.wav", "sample rate"});
  expect_error<InvalidArgument>(
      [&] {
        audio::save_wav(dir / "a.wav", mx::zeros({1, 2, 3}), 16000);
      },
      {"a.wav", "3 dimensions"});
  expect_error<IoError>(
      [&] { audio::save_wav(dir / "missing_dir" / "a.wav", mx::zeros({10}), 16000); }, {"a.wav"});
}

// ------------------------------------------------------------------------------------ resampling

audio::ResampleQuality quality(const std::string& q) {
  if (q == "QQ") return audio::ResampleQuality::quick;
  if (q == "LQ") return audio::ResampleQuality::low;
  if (q == "MQ") return audio::ResampleQuality::medium;
  if (q == "HQ") return audio::ResampleQuality::high;
  return audio::ResampleQuality::very_high;
}

// Same library, same recipe, same block sizes as python-soxr: the same output length, and the
// samples equal up to float rounding in the FFT convolution (normalised error <= 1e-5).
TEST(Resample, MatchesPythonSoxr) {
  for (const auto& c : cases("resample")) {
    std::string what = c["key"];
    SCOPED_TRACE(what);
    auto y = audio::resample(E(c["input"]), c["from"], c["to"], quality(c["quality"]));
    auto want = E(c["key"]);
    ASSERT_EQ(y.shape(), want.shape());
    auto d = tests::diff(y, want);
    record(what, d);
    EXPECT_LE(d.rel, 1e-5) << "max abs " << d.max_abs;
    EXPECT_LE(d.max_abs, 1e-5);
  }
}

TEST(Resample, ChannelsEdgesAndErrors) {
  auto x = E("resample.in.chirp8k");
  auto stereo = mx::stack({x, x * 0.5f});
  auto y = audio::resample(stereo, 8000, 16000);
  auto mono = audio::resample(x, 8000, 16000);
  ASSERT_EQ(y.shape(), (mx::Shape{2, mono.shape(0)}));
  OMINIX_EXPECT_CLOSE(mx::take(y, 0, 0), mono, 0.0);
  OMINIX_EXPECT_CLOSE(audio::resample(x, 8000, 8000), x, 0.0);
  EXPECT_EQ(audio::resample(mx::zeros({0}), 8000, 16000).shape(), (mx::Shape{0}));
  expect_error<InvalidArgument>([&] { audio::resample(x, 0, 16000); }, {"positive"});
  expect_error<InvalidArgument>([&] { audio::resample(x, 16000, -1); }, {"positive"});
  expect_error<InvalidArgument>(
      [&] {
        audio::resample(mx::zeros({1, 1, 4}), 8000, 16000);
      },
      {"3 dimensions"});
}

// ------------------------------------------------------------------------------------ fbank

audio::KaldiWindow window(const std::string& w) {
  if (w == "povey") return audio::KaldiWindow::povey;
  if (w == "hamming") return audio::KaldiWindow::hamming;
  if (w == "hanning") return audio::KaldiWindow::hanning;
  if (w == "rectangular") return audio::KaldiWindow::rectangular;
  return audio::KaldiWindow::blackman;
}

audio::FbankOptions fbank_options(const nlohmann::json& o) {
  return {.sample_rate = o["sample_rate"],
          .frame_length_ms = o["frame_length_ms"],
          .frame_shift_ms = o["frame_shift_ms"],
          .snip_edges = o["snip_edges"],
          .preemphasis_coefficient = o["preemphasis_coefficient"],
          .remove_dc_offset = o["remove_dc_offset"],
          .window_type = window(o["window_type"]),
          .blackman_coeff = o["blackman_coeff"],
          .round_to_power_of_two = o["round_to_power_of_two"],
          .num_mel_bins = o["num_mel_bins"],
          .low_freq = o["low_freq"],
          .high_freq = o["high_freq"],
          .use_energy = o["use_energy"],
          .raw_energy = o["raw_energy"],
          .energy_floor = o["energy_floor"],
          .htk_compat = o["htk_compat"],
          .use_log_fbank = o["use_log_fbank"],
          .use_power = o["use_power"],
          .input_scale = o["input_scale"]};
}

// Tolerances: all sides compute in float32 (FFT, power, mel sums), so the mel energies agree to
// ~1e-6 relative, which the log turns into an absolute error: we measure <= 3e-4 on speech
// (torchaudio and kaldi-native-fbank differ from each other by as much). The bound, max abs
// <= 1e-3 in the log domain and normalised error <= 1e-5, leaves room for bins whose energy is
// near the float rounding of the FFT. Linear energies (use_log_fbank off): normalised error only.
void expect_fbank_close(const mx::array& y, const mx::array& want, const std::string& what,
                        bool log_domain) {
  ASSERT_EQ(y.shape(), want.shape());
  if (want.shape(0) == 0) return;
  auto d = tests::diff(y, want);
  record(what, d);
  EXPECT_LE(d.rel, 1e-5) << "max abs " << d.max_abs;
  if (log_domain) {
    EXPECT_LE(d.max_abs, 1e-3) << "rel " << d.rel;
  }
}

// torchaudio.compliance.kaldi.fbank (FunASR's front end) and kaldi-native-fbank (Kaldi in C++);
// torchaudio refuses inputs shorter than one window, where only Kaldi's result is compared.
TEST(Fbank, MatchesTorchaudioAndKaldiNativeFbank) {
  for (const auto& c : cases("fbank")) {
    std::string what = c["key"];
    SCOPED_TRACE(what);
    auto o = fbank_options(c["options"]);
    auto x = input(c["input"]);
    auto y = audio::fbank(x, o);
    EXPECT_EQ(audio::fbank_num_frames(x.shape(0), o), c["frames"].get<int>());
    expect_fbank_close(y, E(c["key"]), what, o.use_log_fbank);
    if (!c["torchaudio_key"].is_null()) {
      expect_fbank_close(y, E(c["torchaudio_key"]), c["torchaudio_key"], o.use_log_fbank);
    }
  }
}

TEST(Fbank, AcceptsOneRowAndScalesInput) {
  auto x = audio::load_audio(audio_file("speech_001.wav")).samples;
  audio::FbankOptions o{
      .window_type = audio::KaldiWindow::hamming, .num_mel_bins = 80, .energy_floor = 0.0f};
  auto scaled = o;
  scaled.input_scale = 32768.0f;
  OMINIX_EXPECT_CLOSE(audio::fbank(mx::reshape(x, {1, -1}), scaled), audio::fbank(x * 32768.0f, o),
                      1e-4);
}

TEST(Fbank, DitherIsSeeded) {
  auto x = E("fbank.in.synth16k");
  audio::FbankOptions o{.dither = 1.0f, .dither_seed = 7};
  auto a = audio::fbank(x, o), b = audio::fbank(x, o);
  OMINIX_EXPECT_CLOSE(a, b, 0.0);
  auto d = tests::diff(a, audio::fbank(x));
  EXPECT_GT(d.max_abs, 0.0);
}

TEST(Fbank, BadInputsAndOptionsGiveClearErrors) {
  auto x = E("fbank.in.synth16k");
  expect_error<InvalidArgument>(
      [&] {
        audio::fbank(mx::stack({x, x}));
      },
      {"mono", "several channels"});
  expect_error<InvalidArgument>([&] { audio::fbank(x, {.num_mel_bins = 2}); }, {"num_mel_bins"});
  expect_error<InvalidArgument>([&] { audio::fbank(x, {.high_freq = 9000.0f}); }, {"Nyquist"});
  expect_error<InvalidArgument>(
      [&] { audio::fbank(x, {.low_freq = 7000.0f, .high_freq = 6000.0f}); }, {"low_freq"});
  expect_error<InvalidArgument>([&] { audio::fbank(x, {.frame_length_ms = 0.05f}); }, {"window"});
  expect_error<InvalidArgument>([&] { audio::fbank(x, {.frame_shift_ms = 0.0f}); }, {"shift"});
  expect_error<InvalidArgument>([&] { audio::fbank(x, {.sample_rate = 0.0f}); }, {"sample_rate"});
  expect_error<InvalidArgument>(
      [&] { audio::fbank(x, {.frame_length_ms = 25.0625f, .round_to_power_of_two = false}); },
      {"even"});
  expect_error<InvalidArgument>([&] { audio::fbank(x, {.preemphasis_coefficient = 1.5f}); },
                                {"preemphasis"});
}

TEST(Fbank, WindowsMatchKaldi) {
  const int n = 5;  // a = 2 pi / 4
  auto v = [&](audio::KaldiWindow w, int i) { return at(audio::kaldi_window(w, n), i); };
  EXPECT_FLOAT_EQ(v(audio::KaldiWindow::hanning, 1), 0.5f);
  EXPECT_FLOAT_EQ(v(audio::KaldiWindow::hamming, 0), 0.08f);
  EXPECT_FLOAT_EQ(v(audio::KaldiWindow::povey, 1), std::pow(0.5f, 0.85f));
  EXPECT_FLOAT_EQ(v(audio::KaldiWindow::rectangular, 3), 1.0f);
  EXPECT_NEAR(v(audio::KaldiWindow::blackman, 2), 0.42f + 0.5f + 0.08f, 1e-6);
}

// ------------------------------------------------------------------------------------ log-mel

audio::LogMelOptions log_mel_options(const nlohmann::json& o) {
  audio::LogMelOptions m{
      .sample_rate = o["sample_rate"],
      .n_fft = o["n_fft"],
      .hop_length = o["hop_length"],
      .n_mels = o["n_mels"],
      .f_min = o["f_min"],
      .mel_scale = o["mel_scale"] == "htk" ? audio::MelScale::htk : audio::MelScale::slaney,
      .mel_norm = o["mel_norm"] == "slaney" ? audio::MelNorm::slaney : audio::MelNorm::none,
      .center = o["center"],
      .pad_mode = o["pad_mode"] == "reflect" ? audio::PadMode::reflect : audio::PadMode::constant,
      .power = o["power"]};
  if (!o["f_max"].is_null()) m.f_max = o["f_max"].get<float>();
  return m;
}

// The references are computed in float64 from the same float32 samples; ours in float32. Max
// abs error in log10 units <= 1e-3 (1e-3 in log10 is 0.23% in power: only bins near the 1e-10
// floor get close), normalised error <= 1e-5.
TEST(LogMel, MatchesLibrosaAndWhisper) {
  for (const auto& c : cases("log_mel")) {
    std::string what = c["key"];
    SCOPED_TRACE(what);
    auto o = c["whisper"].get<bool>() ? audio::whisper_log_mel_options(c["options"]["n_mels"])
                                      : log_mel_options(c["options"]);
    auto x = input(c["input"]);
    auto y = audio::log_mel(x, o);
    auto want = E(c["key"]);
    ASSERT_EQ(y.shape(), want.shape());
    EXPECT_EQ(audio::log_mel_num_frames(x.shape(0), o), want.shape(0));
    auto d = tests::diff(y, want);
    record(what, d);
    EXPECT_LE(d.rel, 1e-5) << "max abs " << d.max_abs;
    EXPECT_LE(d.max_abs, 1e-3) << "rel " << d.rel;
  }
}

TEST(LogMel, FiltersMatchLibrosa) {
  for (const auto& c : cases("mel_filters")) {
    std::string what = c["key"];
    SCOPED_TRACE(what);
    audio::MelFilterOptions o{
        .sample_rate = c["sample_rate"],
        .n_fft = c["n_fft"],
        .n_mels = c["n_mels"],
        .f_min = c["f_min"],
        .scale = c["htk"].get<bool>() ? audio::MelScale::htk : audio::MelScale::slaney,
        .norm = c["slaney_norm"].get<bool>() ? audio::MelNorm::slaney : audio::MelNorm::none};
    if (!c["f_max"].is_null()) o.f_max = c["f_max"].get<float>();
    auto want = E(c["key"]);
    auto got = audio::mel_filters(o);
    ASSERT_EQ(got.shape(), want.shape());
    auto d = tests::diff(got, want);
    record(what, d);
    EXPECT_LE(d.rel, 1e-6);
  }
}

TEST(LogMel, BadOptionsGiveClearErrors) {
  auto x = mx::zeros({1000});
  expect_error<InvalidArgument>([&] { audio::log_mel(x, {.hop_length = 0}); }, {"hop_length"});
  expect_error<InvalidArgument>(
      [&] { audio::log_mel(x, {.log = false, .whisper_normalize = true}); }, {"whisper_normalize"});
  expect_error<InvalidArgument>([&] { audio::log_mel(x, {.f_min = 9000.0f}); }, {"f_min"});
  // Silence is a defined result: the log floor.
  auto y = audio::log_mel(x);
  EXPECT_EQ(y.shape(), (mx::Shape{7, 80}));
  OMINIX_EXPECT_CLOSE(y, mx::full({7, 80}, -10.0f), 1e-6);
}

// ------------------------------------------------------------------------------------ LFR, CMVN

TEST(Lfr, MatchesFunasrApplyLfr) {
  for (const auto& c : cases("lfr")) {
    std::string key = c["key"];
    SCOPED_TRACE(key);
    auto y = audio::lfr(E(key + ".in"), {.m = c["m"], .n = c["n"]});
    OMINIX_EXPECT_CLOSE(y, E(key + ".out"), 0.0);
  }
  EXPECT_EQ(audio::lfr(mx::zeros({0, 80})).shape(), (mx::Shape{0, 560}));
  expect_error<InvalidArgument>([] { audio::lfr(mx::zeros({4, 2}), {.m = 0}); }, {"m and n"});
  expect_error<InvalidArgument>([] { audio::lfr(mx::zeros({4})); }, {"[T, D]"});
}

TEST(Cmvn, LoadsAmMvnLikeFunasr) {
  auto c = audio::load_cmvn(audio_file("am.mvn"));
  OMINIX_EXPECT_CLOSE(c.shift, E("cmvn.shift"), 0.0);
  OMINIX_EXPECT_CLOSE(c.scale, E("cmvn.scale"), 0.0);
  auto x = mx::ones({3, 560});
  OMINIX_EXPECT_CLOSE(audio::apply_cmvn(x, c), mx::multiply(x + c.shift, c.scale), 0.0);
  expect_error<InvalidArgument>([&] { audio::apply_cmvn(mx::ones({3, 80}), c); }, {"[T, 560]"});
}

TEST(Cmvn, MalformedFilesGiveClearErrors) {
  const std::string ok_shift = "<AddShift> 2 2\n<LearnRateCoef> 0 [ -1.5 2 ]\n";
  const std::string ok_scale = "<Rescale> 2 2\n<LearnRateCoef> 0 [ 0.5 0.25 ]\n";
  auto c = audio::parse_cmvn("<Nnet>\n" + ok_shift + ok_scale + "</Nnet>\n", "t.mvn");
  OMINIX_EXPECT_CLOSE(c.shift, mx::array({-1.5f, 2.0f}), 0.0);
  auto bad = [](const std::string& text, const std::vector<std::string>& parts) {
    expect_error<FormatError>([&] { audio::parse_cmvn(text, "am.mvn"); }, parts);
  };
  bad(ok_scale, {"am.mvn", "no <AddShift>"});
  bad(ok_shift, {"am.mvn", "no <Rescale>"});
  bad("<AddShift> 3 3\n<LearnRateCoef> 0 [ 1 2 ]\n" + ok_scale, {"declares 3 values but lists 2"});
  bad("<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 x2 ]\n" + ok_scale, {"value 2 'x2' is not a number"});
  bad("<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 2\n", {"ends before its closing ']'"});
  bad("<AddShift> 2 2\n[ 1 2 ]\n" + ok_scale, {"expected <LearnRateCoef>"});
  bad(ok_shift + "<Rescale> 3 3\n<LearnRateCoef> 0 [ 1 2 3 ]\n",
      {"<AddShift> has 2 values but <Rescale> 3"});
  bad("this is not a CMVN file", {"no <AddShift>"});
  expect_error<IoError>([] { audio::load_cmvn(audio_file("no_such.mvn")); }, {"no_such.mvn"});
}

// The FunASR front end end to end on speech: x * 32768 -> fbank (hamming, 80 bins, energy floor 0)
// -> LFR 7/6 -> CMVN. CMVN's scale (0.1..0.4 here) shrinks the fbank's log-domain error.
TEST(Frontend, FunasrPipelineOnSpeech) {
  auto cmvn = audio::load_cmvn(audio_file("am.mvn"));
  for (const char* file : {"speech_001.wav", "speech_003.wav"}) {
    SCOPED_TRACE(file);
    auto a = audio::load_audio(audio_file(file));
    ASSERT_EQ(a.sample_rate, 16000);
    auto feats = audio::fbank(a.samples, {.window_type = audio::KaldiWindow::hamming,
                                          .num_mel_bins = 80,
                                          .energy_floor = 0.0f,
                                          .input_scale = 32768.0f});
    auto y = audio::apply_cmvn(audio::lfr(feats, {.m = 7, .n = 6}), cmvn);
    auto want =
        E(std::string("frontend.") + (file[9] == '1' ? "speech_001_wav" : "speech_003_wav"));
    ASSERT_EQ(y.shape(), want.shape());
    auto d = tests::diff(y, want);
    record(std::string("frontend.") + file, d);
    EXPECT_LE(d.rel, 1e-5);
    EXPECT_LE(d.max_abs, 1e-3);
  }
}
