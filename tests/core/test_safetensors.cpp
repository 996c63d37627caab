#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/error.h"
#include "ominix/io/safetensors.h"
#include "support/testing.h"

using namespace ominix;
namespace fs = std::filesystem;
namespace mx = mlx::core;

namespace {

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ominix_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file made of an explicit header and `data_bytes` bytes of data.
  fs::path raw(const std::string& name, const std::string& header, std::size_t data_bytes,
               std::optional<std::uint64_t> declared_len = std::nullopt) {
    auto p = dir_ / name;
    std::ofstream out(p, std::ios::binary);
    std::uint64_t n = declared_len.value_or(header.size());
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
    std::string data(data_bytes, '\x01');
    out << data;
    return p;
  }

  std::string error(const fs::path& p) {
    try {
      io::load_safetensors(p);
    } catch (const FormatError& e) {
      return e.what();
    } catch (const IoError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error for " << p;
    return "";
  }

  fs::path dir_;
};

}  // namespace

TEST_F(Safetensors, RoundTripAllDtypes) {
  io::TensorMap t;
  t.emplace("f32", mx::reshape(mx::arange(12, mx::float32), {3, 4}));
  t.emplace("f16", mx::astype(mx::arange(5, mx::float32), mx::float16));
  t.emplace("bf16", mx::astype(mx::arange(6, mx::float32), mx::bfloat16));
  t.emplace("i32", mx::arange(7, mx::int32));
  t.emplace("u32", mx::astype(mx::arange(8, mx::int32), mx::uint32));
  t.emplace("u8", mx::astype(mx::arange(9, mx::int32), mx::uint8));
  t.emplace("i64", mx::astype(mx::arange(3, mx::int32), mx::int64));
  t.emplace("b", mx::array({true, false, true}));
  t.emplace("scalar", mx::array(2.5f));
  io::save_safetensors(dir_ / "a.safetensors", t, {{"format", "mlx"}});
  EXPECT_FALSE(fs::exists(dir_ / "a.safetensors.tmp"));
  auto h = io::read_safetensors_header(dir_ / "a.safetensors");
  EXPECT_EQ(h.metadata.at("format"), "mlx");
  EXPECT_EQ(h.tensors.size(), t.size());
  auto back = io::load_safetensors(dir_ / "a.safetensors");
  ASSERT_EQ(back.size(), t.size());
  for (const auto& [name, a] : t) {
    const auto& b = back.at(name);
    EXPECT_EQ(a.dtype(), b.dtype()) << name;
    EXPECT_EQ(a.shape(), b.shape()) << name;
    EXPECT_TRUE(mx::array_equal(a, b).item<bool>()) << name;
  }
}

TEST_F(Safetensors, ReadsFilesWrittenByReferences) {
  auto h = io::read_safetensors_header(tests::fixture("core/ckpt_single/model.safetensors"));
  EXPECT_GT(h.tensors.size(), 10u);
  for (const auto& t : h.tensors) EXPECT_EQ(t.dtype, mx::bfloat16) << t.name;
}

TEST_F(Safetensors, TruncatedData) {
  io::TensorMap t;
  t.emplace("w", mx::ones({64, 64}));
  io::save_safetensors(dir_ / "w.safetensors", t);
  fs::resize_file(dir_ / "w.safetensors", fs::file_size(dir_ / "w.safetensors") - 100);
  auto msg = error(dir_ / "w.safetensors");
  EXPECT_NE(msg.find("w.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
}

TEST_F(Safetensors, TooShortForLength) {
  std::ofstream(dir_ / "tiny.safetensors") << "abc";
  auto msg = error(dir_ / "tiny.safetensors");
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(Safetensors, HeaderLengthLies) {
  auto p = raw("len.safetensors", "{}", 0, 4096);
  EXPECT_NE(error(p).find("header says 4096 bytes"), std::string::npos) << error(p);
  auto huge = raw("huge.safetensors", "{}", 0, std::uint64_t(1) << 60);
  EXPECT_NE(error(huge).find("implausible"), std::string::npos) << error(huge);
}

TEST_F(Safetensors, ShapeDisagreesWithOffsets) {
  auto p =
      raw("shape.safetensors", R"({"a":{"dtype":"F32","shape":[4,4],"data_offsets":[0,32]}})", 32);
  auto msg = error(p);
  EXPECT_NE(msg.find("tensor 'a'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs 64 bytes"), std::string::npos) << msg;
}

TEST_F(Safetensors, BadDtypeAndJson) {
  auto p =
      raw("dt.safetensors", R"({"a":{"dtype":"F8_E5M2","shape":[4],"data_offsets":[0,4]}})", 4);
  EXPECT_NE(error(p).find("unsupported dtype 'F8_E5M2'"), std::string::npos) << error(p);
  auto j = raw("json.safetensors", R"({"a":{"dtype":"F32",)", 0);
  EXPECT_NE(error(j).find("not valid JSON"), std::string::npos) << error(j);
  auto neg =
      raw("neg.safetensors", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4);
  EXPECT_NE(error(neg).find("negative"), std::string::npos) << error(neg);
  auto off = raw("off.safetensors", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8);
  EXPECT_NE(error(off).find("end before"), std::string::npos) << error(off);
}

TEST_F(Safetensors, OverlappingTensors) {
  auto p = raw(
      "ov.safetensors",
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      16);
  auto msg = error(p);
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
}

TEST_F(Safetensors, MissingFile) {
  auto msg = error(dir_ / "absent.safetensors");
  EXPECT_NE(msg.find("absent.safetensors: cannot open"), std::string::npos) << msg;
}

TEST_F(Safetensors, SaveIntoMissingDirectoryLeavesNothing) {
  io::TensorMap t;
  t.emplace("w", mx::ones({2}));
  EXPECT_THROW(io::save_safetensors(dir_ / "no" / "such" / "x.safetensors", t), IoError);
  EXPECT_FALSE(fs::exists(dir_ / "no"));
}
