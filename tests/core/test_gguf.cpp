// GGUF reader: tensors against the reference dequantization (gguf 0.19.0's gguf.quants, via
// tools/fixtures/gen_gguf.py), MLX repacking, metadata round trips, and malformed files.
#include <unistd.h>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/error.h"
#include "ominix/io/gguf.h"
#include "ominix/nn/linear.h"
#include "support/testing.h"

using namespace ominix;
namespace fs = std::filesystem;
namespace mx = mlx::core;

namespace {

const io::TensorMap& expected() {
  static const io::TensorMap t = io::load_safetensors(tests::fixture("gguf/expected.safetensors"));
  return t;
}

fs::path gguf_path(const std::string& type) {
  return tests::fixture("gguf/" + type + ".gguf");
}

std::vector<std::uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool same_values(const mx::array& a, const mx::array& b) {
  return a.shape() == b.shape() && mx::array_equal(a, b).item<bool>();
}

const char* const kTypes[] = {"F32",  "F16",  "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                              "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"};
const char* const kMatrices[] = {"blk.0.attn_q.weight", "blk.0.ffn_down.weight",
                                 "blk.0.ffn_gate_exps.weight"};

class GgufTypes : public ::testing::TestWithParam<std::string> {};

}  // namespace

// Every tensor, dequantized to float32 at load, equals the reference bit for bit (max-abs 0).
TEST_P(GgufTypes, DequantizedEqualsReference) {
  const std::string type = GetParam();
  auto f = io::GgufFile::open(gguf_path(type));
  ASSERT_EQ(f.tensors().size(), 4u);
  for (const auto& info : f.tensors()) {
    auto t = f.load(info, {.dtype = mx::float32, .quant = io::GgufQuantPolicy::dequantize});
    ASSERT_TRUE(t.dense) << info.name;
    EXPECT_FALSE(t.quantized);
    EXPECT_EQ(t.dense->dtype(), mx::float32);
    const auto& ref = expected().at(type + "/" + info.name);
    EXPECT_TRUE(same_values(*t.dense, ref))
        << type << " " << info.name << " max-abs " << tests::diff(*t.dense, ref).max_abs;
  }
  EXPECT_STREQ(io::to_string(f.find("blk.0.attn_q.weight")->type), type.c_str());
  EXPECT_EQ(f.find("blk.0.ffn_gate_exps.weight")->shape, (mx::Shape{2, 3, 256}));
  EXPECT_EQ(f.find("blk.0.ffn_gate_exps.weight")->ne, (std::vector<std::uint64_t>{256, 3, 2}));
}

// With the default policy, exact types come back packed; mx::dequantize of the parts equals the
// reference (max-abs 0) and quantized_matmul agrees with x @ reference^T to float32 rounding.
TEST_P(GgufTypes, RepackedEqualsReference) {
  const std::string type = GetParam();
  auto f = io::GgufFile::open(gguf_path(type));
  const auto gtype = f.find("blk.0.attn_q.weight")->type;
  const auto spec = io::ggml_affine_spec(gtype);
  for (const char* name : kMatrices) {
    auto t = f.load(name);
    const auto& ref = expected().at(type + "/" + name);
    EXPECT_EQ(t.shape, ref.shape());
    if (!spec) {
      ASSERT_TRUE(t.dense) << name;
      EXPECT_TRUE(same_values(*t.dense, ref)) << name;
      continue;
    }
    ASSERT_TRUE(t.quantized) << name;
    const auto& q = *t.quantized;
    EXPECT_EQ(q.spec, *spec);
    EXPECT_EQ(q.weight.dtype(), mx::uint32);
    auto wshape = ref.shape(), gshape = ref.shape();
    wshape.back() = wshape.back() * spec->bits / 32;
    gshape.back() /= 32;
    EXPECT_EQ(q.weight.shape(), wshape);
    EXPECT_EQ(q.scales.shape(), gshape);
    EXPECT_EQ(q.biases.shape(), gshape);
    EXPECT_TRUE(same_values(q.dequantize(), ref))
        << name << " max-abs " << tests::diff(q.dequantize(), ref).max_abs;
    EXPECT_TRUE(same_values(t.to_dense(), ref));
    if (ref.ndim() != 2) continue;
    auto x = mx::random::normal({3, ref.shape(1)}, mx::float32, 0, 1, mx::random::key(7));
    auto want = mx::matmul(x, mx::transpose(ref));
    auto got =
        mx::quantized_matmul(x, q.weight, q.scales, q.biases, true, 32, spec->bits, "affine");
    auto d = tests::diff(got, want);
    EXPECT_LE(d.rel, 1e-6) << name << " max-abs " << d.max_abs;
    // The nn layer is an aggregate of the same parts. On an x86 CPU it runs our own kernel
    // (core/nn/cpu_gemv.cpp), which sums in another order: equal to the reference as closely.
    nn::QuantizedLinear layer{.weight = q.weight,
                              .scales = q.scales,
                              .biases = q.biases,
                              .bias = std::nullopt,
                              .spec = q.spec};
    const auto dl = tests::diff(layer(x), want);
    EXPECT_LE(dl.rel, 1e-6) << name << " nn layer, max-abs " << dl.max_abs;
  }
}

// float16/bfloat16 loads: dense tensors equal the reference cast once; repacked ones round the
// scales and biases once, so they agree with the cast reference to a few units of that dtype.
TEST_P(GgufTypes, HalfDtypes) {
  const std::string type = GetParam();
  auto f = io::GgufFile::open(gguf_path(type));
  for (auto dtype : {mx::float16, mx::bfloat16}) {
    for (const char* name : kMatrices) {
      auto t = f.load(name, {.dtype = dtype});
      auto ref = expected().at(type + "/" + name);
      auto v = t.to_dense();
      EXPECT_EQ(v.dtype(), dtype);
      if (t.dense) {
        EXPECT_TRUE(same_values(v, mx::astype(ref, dtype))) << name;
      } else {
        auto d = tests::diff(v, ref);
        EXPECT_LE(d.rel, dtype == mx::bfloat16 ? 1e-2 : 2e-3)
            << type << " " << name << " max-abs " << d.max_abs;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Gguf, GgufTypes,
                         ::testing::ValuesIn(std::vector<std::string>(std::begin(kTypes),
                                                                      std::end(kTypes))));

TEST(Gguf, TypeTable) {
  EXPECT_EQ(io::ggml_affine_spec(io::GgmlType::Q4_0),
            (io::QuantSpec{32, 4, io::QuantMode::affine}));
  EXPECT_EQ(io::ggml_affine_spec(io::GgmlType::Q5_K),
            (io::QuantSpec{32, 5, io::QuantMode::affine}));
  EXPECT_EQ(io::ggml_affine_spec(io::GgmlType::Q8_0),
            (io::QuantSpec{32, 8, io::QuantMode::affine}));
  EXPECT_FALSE(io::ggml_affine_spec(io::GgmlType::Q6_K));
  EXPECT_FALSE(io::ggml_affine_spec(io::GgmlType::F16));
  EXPECT_EQ(io::ggml_type_info(14)->type_size, 210);
  EXPECT_FALSE(io::ggml_type_info(4));  // removed Q4_2
  EXPECT_FALSE(io::ggml_type_supported(io::GgmlType::IQ2_XXS));
}

// Q6_K has sub-blocks of 16, finer than MLX's smallest group: re-quantizing to 8-bit affine
// groups of 32 is lossy; the error is measured here and bounded by half an 8-bit step.
TEST(Gguf, RequantizeQ6K) {
  auto f = io::GgufFile::open(gguf_path("Q6_K"));
  const auto& ref = expected().at("Q6_K/blk.0.ffn_down.weight");
  auto t =
      f.load("blk.0.ffn_down.weight", {.requantize = io::QuantSpec{32, 8, io::QuantMode::affine}});
  ASSERT_TRUE(t.quantized);
  EXPECT_EQ(t.quantized->spec.bits, 8);
  auto d = tests::diff(t.to_dense(), ref);
  auto range = mx::subtract(mx::max(ref, -1), mx::min(ref, -1));
  const float step = mx::max(range).item<float>() / 255.0f;
  EXPECT_LE(d.max_abs, step);
  EXPECT_GT(d.max_abs, 0.0);  // not exact
  std::cout << "Q6_K -> 8-bit affine g32: rel " << d.rel << ", max-abs " << d.max_abs
            << " (ref |max| " << mx::max(mx::abs(ref)).item<float>() << ")\n";
}

TEST(Gguf, CheckpointFeedsLinearLayers) {
  auto ck = io::load_gguf_checkpoint(gguf_path("Q4_K"), {}, [](const std::string& n) {
    return n == "blk.0.attn_q.weight" ? std::string("model.layers.0.self_attn.q_proj.weight") : n;
  });
  EXPECT_TRUE(ck.tensors.count("model.layers.0.self_attn.q_proj.scales"));
  EXPECT_TRUE(ck.tensors.count("output_norm.weight"));
  EXPECT_EQ(ck.tensors.at("output_norm.weight").dtype(), mx::float32);
  ASSERT_TRUE(ck.quantization.overrides.count("blk.0.ffn_down"));
  EXPECT_EQ(*ck.quantization.spec_for("model.layers.0.self_attn.q_proj"),
            (io::QuantSpec{32, 4, io::QuantMode::affine}));
  EXPECT_EQ(ck.metadata.architecture(), "tiny");

  io::WeightMap w(ck.tensors, "Q4_K.gguf");
  auto q = nn::LinearLayer::load(w, "model.layers.0.self_attn.q_proj", {.in = 256, .out = 8},
                                 ck.quantization);
  auto down = nn::LinearLayer::load(w, "blk.0.ffn_down", {.in = 512, .out = 4}, ck.quantization);
  EXPECT_TRUE(q.quantized());
  auto x = mx::random::normal({2, 256}, mx::float32, 0, 1, mx::random::key(3));
  auto want = mx::matmul(x, mx::transpose(expected().at("Q4_K/blk.0.attn_q.weight")));
  EXPECT_LE(tests::diff(q(x), want).rel, 1e-6);
  // Q6_K in a checkpoint: dense (default) or requantized.
  auto ck6 = io::load_gguf_checkpoint(gguf_path("Q6_K"));
  EXPECT_EQ(ck6.tensors.at("blk.0.attn_q.weight").dtype(), mx::float32);
  EXPECT_FALSE(ck6.tensors.count("blk.0.attn_q.scales"));
}

TEST(Gguf, MetadataRoundTrip) {
  auto f = io::GgufFile::open(tests::fixture("gguf/meta.gguf"));
  auto j = tests::load_json(tests::fixture("gguf/meta.json"));
  const auto& m = f.metadata();
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  for (const auto& [key, spec] : j["values"].items()) {
    SCOPED_TRACE(key);
    const auto* v = m.find(key);
    ASSERT_TRUE(v);
    const std::string type = spec[0];
    const auto& want = spec[1];
    if (type.rfind("array:", 0) == 0) {
      ASSERT_TRUE(v->is_array());
      const std::string et = type.substr(6);
      EXPECT_EQ(io::to_string(v->element_type), et);
      EXPECT_EQ(v->size(), want.size());
      if (et == "string")
        EXPECT_EQ(m.required<std::vector<std::string>>(key), want.get<std::vector<std::string>>());
      else if (et == "bool")
        EXPECT_EQ(std::get<std::vector<bool>>(v->data), want.get<std::vector<bool>>());
      else if (et == "float32" || et == "float64")
        EXPECT_EQ(m.required<std::vector<double>>(key), want.get<std::vector<double>>());
      else if (et == "uint64")
        EXPECT_EQ(std::get<std::vector<std::uint64_t>>(v->data),
                  want.get<std::vector<std::uint64_t>>());
      else if (et == "array") {
        const auto& outer = std::get<std::vector<io::GgufValue>>(v->data);
        ASSERT_EQ(outer.size(), want.size());
        for (std::size_t i = 0; i < outer.size(); ++i)
          EXPECT_EQ(std::get<std::vector<std::string>>(outer[i].data),
                    want[i].get<std::vector<std::string>>());
      } else
        EXPECT_EQ(m.required<std::vector<std::int64_t>>(key),
                  want.get<std::vector<std::int64_t>>());
      continue;
    }
    EXPECT_EQ(io::to_string(v->type), type);
    if (type == "string")
      EXPECT_EQ(m.required<std::string>(key), want.get<std::string>());
    else if (type == "bool")
      EXPECT_EQ(m.required<bool>(key), want.get<bool>());
    else if (type == "float32" || type == "float64")
      EXPECT_EQ(m.required<double>(key), want.get<double>());
    else if (type == "uint64")
      EXPECT_EQ(m.required<std::uint64_t>(key), want.get<std::uint64_t>());
    else
      EXPECT_EQ(m.required<std::int64_t>(key), want.get<std::int64_t>());
  }
  // Typed access converts where the value fits and names the key where it does not.
  EXPECT_EQ(m.required<int>("t.u16"), 65000);
  EXPECT_FLOAT_EQ(m.required<float>("t.f32"), 0.1f);
  EXPECT_EQ(m.required<float>("t.i8"), -100.0f);
  EXPECT_EQ(m.get<int>("t.missing", 7), 7);
  EXPECT_FALSE(m.optional<std::string>("t.missing"));
  EXPECT_EQ(m.required<std::vector<int>>("t.arr.int8"), (std::vector<int>{-128, 0, 127}));
  auto throws = [&](auto fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("meta.gguf"), std::string::npos) << e.what();
    }
  };
  throws([&] { m.required<int>("t.u32"); }, "t.u32: value 4000000000 is out of range");
  throws([&] { m.required<std::uint32_t>("t.i8"); }, "t.i8: value -100 is out of range");
  throws([&] { m.required<int>("t.f32"); }, "t.f32: expected an integer, found a float32");
  throws([&] { m.required<std::string>("t.u8"); }, "t.u8: expected a string, found a uint8");
  throws([&] { m.required<int>("t.arr.int8"); },
         "t.arr.int8: expected an integer, found an array of 3 int8");
  throws([&] { m.required<std::vector<int>>("t.arr.string"); },
         "t.arr.string: expected an array of integers, found an array of 3 string");
  throws([&] { m.required<std::vector<int>>("t.arr.uint64"); },
         "t.arr.uint64: value 18446744073709551615 is out of range");
  throws([&] { m.required<bool>("t.absent"); }, "t.absent: missing");

  // The tensors sit at multiples of 64.
  for (const auto& t : f.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  EXPECT_TRUE(
      same_values(f.load("a").to_dense(), mx::reshape(mx::arange(12, mx::float32), {3, 4})));
  EXPECT_TRUE(
      same_values(f.load("b", {.dtype = mx::float16}).to_dense(), mx::arange(5, mx::float16)));
}

TEST(Gguf, TokenizerData) {
  auto f = io::GgufFile::open(tests::fixture("gguf/meta.gguf"));
  auto j = tests::load_json(tests::fixture("gguf/meta.json"))["tokenizer"];
  auto t = io::GgufTokenizerData::parse(f.metadata());
  EXPECT_EQ(t.model, j["model"].get<std::string>());
  EXPECT_EQ(t.pre, j["pre"].get<std::string>());
  EXPECT_EQ(t.tokens, j["tokens"].get<std::vector<std::string>>());
  EXPECT_EQ(t.scores, j["scores"].get<std::vector<float>>());
  EXPECT_EQ(t.token_type, j["token_type"].get<std::vector<std::int32_t>>());
  EXPECT_EQ(t.merges, j["merges"].get<std::vector<std::string>>());
  EXPECT_EQ(t.bos_token_id, j["bos"].get<std::int64_t>());
  EXPECT_EQ(t.eos_token_id, j["eos"].get<std::int64_t>());
  EXPECT_EQ(t.padding_token_id, j["pad"].get<std::int64_t>());
  EXPECT_EQ(t.unknown_token_id, j["unk"].get<std::int64_t>());
  EXPECT_FALSE(t.eot_token_id);
  EXPECT_EQ(t.add_bos_token, true);
  EXPECT_EQ(t.add_eos_token, false);
  EXPECT_FALSE(t.add_space_prefix);
  EXPECT_EQ(t.chat_template, j["chat_template"].get<std::string>());
  // A file without a tokenizer says so.
  EXPECT_THROW(io::GgufTokenizerData::parse(io::GgufFile::open(gguf_path("Q4_0")).metadata()),
               FormatError);
}

// ---------------------------------------------------------------------------------------------
// Malformed files. A small builder writes GGUF bytes field by field, so that each test breaks
// exactly one thing; every error must be a FormatError naming the file (never a crash).

namespace {

struct Builder {
  std::vector<std::uint8_t> b;
  template <typename T>
  Builder& put(T v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  Builder& str(const std::string& s) {
    put<std::uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Builder& pad(std::size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
};

struct Tensor {
  std::string name = "w";
  std::vector<std::uint64_t> ne = {32, 2};
  std::uint32_t type = 0;
  std::uint64_t offset = 0;
};

/// A valid file: magic, version, one string key, `tensors` (F32 [2, 32] by default) and data.
std::vector<std::uint8_t> make_file(std::vector<Tensor> tensors = {Tensor{}},
                                    std::uint32_t version = 3, std::uint64_t data_bytes = 256) {
  Builder w;
  w.put<std::uint32_t>(0x46554747)
      .put(version)
      .put<std::uint64_t>(tensors.size())
      .put<std::uint64_t>(1);
  w.str("general.name").put<std::uint32_t>(8).str("tiny");
  for (const auto& t : tensors) {
    w.str(t.name).put<std::uint32_t>(static_cast<std::uint32_t>(t.ne.size()));
    for (auto n : t.ne) w.put(n);
    w.put(t.type).put(t.offset);
  }
  w.pad(32);
  w.b.resize(w.b.size() + data_bytes, 0x3f);
  return w.b;
}

/// Expects a FormatError naming the file and containing `needle`.
void expect_format_error(std::vector<std::uint8_t> bytes, const std::string& needle) {
  try {
    io::GgufFile::from_bytes(std::move(bytes), "bad.gguf");
    ADD_FAILURE() << "no error; expected: " << needle;
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bad.gguf: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

}  // namespace

TEST(GgufErrors, BuilderFileIsValid) {
  auto f = io::GgufFile::from_bytes(make_file(), "ok.gguf");
  EXPECT_EQ(f.tensors().at(0).shape, (mx::Shape{2, 32}));
  EXPECT_EQ(f.metadata().required<std::string>("general.name"), "tiny");
  EXPECT_EQ(f.load("w").dense->shape(), (mx::Shape{2, 32}));
  EXPECT_NO_THROW(io::GgufFile::from_bytes(make_file({Tensor{}}, 2), "v2.gguf"));
  EXPECT_THROW(f.load("nope"), WeightError);
}

TEST(GgufErrors, EveryTruncationIsAFormatError) {
  const auto full = make_file();
  for (std::size_t n = 0; n < full.size(); ++n)
    expect_format_error(
        std::vector<std::uint8_t>(full.begin(), full.begin() + static_cast<long>(n)), "");
  // And real files cut at several points, read from disk.
  const auto q4k = read_bytes(gguf_path("Q4_K"));
  const auto dir = fs::temp_directory_path() / ("ominix_gguf_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (std::size_t cut : {std::size_t{0}, std::size_t{3}, std::size_t{10}, std::size_t{23},
                          std::size_t{60}, std::size_t{200}, q4k.size() / 2, q4k.size() - 1}) {
    const auto p = dir / ("cut" + std::to_string(cut) + ".gguf");
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(q4k.data()), static_cast<long>(cut));
    try {
      io::GgufFile::open(p);
      ADD_FAILURE() << "no error at cut " << cut;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
  fs::remove_all(dir);
  EXPECT_THROW(io::GgufFile::open(dir / "missing.gguf"), IoError);
}

TEST(GgufErrors, HeaderFields) {
  auto bytes = make_file();
  bytes[0] = 'X';
  expect_format_error(bytes, "not a GGUF file (magic 'XGUF'");
  expect_format_error(make_file({Tensor{}}, 1), "GGUF version 1 is not supported");
  expect_format_error(make_file({Tensor{}}, 99), "GGUF version 99");
  expect_format_error(make_file({Tensor{}}, 0x03000000), "big-endian");
  bytes = make_file();
  std::uint64_t absurd = std::uint64_t{1} << 60;
  std::memcpy(bytes.data() + 8, &absurd, 8);
  expect_format_error(bytes, "tensor count 1152921504606846976 cannot fit");
  bytes = make_file();
  std::memcpy(bytes.data() + 16, &absurd, 8);
  expect_format_error(bytes, "metadata count 1152921504606846976 cannot fit");
}

TEST(GgufErrors, MetadataFields) {
  auto bytes = make_file();
  const std::uint64_t huge = ~std::uint64_t{0} - 3;
  std::memcpy(bytes.data() + 24, &huge, 8);  // the first key's length
  expect_format_error(bytes, "the name of metadata entry 0");
  bytes = make_file();
  std::memcpy(bytes.data() + 24 + 8 + 12 + 4, &huge, 8);  // the string value's length
  expect_format_error(bytes, "metadata 'general.name'");
  bytes = make_file();
  const std::uint32_t bad_type = 13;
  std::memcpy(bytes.data() + 24 + 8 + 12, &bad_type, 4);
  expect_format_error(bytes, "metadata 'general.name': unknown value type 13");

  auto kv_file = [](auto write_value) {
    Builder w;
    w.put<std::uint32_t>(0x46554747)
        .put<std::uint32_t>(3)
        .put<std::uint64_t>(0)
        .put<std::uint64_t>(1);
    w.str("k");
    write_value(w);
    return w.b;
  };
  expect_format_error(
      kv_file([](Builder& w) {
        w.put<std::uint32_t>(9).put<std::uint32_t>(8).put<std::uint64_t>(1ull << 62);
      }),
      "metadata 'k': array of 4611686018427387904 string");
  expect_format_error(kv_file([](Builder& w) {
                        w.put<std::uint32_t>(9).put<std::uint32_t>(77).put<std::uint64_t>(1);
                      }),
                      "unknown array element type 77");
  expect_format_error(kv_file([](Builder& w) { w.put<std::uint32_t>(7).put<std::uint8_t>(2); }),
                      "boolean has value 2");
  expect_format_error(kv_file([](Builder& w) {
                        w.put<std::uint32_t>(9);
                        for (int i = 0; i < 12; ++i) w.put<std::uint32_t>(9).put<std::uint64_t>(1);
                        w.put<std::uint32_t>(4).put<std::uint64_t>(1).put<std::uint32_t>(0);
                      }),
                      "nested deeper than 8");
  // general.alignment of the wrong type or not a power of two.
  auto align_file = [](std::uint32_t type, std::uint32_t value) {
    Builder w;
    w.put<std::uint32_t>(0x46554747)
        .put<std::uint32_t>(3)
        .put<std::uint64_t>(0)
        .put<std::uint64_t>(1);
    w.str("general.alignment").put(type).put(value);
    return w.b;
  };
  expect_format_error(align_file(4, 48), "general.alignment = 48 is not a power of two");
  expect_format_error(align_file(4, 0), "is not a power of two");
  expect_format_error(align_file(5, 32), "general.alignment: must be a uint32, found a int32");
  // Duplicate keys.
  Builder w;
  w.put<std::uint32_t>(0x46554747)
      .put<std::uint32_t>(3)
      .put<std::uint64_t>(0)
      .put<std::uint64_t>(2);
  w.str("k")
      .put<std::uint32_t>(0)
      .put<std::uint8_t>(1)
      .str("k")
      .put<std::uint32_t>(0)
      .put<std::uint8_t>(1);
  expect_format_error(w.b, "metadata 'k': appears twice");
}

TEST(GgufErrors, TensorTable) {
  expect_format_error(make_file({Tensor{.offset = 1024}}),
                      "tensor 'w' (256 bytes at data offset 1024) ends past");
  expect_format_error(make_file({Tensor{.offset = 32}}), "tensor 'w'");
  expect_format_error(make_file({Tensor{.offset = 16}}),
                      "tensor 'w': offset 16 is not a multiple of the alignment 32");
  expect_format_error(make_file({Tensor{.type = 4}}), "tensor 'w': unknown ggml type 4");
  expect_format_error(make_file({Tensor{.type = 1000}}), "unknown ggml type 1000");
  expect_format_error(make_file({Tensor{.ne = {1, 1, 1, 1, 1}}}),
                      "tensor 'w': rank 5 exceeds ggml's 4");
  expect_format_error(make_file({Tensor{.ne = {1ull << 40}}}),
                      "dimension 1099511627776 is too large");
  expect_format_error(make_file({Tensor{.ne = {1u << 30, 1u << 30, 1u << 30}}}),
                      "element count overflows");
  expect_format_error(make_file({Tensor{.ne = {16, 2}, .type = 8}}),
                      "row of 16 values is not a whole number of Q8_0 blocks of 32");
  expect_format_error(make_file({Tensor{.name = "a"}, Tensor{.name = "b", .offset = 128}}, 3, 512),
                      "tensors 'a' and 'b' overlap");
  expect_format_error(make_file({Tensor{.name = "a"}, Tensor{.name = "a", .offset = 256}}, 3, 512),
                      "tensor 'a': appears twice");
  // Absurd sizes that still fit the type table: a huge tensor in a tiny file.
  expect_format_error(make_file({Tensor{.ne = {1u << 30, 1u << 20}}}),
                      "ends past the data section");
  // A type the reader knows but cannot load: the file opens, loading that tensor says why.
  auto f = io::GgufFile::from_bytes(make_file({Tensor{.ne = {256}, .type = 16}}), "iq.gguf");
  try {
    f.load("w");
    FAIL() << "no error";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("iq.gguf: tensor 'w' has type IQ2_XXS"), std::string::npos)
        << e.what();
  }
  // An empty quantized tensor (found by fuzz_gguf) loads as an empty dense array.
  auto empty =
      io::GgufFile::from_bytes(make_file({Tensor{.ne = {32, 0}, .type = 2}}), "empty.gguf");
  auto e = empty.load("w");
  ASSERT_TRUE(e.dense);
  EXPECT_EQ(e.dense->shape(), (mx::Shape{0, 32}));
  // Two well-formed tensors side by side load fine.
  auto ok = io::GgufFile::from_bytes(
      make_file({Tensor{.name = "a"}, Tensor{.name = "b", .offset = 256}}, 3, 512), "ok.gguf");
  EXPECT_EQ(ok.tensors().size(), 2u);
}

// Random single-byte corruptions of a real file: each open either succeeds or throws an
// ominix::Error; loading every tensor of a file that opened must not crash either.
TEST(GgufErrors, CorruptedBytesNeverCrash) {
  const auto good = read_bytes(gguf_path("Q5_K"));
  std::uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
  int opened = 0;
  for (int i = 0; i < 300; ++i) {
    auto bytes = good;
    const std::size_t header = std::min<std::size_t>(bytes.size(), 400);  // mostly the header
    bytes[next() % header] = static_cast<std::uint8_t>(next() >> 56);
    try {
      auto f = io::GgufFile::from_bytes(std::move(bytes), "fuzz.gguf");
      ++opened;
      for (const auto& t : f.tensors()) {
        try {
          mx::eval(f.load(t, {.quant = io::GgufQuantPolicy::dequantize}).to_dense());
        } catch (const Error&) {
        }
      }
    } catch (const Error&) {
    }
  }
  EXPECT_GT(opened, 0);
}
