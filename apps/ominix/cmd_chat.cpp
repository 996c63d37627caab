// ominix chat: an interactive conversation. Reads one user message per line from stdin (a TTY or
// a pipe), applies the chat template to the whole history, and reuses the prompt cache between
// turns so only the new part is prefilled. /reset starts over, /exit (or end of input) quits.
// Ctrl-C stops the current answer; at the prompt it exits. A model without a chat template (a
// base model, such as the default Gemma 3 270M GGUF) chats through a plain User/Assistant
// transcript with a two-turn example, stopping where it starts the user's next line (the way
// llama.cpp's interactive mode talks to base models with a reverse prompt).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

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
  bool ignore_eos = false;
};

void run(const ChatArgs& a, const GlobalOptions& global) {
  set_device(parse_device_kind(global.device));
  const Model model = load_with_progress(a.llm.model);
  if (!model.tokenizer()) fail<InvalidArgument>("{}: chat needs tokenizer.json", a.llm.model);
  const bool plain = !model.chat_template();
  if (plain)
    fmt::print(stderr,
               "[{} has no chat template: chatting through a plain User/Assistant transcript, as "
               "with a base model]\n",
               a.llm.model);
  auto cache = model.make_cache(cache_options(a.llm));
  std::optional<Model> draft;
  std::optional<generate::PromptCache> draft_cache;
  if (!a.llm.draft_model.empty()) {
    draft.emplace(load_with_progress(a.llm.draft_model));
    draft_cache.emplace(draft->make_cache());
  }
  const bool interactive = ::isatty(STDIN_FILENO);
  auto messages = nlohmann::ordered_json::array();
  auto reset = [&] {
    messages = nlohmann::ordered_json::array();
    if (!a.llm.system.empty()) messages.push_back({{"role", "system"}, {"content", a.llm.system}});
    cache.reset();
    if (draft_cache) draft_cache->reset();
  };
  reset();
  SigintGuard sigint;
  if (interactive) fmt::print(stderr, "Type a message; /reset starts over, /exit quits.\n");
  std::string line;
  while (true) {
    if (interactive) {
      fmt::print("> ");
      std::fflush(stdout);
    }
    interrupted.store(false);
    if (!std::getline(std::cin, line)) {
      if (interrupted.load()) fmt::print("\n");
      break;  // end of input, or Ctrl-C at the prompt
    }
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      reset();
      fmt::print(stderr, "[conversation reset]\n");
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    auto params = generate_params(a.llm);
    params.tokenizer = model.tokenizer();
    params.ignore_eos = a.ignore_eos;
    if (plain) params.stop_strings.insert(params.stop_strings.end(), {"\nUser:", "\n\n"});
    const auto prompt = plain ? model.encode(transcript(messages)) : model.encode_chat(messages);
    if (draft)
      params.draft = {
          .model = &draft->lm(), .cache = &*draft_cache, .num_draft_tokens = a.llm.num_draft};
    generate::GenerationResult result;
    try {
      bool started = false;  // the transcript's answer starts after "Assistant:"'s space
      result = generate::generate(model.lm(), cache, prompt, params, [&](const generate::Chunk& c) {
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
    } catch (const InvalidArgument& e) {  // e.g. the conversation outgrew the context
      messages.erase(messages.size() - 1);
      fmt::print(stderr, "error: {}\n", e.what());
      continue;
    }
    fmt::print("\n");
    std::fflush(stdout);
    if (result.finish_reason == generate::FinishReason::cancelled)
      fmt::print(stderr, "[stopped]\n");
    messages.push_back(
        {{"role", "assistant"}, {"content", plain ? trim(result.text) : result.text}});
    if (a.stats) fmt::print(stderr, "{}\n", stats_line(result.stats));
  }
}

}  // namespace

void add_chat(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("chat", "Chat with a language model (one message per line)");
  auto args = std::make_shared<ChatArgs>();
  args->llm.max_tokens = 512;
  add_llm_options(cmd, args->llm);
  cmd->add_flag("--stats", args->stats, "Print each answer's stats to stderr");
  cmd->add_flag("--ignore-eos", args->ignore_eos, "Do not stop answers at EOS tokens");
  cmd->callback([args, &global] { run(*args, global); });
}

}  // namespace ominix::cli
