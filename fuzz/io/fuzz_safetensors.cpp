// libFuzzer target: arbitrary bytes as a .safetensors file. The header is read and checked, then
// every tensor of a small file is loaded and evaluated. ominix::Error is the expected outcome;
// crashes, sanitizer reports, other exceptions, leaks and hangs are findings.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <mlx/transforms.h>

#include "ominix/base/error.h"
#include "ominix/io/safetensors.h"
#include "support/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = ominix::fuzz::write_input("fuzz.safetensors", data, size);
  try {
    const auto header = ominix::io::read_safetensors_header(path);
    if (header.file_size > (std::uint64_t{1} << 22)) return 0;  // keep iterations fast
    auto tensors = ominix::io::load_safetensors(path);
    std::vector<mlx::core::array> arrays;
    for (auto& [name, a] : tensors) arrays.push_back(a);
    mlx::core::eval(arrays);
  } catch (const ominix::Error&) {
  }
  return 0;
}
