// core/vision against Pillow/transformers/torchvision fixtures (tools/fixtures/gen_vision.py).
#include <cmath>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <mlx/mlx.h>
#include <zlib.h>
#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/io/safetensors.h"
#include "ominix/vision/image.h"
#include "ominix/vision/qwen2_vl_processor.h"

namespace mx = mlx::core;
namespace vision = ominix::vision;

namespace {

const std::filesystem::path kDir = std::filesystem::path(OMINIX_FIXTURES) / "vision";

const nlohmann::json& cases() {
  static const nlohmann::json j = nlohmann::json::parse(std::ifstream(kDir / "cases.json"));
  return j;
}

const ominix::io::TensorMap& tensors() {
  static const auto t = ominix::io::load_safetensors(kDir / "vision.safetensors");
  return t;
}

// The expected [H, W, 3] uint8 tensor as an Image.
vision::Image expected_image(const std::string& key) {
  mx::array a = tensors().at(key);
  mx::eval(a);
  const auto* p = a.data<std::uint8_t>();
  return {a.shape(1), a.shape(0), std::vector<std::uint8_t>(p, p + a.size())};
}

// Number of differing bytes and the largest difference.
std::pair<int, int> diff(const vision::Image& a, const vision::Image& b) {
  int n = 0, worst = 0;
  for (std::size_t i = 0; i < std::min(a.data.size(), b.data.size()); ++i) {
    const int d = std::abs(int{a.data[i]} - int{b.data[i]});
    n += d != 0;
    worst = std::max(worst, d);
  }
  return {n, worst};
}

}  // namespace

TEST(VisionDecode, MatchesTransformersRgb) {
  for (const auto& name : cases()["decode"]) {
    SCOPED_TRACE(name.get<std::string>());
    const auto expected = expected_image("decode/" + name.get<std::string>());
    vision::Image got;
    EXPECT_NO_THROW(got = vision::load_image(kDir / name.get<std::string>()));
    if (got.width != expected.width || got.height != expected.height) {
      ADD_FAILURE() << "size " << got.width << "x" << got.height << ", expected " << expected.width
                    << "x" << expected.height;
      continue;
    }
    const auto [n, worst] = diff(got, expected);
    EXPECT_EQ(n, 0) << n << " bytes differ, by up to " << worst;
  }
}

TEST(VisionDecode, CorruptAndUnsupportedFilesAreErrorsNamingTheFile) {
  for (const auto& j : cases()["corrupt"]) {
    const std::string name = j.get<std::string>();
    SCOPED_TRACE(name);
    try {
      vision::load_image(kDir / name);
      ADD_FAILURE() << "decoded";
    } catch (const ominix::UnsupportedError& e) {
      EXPECT_EQ(name.rfind("unsupported", 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    } catch (const ominix::FormatError& e) {
      EXPECT_EQ(name.rfind("corrupt", 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(vision::load_image(kDir / "no_such_file.png"), ominix::IoError);
}

// fuzz_image's finding (docs/fuzzing.md): a 66-byte PNG whose IDAT chunk declares 1.1 GB made
// stb_image allocate that much before failing; now refused from the chunk header. And a PNG whose
// compressed data inflates far past what its IHDR needs (zlib made here from 8 MB of zeros).
TEST(VisionDecode, PngDeclaredSizesAreCheckedBeforeDecoding) {
  const std::string b64 =
      "iVBORw0KGgoAAAANSUhEUgAAABcAAAAREAAAAAAAtIgiQwEAp0lEQVR4nAXB7W6Ovzgn/O5Z5WtkZp3ZzRj0WnOE";
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<std::uint8_t> bomb;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    acc = acc << 6 | static_cast<std::uint32_t>(kAlphabet.find(c));
    if ((bits += 6) >= 8) bomb.push_back(static_cast<std::uint8_t>(acc >> (bits -= 8)));
  }
  ASSERT_EQ(bomb.size(), 66u);
  try {
    vision::decode_image(bomb, "bomb.png");
    FAIL() << "decoded";
  } catch (const ominix::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bomb.png: PNG chunk 'IDAT' at byte 33 declares"),
              std::string::npos)
        << e.what();
  }

  // A 2x2 grey PNG whose IDAT holds 8 MiB of zeros (a valid zlib stream).
  std::vector<std::uint8_t> zeros(8 << 20, 0), z(compressBound(zeros.size()));
  uLongf zlen = z.size();
  ASSERT_EQ(compress(z.data(), &zlen, zeros.data(), zeros.size()), Z_OK);
  z.resize(zlen);
  std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto chunk = [&](const char* type, const std::vector<std::uint8_t>& data) {
    for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<std::uint8_t>(data.size() >> s));
    std::vector<std::uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    png.insert(png.end(), body.begin(), body.end());
    const auto crc = crc32(0, body.data(), static_cast<uInt>(body.size()));
    for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<std::uint8_t>(crc >> s));
  };
  chunk("IHDR", {0, 0, 0, 2, 0, 0, 0, 2, 8, 0, 0, 0, 0});
  chunk("IDAT", z);
  chunk("IEND", {});
  try {
    vision::decode_image(png, "zeros.png");
    FAIL() << "decoded";
  } catch (const ominix::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("zeros.png: PNG data inflates past the 6 bytes"),
              std::string::npos)
        << e.what();
  }
}

TEST(VisionResize, BicubicMatchesTorchvisionExactly) {
  for (const auto& i : cases()["resize"]) {
    const std::string key = "resize/" + std::to_string(i.get<int>());
    SCOPED_TRACE(key);
    const auto in = expected_image(key + "/in");
    const auto expected = expected_image(key + "/out");
    const auto got = vision::resize_bicubic(in, expected.height, expected.width);
    EXPECT_EQ(got.width, expected.width);
    EXPECT_EQ(got.height, expected.height);
    const auto [n, worst] = diff(got, expected);
    EXPECT_EQ(n, 0) << n << " bytes differ, by up to " << worst;
  }
}

TEST(VisionSmartResize, MatchesTransformers) {
  for (const auto& c : cases()["smart_resize"]) {
    const auto hw = vision::smart_resize(c[0], c[1], c[2], c[3], c[4]);
    EXPECT_EQ(hw[0], c[5].get<int>()) << c.dump();
    EXPECT_EQ(hw[1], c[6].get<int>()) << c.dump();
  }
  for (const auto& c : cases()["smart_resize_errors"])
    EXPECT_THROW(vision::smart_resize(c[0], c[1], c[2], c[3], c[4]), ominix::InvalidArgument);
  EXPECT_THROW(vision::smart_resize(0, 5, 28, 1, 100), ominix::InvalidArgument);
}

TEST(VisionQwen2VLProcessor, RejectsMalformedImages) {
  const vision::Qwen2VLProcessorOptions options;
  const std::vector<vision::Image> empty{vision::Image{}};
  EXPECT_THROW(vision::qwen2_vl_process_images(empty, options), ominix::InvalidArgument);
  const std::vector<vision::Image> short_data{vision::Image{4, 4, std::vector<std::uint8_t>(47)}};
  EXPECT_THROW(vision::qwen2_vl_process_images(short_data, options), ominix::InvalidArgument);
  EXPECT_THROW(vision::resize_bicubic(short_data[0], 8, 8), ominix::InvalidArgument);
}

TEST(VisionQwen2VLProcessor, ReadsBothConfigSpellings) {
  const auto q25 = vision::Qwen2VLProcessorOptions::load(kDir / "qwen2_5_vl.json");
  EXPECT_EQ(q25.patch_size, 14);
  EXPECT_EQ(q25.min_pixels, 3136);
  EXPECT_EQ(q25.max_pixels, 12845056);
  EXPECT_FLOAT_EQ(q25.image_mean[0], 0.48145466f);
  const auto q3 = vision::Qwen2VLProcessorOptions::load(kDir / "qwen3_vl.json");
  EXPECT_EQ(q3.patch_size, 16);
  EXPECT_EQ(q3.min_pixels, 65536);
  EXPECT_EQ(q3.max_pixels, 16777216);
  EXPECT_FLOAT_EQ(q3.image_std[2], 0.5f);

  const auto tmp = std::filesystem::temp_directory_path() / "ominix_vision_bad_preprocessor.json";
  std::ofstream(tmp) << R"({"resample": 2, "patch_size": 14})";
  EXPECT_THROW(vision::Qwen2VLProcessorOptions::load(tmp), ominix::ConfigError);
  std::ofstream(tmp) << R"({"size": {"shortest_edge": 100}})";
  EXPECT_THROW(vision::Qwen2VLProcessorOptions::load(tmp), ominix::ConfigError);
  std::filesystem::remove(tmp);
}

// pixel_values within 1e-6 of transformers' (bit-identical here: the resize is exact and the
// normalisation is the same float32 arithmetic; the margin is for other compilers' rounding) and
// image_grid_thw equal.
TEST(VisionQwen2VLProcessor, MatchesTransformers) {
  for (const auto& c : cases()["processor"]) {
    SCOPED_TRACE(c["case"].get<std::string>());
    const auto options =
        vision::Qwen2VLProcessorOptions::load(kDir / c["config"].get<std::string>());
    std::vector<vision::Image> images;
    for (const auto& name : c["images"])
      images.push_back(vision::load_image(kDir / name.get<std::string>()));
    const auto out = vision::qwen2_vl_process_images(images, options);
    ASSERT_EQ(out.image_grid_thw.size(), c["image_grid_thw"].size());
    for (std::size_t i = 0; i < out.image_grid_thw.size(); ++i)
      for (int k = 0; k < 3; ++k)
        EXPECT_EQ(out.image_grid_thw[i][k], c["image_grid_thw"][i][k].get<std::int64_t>());
    const int rows = c["rows"], cols = c["cols"];
    ASSERT_EQ(out.pixel_values.shape(), (mx::Shape{rows, cols}));
    ASSERT_EQ(out.pixel_values.dtype(), mx::float32);
    mx::array frame0 = tensors().at("processor/" + c["case"].get<std::string>() + "/frame0");
    mx::array got = out.pixel_values;
    mx::eval(frame0, got);
    const int T = options.temporal_patch_size, PP = options.patch_size * options.patch_size;
    ASSERT_EQ(frame0.shape(), (mx::Shape{rows, 3 * PP}));
    double worst = 0.0;
    for (int r = 0; r < rows; ++r)
      for (int ch = 0; ch < 3; ++ch)
        for (int t = 0; t < T; ++t)
          for (int k = 0; k < PP; ++k) {
            const float a = got.data<float>()[std::size_t(r) * cols + (ch * T + t) * PP + k];
            const float b = frame0.data<float>()[std::size_t(r) * 3 * PP + ch * PP + k];
            worst = std::max(worst, double(std::fabs(a - b)));
          }
    EXPECT_LE(worst, 1e-6);
    RecordProperty("max_abs_" + c["case"].get<std::string>(), std::to_string(worst));
  }
}
