// ominix template: render a conversation with a model's chat template (a model directory's, a
// .gguf file's, or --chat-template FILE), as transformers' apply_chat_template(tokenize=False)
// does.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "commands.h"
#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/ominix.h"
#include "ominix/text/chat_template.h"

namespace ominix::cli {
namespace {

nlohmann::ordered_json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<IoError>("cannot open {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ominix::io::parse_ordered_json(ss.str(), path);
}

struct TemplateArgs {
  std::string model;
  std::string messages;
  std::string tools;
  std::string chat_template;
  bool add_generation_prompt = false;
  bool no_thinking = false;
};

}  // namespace

void add_template(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand("template", "Render messages with a model's chat template");
  auto args = std::make_shared<TemplateArgs>();
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--model", args->model,
                  "Model directory (tokenizer files suffice) or .gguf file")
      ->required();
  cmd->add_option("--messages", args->messages,
                  "JSON file: an array of messages, or an object with \"messages\" (and "
                  "optionally \"tools\")")
      ->required();
  cmd->add_option("--tools", args->tools, "JSON file with an array of tool schemas");
  cmd->add_flag("--add-generation-prompt", args->add_generation_prompt,
                "Append the header of an assistant turn");
  cmd->add_flag("--no-thinking", args->no_thinking, "Pass enable_thinking=false to the template");
  cmd->add_option("--chat-template", args->chat_template,
                  "Jinja chat template file used instead of the model's");
  cmd->callback([args] {
    auto assets = load_text_assets(args->model);
    if (!args->chat_template.empty()) {
      const auto source = read_input(args->chat_template, "--chat-template");
      check_utf8(source, "--chat-template " + args->chat_template);
      assets.chat_template.emplace(source, assets.special_tokens);
    }
    if (!assets.chat_template)
      fail<InvalidArgument>("{}: the model has no chat template (give --chat-template FILE)",
                            args->model);
    const auto& tmpl = *assets.chat_template;
    nlohmann::ordered_json doc = read_json_file(args->messages);
    text::RenderOptions opts;
    nlohmann::ordered_json messages = doc;
    if (doc.is_object()) {
      if (!doc.contains("messages"))
        fail<FormatError>("{}: expected an array of messages or an object with \"messages\"",
                          args->messages);
      messages = doc["messages"];
      if (doc.contains("tools")) opts.tools = doc["tools"];
    }
    if (!messages.is_array())
      fail<FormatError>("{}: messages must be a JSON array", args->messages);
    if (!args->tools.empty()) opts.tools = read_json_file(args->tools);
    opts.add_generation_prompt = args->add_generation_prompt;
    if (args->no_thinking) opts.extra["enable_thinking"] = false;
    std::string prompt;
    try {
      prompt = tmpl.render(messages, opts);
    } catch (const text::TemplateError& e) {
      fail<FormatError>("chat template of {} failed on {}: {}", args->model, args->messages,
                        e.what());
    } catch (const InvalidArgument& e) {
      fail<FormatError>("{}: {}", args->messages, e.what());
    }
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
  });
}

}  // namespace ominix::cli
