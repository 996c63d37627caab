// Helpers for libFuzzer targets whose reader takes a path: the input bytes are written to a file
// in a per-process scratch directory (removed at exit). ominix::Error is the expected outcome of
// a hostile input; every other exception escapes the target and libFuzzer reports it as a crash.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace ominix::fuzz {

/// The scratch directory of this process: $TMPDIR/ominix_fuzz_<pid>, made on first use.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("ominix_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    static const std::filesystem::path keep = d;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(keep, ec);
    });
    return d;
  }();
  return dir;
}

/// Writes `size` bytes to scratch_dir()/`name` (replacing it) and returns the path.
inline std::filesystem::path write_input(const std::string& name, const std::uint8_t* data,
                                         std::size_t size) {
  auto p = scratch_dir() / name;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();  // the scratch disk is full: not a finding of the target
  return p;
}

}  // namespace ominix::fuzz
