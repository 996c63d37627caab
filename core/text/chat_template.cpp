// ChatTemplate: template discovery in a model directory and the message preprocessing that
// transformers' apply_chat_template / render_jinja_template apply before rendering.
// ref: transformers 5.x, tokenization_utils_base.py (apply_chat_template, get_chat_template) and
// utils/chat_template_utils.py (render_jinja_template, _alias_reasoning_fields).
#include "ominix/text/chat_template.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "ominix/io/config.h"

namespace ominix::text {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail<IoError>("cannot open {}", p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail<IoError>("cannot read {}", p.string());
  return ss.str();
}

ojson read_json(const fs::path& p) {
  return io::parse_ordered_json(read_file(p), p.string());
}

// The order of transformers' SPECIAL_TOKENS_ATTRIBUTES.
constexpr const char* kSpecialTokenNames[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                              "pad_token", "cls_token", "mask_token"};

std::optional<std::string> token_text(const ojson& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

ChatTemplate::ChatTemplate(std::string source,
                           std::vector<std::pair<std::string, std::string>> special_tokens,
                           TemplateLimits limits)
    : special_tokens_(std::move(special_tokens)) {
  Template t(source, limits);
  templates_.emplace("default", Named{std::move(source), std::move(t)});
}

ChatTemplate ChatTemplate::from_model_dir(const fs::path& dir, TemplateLimits limits) {
  ChatTemplate ct;
  const fs::path config_path = dir / "tokenizer_config.json";
  ojson config = ojson::object();
  if (fs::exists(config_path)) config = read_json(config_path);
  if (!config.is_object()) fail<FormatError>("{}: expected a JSON object", config_path.string());

  // Special tokens: tokenizer_config.json first, special_tokens_map.json fills the gaps.
  ojson map = ojson::object();
  if (fs::exists(dir / "special_tokens_map.json")) map = read_json(dir / "special_tokens_map.json");
  for (const char* name : kSpecialTokenNames) {
    std::optional<std::string> text;
    if (config.contains(name)) {
      text = token_text(config[name]);
    } else if (map.is_object() && map.contains(name)) {
      text = token_text(map[name]);
    }
    if (text) ct.special_tokens_.emplace_back(name, *text);
  }

  auto add = [&](const std::string& name, std::string source, const fs::path& origin) {
    try {
      Template t(source, limits);
      ct.templates_.insert_or_assign(name, Named{std::move(source), std::move(t)});
    } catch (const TemplateError& e) {
      throw TemplateError(fmt::format("{}: {}", origin.string(), e.message()), e.line(),
                          e.column());
    }
  };

  const fs::path jinja_path = dir / "chat_template.jinja";
  if (fs::exists(jinja_path)) {
    add("default", read_file(jinja_path), jinja_path);
    const fs::path extra_dir = dir / "additional_chat_templates";
    if (fs::is_directory(extra_dir)) {
      for (const auto& entry : fs::directory_iterator(extra_dir)) {
        if (entry.path().extension() == ".jinja")
          add(entry.path().stem().string(), read_file(entry.path()), entry.path());
      }
    }
  } else if (config.contains("chat_template") && !config["chat_template"].is_null()) {
    const ojson& ct_field = config["chat_template"];
    if (ct_field.is_string()) {
      add("default", ct_field.get<std::string>(), config_path);
    } else if (ct_field.is_array()) {
      for (const auto& item : ct_field) {
        if (!item.is_object() || !item.contains("name") || !item.contains("template") ||
            !item["name"].is_string() || !item["template"].is_string())
          fail<FormatError>("{}: chat_template list entries need string 'name' and 'template'",
                            config_path.string());
        add(item["name"].get<std::string>(), item["template"].get<std::string>(), config_path);
      }
    } else {
      fail<FormatError>("{}: chat_template must be a string or a list", config_path.string());
    }
  } else if (fs::exists(dir / "chat_template.json")) {
    const fs::path p = dir / "chat_template.json";
    ojson j = read_json(p);
    if (!j.is_object() || !j.contains("chat_template") || !j["chat_template"].is_string())
      fail<FormatError>("{}: expected a string field 'chat_template'", p.string());
    add("default", j["chat_template"].get<std::string>(), p);
  }
  if (ct.templates_.empty())
    fail<ConfigError>(
        "{}: no chat template (looked for chat_template.jinja and the chat_template "
        "field of tokenizer_config.json)",
        dir.string());
  return ct;
}

const ChatTemplate::Named& ChatTemplate::pick(bool with_tools) const {
  if (templates_.size() == 1 && templates_.count("default")) return templates_.at("default");
  if (with_tools) {
    auto it = templates_.find("tool_use");
    if (it != templates_.end()) return it->second;
  }
  auto it = templates_.find("default");
  if (it != templates_.end()) return it->second;
  std::string names;
  for (const auto& [k, v] : templates_) names += (names.empty() ? "" : ", ") + k;
  fail<ConfigError>("this model has multiple chat templates with no default: {}", names);
}

const std::string& ChatTemplate::source(bool with_tools) const {
  return pick(with_tools).source;
}

std::string ChatTemplate::render(const ojson& messages, const RenderOptions& options) const {
  if (!messages.is_array()) throw InvalidArgument("messages must be a JSON array of objects");
  if (messages.empty())
    throw InvalidArgument(
        "Cannot apply chat template to an empty conversation. Provide at least one message.");
  bool with_tools = !options.tools.is_null();
  if (with_tools && !options.tools.is_array())
    throw InvalidArgument("tools must be a JSON array of tool schemas");
  if (!options.extra.is_object())
    throw InvalidArgument("extra template variables must be an object");

  // _normalize_chat_messages drops None-valued keys; _alias_reasoning_fields fills
  // reasoning_content (and thinking) from the first non-null reasoning field.
  ValueList chat;
  for (const auto& m : messages) {
    if (!m.is_object())
      throw InvalidArgument(fmt::format("Chat messages should be dicts, but got {}", m.dump()));
    ojson msg = ojson::object();
    for (const auto& [k, v] : m.items())
      if (!v.is_null()) msg[k] = v;
    const ojson* reasoning = nullptr;
    for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
      if (msg.contains(key)) {
        reasoning = &msg[key];
        break;
      }
    }
    if (reasoning) {
      ojson r = *reasoning;
      ojson aliased = ojson::object();
      aliased["thinking"] = r;
      for (const auto& [k, v] : msg.items()) aliased[k] = v;
      aliased["reasoning_content"] = r;
      msg = std::move(aliased);
    }
    chat.push_back(Value::from_json(msg));
  }

  ValueDict vars;
  vars.set(Value("messages"), Value(std::move(chat)));
  vars.set(Value("tools"), with_tools ? Value::from_json(options.tools) : Value(nullptr));
  vars.set(Value("documents"), Value(nullptr));
  vars.set(Value("add_generation_prompt"), Value(options.add_generation_prompt));
  for (const auto& [k, v] : special_tokens_) vars.set(Value(k), Value(v));
  for (const auto& [k, v] : options.extra.items()) vars.set(Value(k), Value::from_json(v));
  return pick(with_tools).tmpl.render(vars);
}

}  // namespace ominix::text
