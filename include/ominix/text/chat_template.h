// Chat templates: render a conversation into the prompt text exactly as transformers'
// apply_chat_template(..., tokenize=False) does, from a Hugging Face model directory.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ominix/text/jinja.h"

namespace ominix::text {

/// What a render passes to the template besides the messages.
struct RenderOptions {
  /// JSON-schema tool definitions (an array), or null for none.
  nlohmann::ordered_json tools = nullptr;
  /// Appends the header that starts an assistant turn.
  bool add_generation_prompt = false;
  /// Extra template variables, e.g. {"enable_thinking": false}. They override special tokens.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

/// A model's chat template(s) plus the special tokens transformers passes to them.
class ChatTemplate {
 public:
  /// One template. special_tokens maps names like "bos_token" to their text.
  explicit ChatTemplate(std::string source,
                        std::vector<std::pair<std::string, std::string>> special_tokens = {},
                        TemplateLimits limits = {});

  /// Loads chat_template.jinja (+ additional_chat_templates/*.jinja) or the chat_template field
  /// of tokenizer_config.json (a string or a list of {name, template}), and the special tokens
  /// of tokenizer_config.json (strings or AddedToken objects). Throws IoError/FormatError
  /// naming the file.
  static ChatTemplate from_model_dir(const std::filesystem::path& dir, TemplateLimits limits = {});

  /// Renders messages (an array of message objects). Throws TemplateError (TemplateRaised for
  /// raise_exception) or InvalidArgument for malformed input.
  std::string render(const nlohmann::ordered_json& messages,
                     const RenderOptions& options = {}) const;

  /// The source of the template a render with or without tools would use.
  const std::string& source(bool with_tools = false) const;
  /// The special tokens passed to the template, in transformers' order.
  const std::vector<std::pair<std::string, std::string>>& special_tokens() const {
    return special_tokens_;
  }

 private:
  ChatTemplate() = default;
  struct Named {
    std::string source;
    Template tmpl;
  };
  const Named& pick(bool with_tools) const;

  std::map<std::string, Named> templates_;  // "default", "tool_use", ...
  std::vector<std::pair<std::string, std::string>> special_tokens_;
};

}  // namespace ominix::text
