// libFuzzer target: parse and render arbitrary template sources with a fixed chat context.
// Any exception derived from ominix::Error is an expected outcome; crashes, sanitizer reports
// and hangs are findings. Limits keep hostile templates bounded.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/text/jinja.h"

namespace {

const ominix::text::ValueDict& context() {
  static const ominix::text::ValueDict ctx = [] {
    auto j = nlohmann::ordered_json::parse(R"({
      "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hi <think> ünï 😀"},
        {"role": "assistant", "content": "", "reasoning_content": "hmm",
         "tool_calls": [{"id": "call12345", "type": "function",
                         "function": {"name": "f", "arguments": {"a": 1, "b": [1.5, null]}}}]},
        {"role": "tool", "tool_call_id": "call12345", "content": "42"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}
      ],
      "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                 "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
      "add_generation_prompt": true, "enable_thinking": false,
      "bos_token": "<s>", "eos_token": "</s>"
    })");
    ominix::text::ValueDict d;
    for (const auto& [k, v] : j.items())
      d.set(ominix::text::Value(k), ominix::text::Value::from_json(v));
    return d;
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  ominix::text::TemplateLimits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_steps = 200'000;
  limits.max_depth = 64;
  limits.max_value_items = 100'000;
  try {
    ominix::text::Template t(std::string_view(reinterpret_cast<const char*>(data), size), limits);
    (void)t.render(context());
  } catch (const ominix::Error&) {
  }
  return 0;
}
