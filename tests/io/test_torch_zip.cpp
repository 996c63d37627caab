// The PyTorch zip checkpoint reader against checkpoints written by torch.save
// (tools/fixtures/gen_torch_zip.py), and hostile inputs: foreign globals, compressed entries,
// truncated and corrupted files.
#include <unistd.h>

#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/error.h"
#include "ominix/io/safetensors.h"
#include "ominix/io/torch_zip.h"
#include "support/testing.h"

namespace fs = std::filesystem;
namespace mx = mlx::core;
using ominix::tests::fixture;

namespace {

// Every tensor of `name`.pt equals expected.safetensors' "<name>/<key>", bit for bit.
void expect_matches(const std::string& name) {
  const auto got = ominix::io::load_torch_zip(fixture("torch_zip/" + name + ".pt"));
  const auto want = ominix::io::load_safetensors(fixture("torch_zip/expected.safetensors"));
  std::size_t n = 0;
  for (const auto& [k, v] : want) {
    if (k.rfind(name + "/", 0) != 0) continue;
    ++n;
    const std::string key = k.substr(name.size() + 1);
    auto it = got.find(key);
    ASSERT_NE(it, got.end()) << key;
    // float64 is expected as its float32 rounding (MLX's safetensors has no F64).
    const bool f64 = it->second.dtype() == mx::float64;
    EXPECT_EQ(f64 ? mx::float32 : it->second.dtype(), v.dtype()) << key;
    ASSERT_EQ(it->second.shape(), v.shape()) << key;
    EXPECT_TRUE(mx::array_equal(mx::astype(it->second, v.dtype()), v).item<bool>()) << key;
  }
  EXPECT_EQ(got.size(), n) << name;
  EXPECT_GT(n, 0u);
}

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

fs::path write_tmp(const std::string& name, const std::string& data) {
  auto p = fs::temp_directory_path() / ("ominix_tz_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p, std::ios::binary) << data;
  return p;
}

std::string load_error(const fs::path& p) {
  try {
    ominix::io::load_torch_zip(p);
  } catch (const ominix::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TorchZip, Dtypes) {
  expect_matches("dtypes");
}
TEST(TorchZip, NonContiguousViewsAndSharedStorage) {
  expect_matches("views");
}
TEST(TorchZip, NestedStateDictSkipsNonTensors) {
  expect_matches("nested");
  const auto got = ominix::io::load_torch_zip(fixture("torch_zip/nested.pt"));
  EXPECT_TRUE(got.count("model.0.weight"));
  EXPECT_FALSE(got.count("epoch"));
}
TEST(TorchZip, Parameter) {
  expect_matches("param");
}

TEST(TorchZip, IsZip) {
  EXPECT_TRUE(ominix::io::is_zip_file(fixture("torch_zip/dtypes.pt")));
  EXPECT_FALSE(ominix::io::is_zip_file(fixture("torch_zip/expected.safetensors")));
}

TEST(TorchZip, RejectsForeignGlobal) {
  const auto msg = load_error(fixture("torch_zip/evil_global.pt"));
  EXPECT_NE(msg.find("system"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not allowed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("evil_global.pt"), std::string::npos) << msg;
}

TEST(TorchZip, RejectsCompressedEntries) {
  const auto msg = load_error(fixture("torch_zip/deflated.pt"));
  EXPECT_NE(msg.find("compressed"), std::string::npos) << msg;
}

TEST(TorchZip, MissingFileIsIoError) {
  EXPECT_THROW(ominix::io::load_torch_zip("/nonexistent/model.pt"), ominix::IoError);
}

// Every truncation of a real checkpoint is an error, never a crash.
TEST(TorchZip, TruncatedFiles) {
  const std::string full = bytes_of(fixture("torch_zip/views.pt"));
  for (std::size_t n = 0; n < full.size(); n += 37) {
    auto p = write_tmp("trunc.pt", full.substr(0, n));
    EXPECT_THROW(ominix::io::load_torch_zip(p), ominix::Error) << n;
    fs::remove(p);
  }
}

// Flipping bytes anywhere gives an error or a result, never a crash (run under ASan/UBSan).
TEST(TorchZip, CorruptedBytes) {
  const std::string full = bytes_of(fixture("torch_zip/nested.pt"));
  for (std::size_t i = 0; i < full.size(); i += 3) {
    std::string bad = full;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    auto p = write_tmp("corrupt.pt", bad);
    try {
      auto t = ominix::io::load_torch_zip(p);
      for (auto& [k, v] : t) mx::eval(v);
    } catch (const ominix::Error&) {
    }
    fs::remove(p);
  }
}
