// Measures Paraformer with OminiX on WAV files: real-time factor at batch 1 (each file alone,
// long files cut into chunks as `ominix transcribe` does, and in one pass for comparison with
// peers that take the whole file), and throughput of a batch of files. Timed from samples in
// memory to token ids and text (features, encoder, CIF, decoder); file decoding is not timed.
// Prints one JSON object.
//
//   bench_asr --model DIR --rtf 10s.wav,60s.wav --batch-files a.wav,b.wav,... [--runs 3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <mlx/mlx.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "ominix/audio/io.h"
#include "ominix/base/device.h"
#include "ominix/models/paraformer.h"

namespace mx = mlx::core;
namespace pf = ominix::paraformer;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t p = 0; p <= s.size();) {
    const auto c = std::min(s.find(',', p), s.size());
    if (c > p) out.push_back(s.substr(p, c - p));
    p = c + 1;
  }
  return out;
}

// Median wall time of `runs` calls of transcribe_batch, after one untimed call.
struct Timed {
  double seconds;
  std::vector<double> runs;
  std::vector<pf::Transcript> result;
};
Timed time_batch(const pf::Model& model, const std::vector<mx::array>& samples,
                 const pf::Vocabulary& vocab, const pf::TranscribeOptions& options, int runs) {
  Timed t{0, {}, pf::transcribe_batch(model, samples, vocab, options)};
  for (int r = 0; r < runs; ++r) {
    mx::synchronize();
    const auto t0 = Clock::now();
    t.result = pf::transcribe_batch(model, samples, vocab, options);
    t.runs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  auto sorted = t.runs;
  std::sort(sorted.begin(), sorted.end());
  t.seconds = sorted[sorted.size() / 2];
  return t;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"OminiX ASR benchmark (Paraformer)"};
  std::string model_dir, rtf_files, batch_files;
  int runs = 3;
  double chunk_seconds = ominix::audio::ChunkOptions{}.max_seconds;
  app.add_option("--model", model_dir)->required();
  app.add_option("--rtf", rtf_files, "comma-separated WAV files, each timed alone");
  app.add_option("--batch-files", batch_files, "comma-separated WAV files, timed as one batch");
  app.add_option("--runs", runs, "timed runs (the median is reported)");
  app.add_option("--chunk-seconds", chunk_seconds);
  CLI11_PARSE(app, argc, argv);

  ominix::set_device(ominix::DeviceKind::automatic);
  nlohmann::json out;
  out["engine"] = "ominix";
  out["device"] = ominix::current_device();
  for (const auto& d : ominix::list_devices())
    for (const auto& [k, v] : d.properties)
      if (d.kind == ominix::current_device() && k == "device_name") out["card"] = v;

  auto t0 = Clock::now();
  auto model = pf::load_model(model_dir);
  auto vocab = pf::Vocabulary::load(std::filesystem::path(model_dir) / "tokens.json");
  out["load_s"] = std::chrono::duration<double>(Clock::now() - t0).count();
  const int fs = pf::sample_rate(*model);
  auto load = [&](const std::string& f) {
    auto s = ominix::audio::load_audio(f, {.sample_rate = fs}).samples;
    mx::eval(s);
    return s;
  };

  const pf::TranscribeOptions chunked{.chunking = ominix::audio::chunk_options(chunk_seconds)};
  // The whole file in one forward pass, as the peer runs it.
  const pf::TranscribeOptions one_pass{.chunking = ominix::audio::chunk_options(1e6)};
  mx::reset_peak_memory();
  for (const auto& f : split(rtf_files)) {
    const auto x = load(f);
    const double audio_s = static_cast<double>(x.size()) / fs;
    nlohmann::json row{{"file", f}, {"audio_seconds", audio_s}};
    for (const auto& [name, opts] :
         {std::pair{"chunked", chunked}, std::pair{"one_pass", one_pass}}) {
      const auto t = time_batch(*model, {x}, vocab, opts, runs);
      row[name] = {{"seconds", t.seconds},
                   {"rtf", t.seconds / audio_s},
                   {"runs", t.runs},
                   {"chunks", t.result[0].chunks},
                   {"tokens", t.result[0].tokens.size()},
                   {"ids", t.result[0].tokens}};
    }
    out["rtf"].push_back(row);
  }
  const auto files = split(batch_files);
  if (!files.empty()) {
    std::vector<mx::array> xs;
    double audio_s = 0;
    for (const auto& f : files)
      xs.push_back(load(f)), audio_s += static_cast<double>(xs.back().size()) / fs;
    auto opts = chunked;
    opts.batch_size = static_cast<int>(files.size());
    const auto t = time_batch(*model, xs, vocab, opts, runs);
    out["batch"] = {{"files", files.size()},
                    {"audio_seconds", audio_s},
                    {"seconds", t.seconds},
                    {"runs", t.runs},
                    {"audio_seconds_per_second", audio_s / t.seconds},
                    {"rtf", t.seconds / audio_s}};
  }
  out["peak_memory_gb"] = mx::get_peak_memory() / 1e9;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
