// libFuzzer target: arbitrary bytes as a model's config.json, read by ConfigReader and by the
// config parser of every language-model family (each the same way its loader does), plus the
// shared structs (attention, RoPE, quantization, EOS ids). ominix::Error is the expected outcome;
// crashes, sanitizer reports, other exceptions (nlohmann::json's included) are findings.
#include <cstddef>
#include <cstdint>

#include "models/gemma3/config.h"
#include "models/glm4/config.h"
#include "models/mixtral/config.h"
#include "models/qwen3/config.h"
#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "support/fuzz_file.h"

namespace {

template <typename F>
void expect_ominix_error(F&& f) {
  try {
    f();
  } catch (const ominix::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace io = ominix::io;
  const auto path = ominix::fuzz::write_input("config.json", data, size);
  expect_ominix_error([&] {
    const auto c = io::ConfigReader::load(path);
    expect_ominix_error([&] { (void)io::AttentionConfig::parse(c); });
    expect_ominix_error([&] { (void)io::RopeConfig::parse(c); });
    expect_ominix_error([&] { (void)io::QuantizationConfig::parse(c); });
    expect_ominix_error([&] { (void)c.int_list("eos_token_id"); });
    expect_ominix_error([&] { (void)c.child("text_config").optional<int>("vocab_size"); });
    expect_ominix_error([&] { (void)ominix::qwen3::Config::parse(c); });
    expect_ominix_error([&] { (void)ominix::gemma3::Config::parse(c); });
    expect_ominix_error([&] { (void)ominix::glm4::Config::parse(c); });
    expect_ominix_error([&] { (void)ominix::mixtral::Config::parse(c); });
  });
  return 0;
}
