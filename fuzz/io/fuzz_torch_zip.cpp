// libFuzzer target: arbitrary bytes as a PyTorch zip checkpoint (zip directory, restricted
// unpickler of data.pkl, storages). Every tensor of a small file is evaluated. ominix::Error is
// the expected outcome; crashes, sanitizer reports, other exceptions, leaks and hangs are findings.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <mlx/transforms.h>

#include "ominix/base/error.h"
#include "ominix/io/torch_zip.h"
#include "support/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = ominix::fuzz::write_input("fuzz.pt", data, size);
  try {
    (void)ominix::io::is_zip_file(path);
    auto tensors = ominix::io::load_torch_zip(path);
    std::vector<mlx::core::array> arrays;
    for (auto& [name, a] : tensors) arrays.push_back(a);
    mlx::core::eval(arrays);
  } catch (const ominix::Error&) {
  }
  return 0;
}
