// Transcribes audio files with any speech recognition model OminiX knows (the family comes from
// the model directory), long files included, then prints each file's text and timing.
//   transcribe <model dir> FILE...
#include <cstdio>
#include <vector>

#include <ominix/asr.h>
#include <ominix/audio/io.h>
#include <ominix/base/error.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR FILE...\n", argv[0]);
    return 2;
  }
  try {
    const auto asr = ominix::load_asr(argv[1]);
    std::vector<mlx::core::array> samples;
    for (int i = 2; i < argc; ++i)
      samples.push_back(
          ominix::audio::load_audio(argv[i], {.sample_rate = asr->sample_rate()}).samples);

    // Audio longer than 20 s is cut at pauses (or with overlaps) and joined; up to 8 pieces run
    // as one padded batch.
    const auto results = asr->transcribe(samples, {.batch_size = 8});
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      std::printf("%s\t%s\n", argv[i + 2], r.text.c_str());
      std::printf("  %s, %.2f s of audio in %d chunk(s), real-time factor %.3f, %zu tokens\n",
                  asr->family().c_str(), r.audio_seconds, r.chunks,
                  r.audio_seconds > 0 ? r.compute_seconds / r.audio_seconds : 0.0, r.tokens.size());
    }
  } catch (const ominix::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
