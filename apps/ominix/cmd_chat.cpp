// ominix chat: an interactive conversation. Reads one user message per line from stdin (a TTY or
// a pipe; a line ending in \ continues on the next, and lines between two """ lines are one
// message), applies the chat template to the whole history, and reuses the prompt cache between
// turns so only the new part is prefilled. /reset starts over, /exit (or end of input) quits.
// Ctrl-C stops the current answer; at the prompt it exits. A message that is not valid UTF-8 is
// rejected (with the line and byte offset) and the chat goes on. An answer stops at the model's
// context (finish reason "length"); the next turn then drops the oldest messages to fit. A model
// without a chat template (a base model, such as the default Gemma 3 270M GGUF) chats through a
// plain User/Assistant transcript with a two-turn example, stopping where it starts the user's next
// line (the way llama.cpp's interactive mode talks to base models with a reverse prompt).
// With a vision-language model, /image PATH attaches an image to the next message (its content
// then holds the images and the text); each turn binds the model to the conversation's images.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "commands.h"
#include "llm_options.h"
#include "ominix/base/device.h"
#include "ominix/base/error.h"

namespace ominix::cli {
namespace {

std::atomic<bool> interrupted{false};

extern "C" void on_sigint(int) {
  interrupted.store(true);
}

/// Installs the SIGINT handler (without SA_RESTART, so a read at the prompt is interrupted) and
/// restores the previous one when destroyed.
class SigintGuard {
 public:
  SigintGuard() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &previous_);
  }
  ~SigintGuard() { sigaction(SIGINT, &previous_, nullptr); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction previous_ {};
};

// The transcript a base model continues: a preamble, two example turns, then the conversation,
// ending with "Assistant:".
// The image paths of the messages' image parts, in order.
std::vector<std::filesystem::path> images_in(const nlohmann::ordered_json& messages) {
  std::vector<std::filesystem::path> out;
  for (const auto& m : messages)
    if (m["content"].is_array())
      for (const auto& part : m["content"])
        if (part.value("type", "") == "image") out.emplace_back(part["image"].get<std::string>());
  return out;
}

std::string transcript(const nlohmann::ordered_json& messages) {
  std::string system =
      "A conversation between a User and a knowledgeable Assistant, who answers briefly and "
      "correctly.";
  std::string turns;
  for (const auto& m : messages) {
    const auto role = m["role"].get<std::string>();
    const auto content = m["content"].get<std::string>();
    if (role == "system")
      system = content;
    else
      turns += (role == "user" ? "User: " : "Assistant: ") + content + "\n";
  }
  return system +
         "\n\nUser: What is the capital of Italy?\nAssistant: The capital of Italy is Rome.\n"
         "User: How many days are in a week?\nAssistant: A week has seven days.\n" +
         turns + "Assistant:";
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \n\t"), e = s.find_last_not_of(" \n\t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

struct ChatArgs {
  LlmArgs llm;
  bool stats = false;
};

/// One message from stdin: a line; a line ending in a backslash continues on the next (the
/// backslash becomes a newline); a line holding only """ starts a block that runs to the next
/// such line. nullopt at end of input (or Ctrl-C at the prompt). InvalidArgument (after the
/// whole message is read) when a line is not valid UTF-8, naming the line and the byte offset.
std::optional<std::string> read_message(bool interactive) {
  std::string line, message;
  std::string bad;  // the first invalid line's report
  int line_no = 0;
  bool block = false;
  while (true) {
    if (!std::getline(std::cin, line)) {
      if (line_no == 0 || message.empty()) return std::nullopt;
      break;  // end of input inside a message: send what was read
    }
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (bad.empty())
      if (const auto off = find_invalid_utf8(line); off != std::string::npos)
        bad = fmt::format("the message is not valid UTF-8 (line {}, byte offset {} of that line)",
                          line_no, off);
    if (line_no == 1 && line == "\"\"\"") {
      block = true;
    } else if (block) {
      if (line == "\"\"\"") break;
      message += (line_no > 2 ? "\n" : "") + line;
    } else if (!line.empty() && line.back() == '\\') {
      message += line.substr(0, line.size() - 1) + "\n";
    } else {
      message += line;
      break;
    }
    if (interactive) {
      fmt::print(". ");
      std::fflush(stdout);
    }
  }
  if (!bad.empty()) fail<InvalidArgument>("{}; it was not sent", bad);
  return message;
}

void run(const ChatArgs& a, const GlobalOptions& global) {
  set_device(parse_device_kind(global.device));
  const Model model = load_with_progress(a.llm.model, a.llm.quiet);
  if (!model.tokenizer()) fail<InvalidArgument>("{}: chat needs tokenizer.json", a.llm.model);
  check_utf8(a.llm.system, "--system");
  const ChatFormat chat(model, a.llm);
  const bool plain = !chat.get();
  if (plain && !a.llm.quiet)
    fmt::print(stderr,
               "[{} has no chat template: chatting through a plain User/Assistant transcript, as "
               "with a base model]\n",
               a.llm.model);
  auto cache = model.make_cache(cache_options(a.llm));
  std::optional<Model> draft;
  std::optional<generate::PromptCache> draft_cache;
  if (!a.llm.draft_model.empty()) {
    draft.emplace(load_with_progress(a.llm.draft_model, a.llm.quiet));
    draft_cache.emplace(draft->make_cache());
  }
  const bool interactive = ::isatty(STDIN_FILENO);
  auto messages = nlohmann::ordered_json::array();
  std::vector<std::string> pending_images;  // /image: attached to the next message
  auto reset = [&] {
    messages = nlohmann::ordered_json::array();
    pending_images.clear();
    if (!a.llm.system.empty()) messages.push_back({{"role", "system"}, {"content", a.llm.system}});
    cache.reset();
    if (draft_cache) draft_cache->reset();
  };
  reset();
  SigintGuard sigint;
  if (interactive && !a.llm.quiet)
    fmt::print(stderr,
               "Type a message (end a line with \\ to continue it, or put it between \"\"\" "
               "lines); /reset starts over, /exit quits.\n");
  const int context = model.info().max_position_embeddings;
  std::unique_ptr<generate::LanguageModel> bound;  // the model bound to the conversation's images
  auto encode = [&]() -> std::vector<int> {
    bound.reset();
    if (plain) return model.encode(transcript(messages));
    const auto images = images_in(messages);
    if (images.empty()) return chat.encode(messages);
    auto p = model.encode_with_images(chat.render(messages), images);
    bound = model.bind(p);
    return std::move(p.ids);
  };
  while (true) {
    if (interactive) {
      fmt::print("> ");
      std::fflush(stdout);
    }
    interrupted.store(false);
    std::optional<std::string> message;
    try {
      message = read_message(interactive);
    } catch (const InvalidArgument& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      continue;
    }
    if (!message) {
      if (interrupted.load()) fmt::print("\n");
      break;  // end of input, or Ctrl-C at the prompt
    }
    const std::string& line = *message;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      reset();
      fmt::print(stderr, "[conversation reset]\n");
      continue;
    }
    if (line.starts_with("/video ")) {
      fmt::print(stderr, "error: /video: video is not supported yet\n");
      continue;
    }
    if (line.starts_with("/image ")) {
      const std::string path = trim(line.substr(7));
      if (!model.reads_images())
        fmt::print(stderr, "error: /image: {} is a text-only model ({}); it reads no images\n",
                   a.llm.model, model.info().model_type);
      else if (plain)
        fmt::print(stderr, "error: /image needs a chat template\n");
      else if (!std::filesystem::is_regular_file(path))
        fmt::print(stderr, "error: /image: {}: no such file\n", path);
      else {
        pending_images.push_back(path);
        if (!a.llm.quiet) fmt::print(stderr, "[{} attached to the next message]\n", path);
      }
      continue;
    }
    if (line.empty()) continue;
    if (pending_images.empty()) {
      messages.push_back({{"role", "user"}, {"content", line}});
    } else {
      auto content = nlohmann::ordered_json::array();
      for (const auto& p : pending_images) content.push_back({{"type", "image"}, {"image", p}});
      content.push_back({{"type", "text"}, {"text", line}});
      messages.push_back({{"role", "user"}, {"content", std::move(content)}});
      pending_images.clear();
    }
    auto params = generate_params(a.llm, model);
    if (plain) params.stop_strings.insert(params.stop_strings.end(), {"\nUser:", "\n\n"});
    std::vector<int> prompt;
    try {
      prompt = encode();
    } catch (const Error& e) {  // e.g. an attached image that does not decode
      messages.erase(messages.size() - 1);
      fmt::print(stderr, "error: {}\n", e.what());
      continue;
    }
    if (context_room(model, cache, 0)) {
      // Leave room for an answer: drop the oldest turns (the system prompt stays) while the
      // conversation does not leave min(max_tokens, context / 4) tokens of the context.
      const int want = a.llm.max_tokens < 0 ? context / 4 : std::min(a.llm.max_tokens, context / 4);
      const std::size_t first = a.llm.system.empty() ? 0 : 1;
      // The prompt cache matches token ids only: once older turns go, a later image with the same
      // grid could land on the ids a dropped image left in the cache, so start it afresh.
      const bool had_images = !images_in(messages).empty();
      int dropped = 0;
      while (static_cast<int>(prompt.size()) + want > context && messages.size() > first + 1) {
        messages.erase(first);
        ++dropped;
        // Start at a user turn.
        while (messages.size() > first + 1 && messages[first]["role"] != "user") {
          messages.erase(first);
          ++dropped;
        }
        prompt = encode();
      }
      if (dropped && had_images) cache.reset();
      if (dropped && !a.llm.quiet)
        fmt::print(stderr,
                   "[dropped the {} oldest message(s) to fit the model's context of {} "
                   "tokens; /reset starts over]\n",
                   dropped, context);
    }
    if (draft && !bound)
      params.draft = {
          .model = &draft->lm(), .cache = &*draft_cache, .num_draft_tokens = a.llm.num_draft};
    generate::GenerationResult result;
    try {
      bool started = false;  // the transcript's answer starts after "Assistant:"'s space
      result = generate::generate(
          bound ? *bound : model.lm(), cache, prompt, params, [&](const generate::Chunk& c) {
            std::string_view text = c.text;
            if (plain && !started) {
              const auto b = text.find_first_not_of(' ');
              text = b == std::string_view::npos ? std::string_view() : text.substr(b);
              started = !text.empty();
            }
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
            return !interrupted.load();
          });
    } catch (const InvalidArgument& e) {  // e.g. one message longer than the context
      messages.erase(messages.size() - 1);
      fmt::print(stderr, "error: {}\n", e.what());
      continue;
    }
    fmt::print("\n");
    std::fflush(stdout);
    if (result.finish_reason == generate::FinishReason::cancelled)
      fmt::print(stderr, "[stopped]\n");
    if (result.finish_reason == generate::FinishReason::context)
      fmt::print(stderr,
                 "warning: the answer stopped at the model's context of {} tokens (finish_reason "
                 "\"length\"); the next turn drops the oldest messages. /reset starts over; "
                 "--max-kv-size N keeps a sliding window of N positions instead\n",
                 context);
    messages.push_back(
        {{"role", "assistant"}, {"content", plain ? trim(result.text) : result.text}});
    if (a.stats && !a.llm.quiet) fmt::print(stderr, "{}\n", stats_line(result.stats));
  }
}

}  // namespace

void add_chat(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("chat", "Chat with a language model (one message per line)");
  auto args = std::make_shared<ChatArgs>();
  args->llm.max_tokens = 512;
  add_llm_options(cmd, args->llm);
  cmd->add_flag("--stats", args->stats, "Print each answer's stats to stderr");
  cmd->callback([args, &global] { run(*args, global); });
}

}  // namespace ominix::cli
