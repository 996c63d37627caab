// Audio files through libsndfile. ref: libsndfile's sndfile.h (sf_open, sf_readf_float: PCM is
// normalised by 1 / 2^(bits-1), float data passes through).
#include "ominix/audio/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <mlx/ops.h>
#include <sndfile.h>

#include "ominix/base/error.h"

namespace ominix::audio {

namespace {

namespace fs = std::filesystem;

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

// libsndfile notes a WAV data chunk that claims more bytes than the file holds as
// "data : 32000 (should be 15978)" in its log, and then reads what is there.
bool header_claims_more_than_file(SNDFILE* f) {
  std::string log(16384, '\0');
  sf_command(f, SFC_GET_LOG_INFO, log.data(), static_cast<int>(log.size()));
  log.resize(std::strlen(log.c_str()));
  std::size_t pos = 0;
  while ((pos = log.find("data", pos)) != std::string::npos) {
    auto eol = log.find('\n', pos);
    auto line = log.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    if (line.find("(should be") != std::string::npos && (pos == 0 || log[pos - 1] == '\n')) {
      return true;
    }
    pos += 4;
  }
  return false;
}

const char* subtype_name(int format) {
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8:
      return "8-bit PCM";
    case SF_FORMAT_PCM_U8:
      return "unsigned 8-bit PCM";
    case SF_FORMAT_PCM_16:
      return "16-bit PCM";
    case SF_FORMAT_PCM_24:
      return "24-bit PCM";
    case SF_FORMAT_PCM_32:
      return "32-bit PCM";
    case SF_FORMAT_FLOAT:
      return "32-bit float";
    case SF_FORMAT_DOUBLE:
      return "64-bit float";
    case SF_FORMAT_VORBIS:
      return "Vorbis";
    default:
      return "audio";
  }
}

}  // namespace

Audio load_audio(const fs::path& path, const LoadOptions& options) {
  const std::string name = path.string();
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) fail<IoError>("{}: cannot open audio: no such file", name);
  if (fs::is_directory(status)) fail<IoError>("{}: cannot open audio: is a directory", name);
  auto bytes = fs::file_size(path, ec);
  if (!ec && bytes == 0) fail<FormatError>("{}: not audio: the file is empty (0 bytes)", name);
  if (options.sample_rate && *options.sample_rate <= 0) {
    fail<InvalidArgument>("{}: target sample rate must be positive, got {}", name,
                          *options.sample_rate);
  }

  SF_INFO info{};
  SndfilePtr file(sf_open(name.c_str(), SFM_READ, &info));
  if (!file) {
    std::string why = sf_strerror(nullptr);
    if (why.find("System error") != std::string::npos) {
      fail<IoError>("{}: cannot open audio: {}", name, why);
    }
    fail<FormatError>("{}: not a readable audio file (WAV, FLAC, Ogg/Vorbis): {}", name, why);
  }
  if (info.channels <= 0 || info.samplerate <= 0 || info.frames < 0) {
    fail<FormatError>("{}: malformed audio header ({} channels, {} Hz, {} frames)", name,
                      info.channels, info.samplerate, static_cast<long long>(info.frames));
  }
  const int C = info.channels;
  if (!options.allow_truncated && header_claims_more_than_file(file.get())) {
    fail<FormatError>(
        "{}: truncated: the WAV header declares more data than the file holds ({} frames are "
        "there; LoadOptions::allow_truncated reads them)",
        name, static_cast<long long>(info.frames));
  }

  // Interleaved [T, C], read in blocks: a decoder error mid-stream shows as a short read, and a
  // header claiming more frames than the file holds does not make us allocate for them.
  const sf_count_t max_frames = INT32_MAX / C;  // one MLX array's worth
  const sf_count_t block = 65536;
  std::vector<float> interleaved;
  interleaved.reserve(static_cast<std::size_t>(std::min<sf_count_t>(info.frames, (1 << 24) / C)) *
                      C);
  sf_count_t done = 0;
  while (done < info.frames) {
    const sf_count_t want = std::min(info.frames - done, block);
    if (done + want > max_frames) {
      fail<UnsupportedError>("{}: {} frames of {} channels is more than one array holds", name,
                             static_cast<long long>(info.frames), C);
    }
    interleaved.resize(static_cast<std::size_t>(done + want) * C);
    const sf_count_t got = sf_readf_float(file.get(), interleaved.data() + done * C, want);
    if (got <= 0) break;
    done += got;
  }
  interleaved.resize(static_cast<std::size_t>(done) * C);
  if (done < info.frames && !options.allow_truncated) {
    fail<FormatError>(
        "{}: truncated or corrupt: the header declares {} frames, only {} could be decoded "
        "({}; LoadOptions::allow_truncated keeps them)",
        name, static_cast<long long>(info.frames), static_cast<long long>(done),
        sf_strerror(file.get()));
  }
  const int T = static_cast<int>(done);

  if (!options.allow_non_finite) {
    auto bad = std::find_if(interleaved.begin(), interleaved.end(),
                            [](float v) { return !std::isfinite(v); });
    if (bad != interleaved.end()) {
      auto i = bad - interleaved.begin();
      auto count = std::count_if(interleaved.begin(), interleaved.end(),
                                 [](float v) { return !std::isfinite(v); });
      fail<FormatError>(
          "{}: {} {} samples are NaN or infinite (the first at frame {}, channel {}); "
          "LoadOptions::allow_non_finite passes them through",
          name, count, subtype_name(info.format), i / C, i % C);
    }
  }

  Audio out{.samples = mx::array(0.0f), .sample_rate = info.samplerate, .channels = C};
  if (options.mono || C == 1) {
    std::vector<float> mono(T);
    for (int t = 0; t < T; ++t) {
      double sum = 0;
      for (int c = 0; c < C; ++c) sum += interleaved[static_cast<std::size_t>(t) * C + c];
      mono[t] = static_cast<float>(sum / C);
    }
    out.samples = options.mono ? mx::array(mono.data(), {T}, mx::float32)
                               : mx::array(mono.data(), {1, T}, mx::float32);
  } else {
    // [T, C] -> [C, T]
    std::vector<float> planar(interleaved.size());
    for (int t = 0; t < T; ++t) {
      for (int c = 0; c < C; ++c) {
        planar[static_cast<std::size_t>(c) * T + t] =
            interleaved[static_cast<std::size_t>(t) * C + c];
      }
    }
    out.samples = mx::array(planar.data(), {C, T}, mx::float32);
  }

  if (options.sample_rate && *options.sample_rate != out.sample_rate) {
    out.samples = resample(out.samples, out.sample_rate, *options.sample_rate, options.quality);
    out.sample_rate = *options.sample_rate;
  }
  return out;
}

void save_wav(const fs::path& path, const mx::array& samples, int sample_rate,
              const SaveOptions& options) {
  const std::string name = path.string();
  if (sample_rate <= 0)
    fail<InvalidArgument>("{}: sample rate must be positive, got {}", name, sample_rate);
  if (samples.ndim() != 1 && samples.ndim() != 2) {
    fail<InvalidArgument>("{}: samples must be [T] or [C, T], got {} dimensions", name,
                          samples.ndim());
  }
  const int C = samples.ndim() == 1 ? 1 : samples.shape(0);
  const int T = samples.shape(-1);
  if (C < 1) fail<InvalidArgument>("{}: samples have no channel", name);

  auto x = mx::astype(samples, mx::float32, mx::Device::cpu);
  x = mx::contiguous(x, false, mx::Device::cpu);
  x.eval();
  const float* data = x.data<float>();
  // [C, T] -> interleaved [T, C]
  std::vector<float> interleaved(static_cast<std::size_t>(C) * T);
  for (int c = 0; c < C; ++c) {
    for (int t = 0; t < T; ++t) {
      float v = data[static_cast<std::size_t>(c) * T + t];
      if (!std::isfinite(v)) {
        fail<InvalidArgument>("{}: sample {} of channel {} is {}; WAV needs finite samples", name,
                              t, c, v);
      }
      interleaved[static_cast<std::size_t>(t) * C + c] = v;
    }
  }

  // A unique temporary name beside the target (same file system, so the rename is atomic);
  // created with 0666 less the umask, like any new file.
  static std::atomic<unsigned> counter{0};
  auto parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  fs::path tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = parent / fmt::format(".{}.tmp-{}-{}", path.filename().string(), getpid(), counter++);
    fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    fail<IoError>("{}: cannot create a temporary file in {}: {}", name, parent.string(),
                  std::strerror(errno));
  }
  struct TempFile {
    fs::path path;
    int fd;
    bool keep = false;
    ~TempFile() {
      if (fd >= 0) close(fd);
      std::error_code ignored;
      if (!keep) fs::remove(path, ignored);
    }
  } temp{tmp, fd};

  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = C;
  info.format =
      SF_FORMAT_WAV | (options.format == WavFormat::pcm16 ? SF_FORMAT_PCM_16 : SF_FORMAT_FLOAT);
  SndfilePtr file(sf_open_fd(fd, SFM_WRITE, &info, /*close_desc=*/SF_FALSE));
  if (!file) fail<IoError>("{}: cannot write WAV: {}", name, sf_strerror(nullptr));
  sf_count_t written = 0;
  if (options.format == WavFormat::pcm16) {
    std::vector<short> pcm(interleaved.size());
    for (std::size_t i = 0; i < pcm.size(); ++i) {
      float v = std::nearbyint(interleaved[i] * 32768.0f);
      pcm[i] = static_cast<short>(std::clamp(v, -32768.0f, 32767.0f));
    }
    written = sf_writef_short(file.get(), pcm.data(), T);
  } else {
    written = sf_writef_float(file.get(), interleaved.data(), T);
  }
  if (written != T) {
    fail<IoError>("{}: writing WAV failed after {} of {} frames: {}", name,
                  static_cast<long long>(written), T, sf_strerror(file.get()));
  }
  if (int err = sf_close(file.release()); err != 0) {
    fail<IoError>("{}: writing WAV failed: {}", name, sf_error_number(err));
  }
  if (fsync(temp.fd) != 0 || close(std::exchange(temp.fd, -1)) != 0) {
    fail<IoError>("{}: writing WAV failed: {}", name, std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(temp.path, path, ec);
  if (ec) fail<IoError>("{}: cannot move the written WAV into place: {}", name, ec.message());
  temp.keep = true;
}

}  // namespace ominix::audio
