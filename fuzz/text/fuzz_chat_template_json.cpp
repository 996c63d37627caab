// libFuzzer target: arbitrary bytes as the JSON a chat template comes from. The first byte picks
// the file: tokenizer_config.json (chat_template string or list, special tokens),
// chat_template.json, or special_tokens_map.json beside a fixed template; the rest is its content.
// The template found renders a fixed conversation under limits. ominix::Error is the expected
// outcome; crashes, sanitizer reports, other exceptions and hangs are findings.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/text/chat_template.h"
#include "support/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 64 * 1024) return 0;
  namespace fs = std::filesystem;
  const fs::path dir = ominix::fuzz::scratch_dir() / "chat";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const char* names[] = {"tokenizer_config.json", "chat_template.json", "special_tokens_map.json"};
  const int which = data[0] % 3;
  ominix::fuzz::write_input(std::string("chat/") + names[which], data + 1, size - 1);
  if (which == 2)
    std::ofstream(dir / "chat_template.jinja")
        << "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}"
           "{% endfor %}";
  ominix::text::TemplateLimits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_steps = 200'000;
  limits.max_depth = 64;
  limits.max_value_items = 100'000;
  try {
    const auto ct = ominix::text::ChatTemplate::from_model_dir(dir, limits);
    const auto messages = nlohmann::ordered_json::parse(
        R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi ü"},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}])");
    (void)ct.render(messages, {.add_generation_prompt = true});
  } catch (const ominix::Error&) {
  }
  return 0;
}
