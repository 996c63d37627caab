// libFuzzer target: arbitrary bytes as an audio file (WAV, FLAC, Ogg/Vorbis through libsndfile),
// loaded mono and with its channels kept. ominix::Error is the expected outcome; crashes,
// sanitizer reports, other exceptions, leaks and hangs are findings.
#include <cstddef>
#include <cstdint>

#include <mlx/transforms.h>

#include "ominix/audio/io.h"
#include "ominix/base/error.h"
#include "support/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = ominix::fuzz::write_input("fuzz.wav", data, size);
  for (bool mono : {true, false}) {
    try {
      auto a = ominix::audio::load_audio(path, {.mono = mono});
      mlx::core::eval(a.samples);
    } catch (const ominix::Error&) {
    }
  }
  return 0;
}
