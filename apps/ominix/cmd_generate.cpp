// ominix generate: one prompt in, generated text (streamed) or a JSON object out.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "llm_options.h"
#include "ominix/base/device.h"
#include "ominix/base/error.h"

namespace ominix::cli {
namespace {

struct GenerateArgs {
  LlmArgs llm;
  std::string prompt, prompt_ids, format = "text";
  bool ignore_eos = false, no_chat_template = false;
};

// "1,2,3", "1 2 3" and "[1, 2, 3]" all parse.
std::vector<int> parse_prompt_ids(const std::string& s) {
  std::vector<int> ids;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(cur, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != cur.size() || v < 0 || v > INT32_MAX)
      fail<InvalidArgument>("--prompt-ids: '{}' is not a token id", cur);
    ids.push_back(static_cast<int>(v));
    cur.clear();
  };
  for (char c : s) {
    if (c == ',' || c == ' ' || c == '[' || c == ']' || c == '\n' || c == '\t') {
      flush();
    } else {
      cur += c;
    }
  }
  flush();
  if (ids.empty()) fail<InvalidArgument>("--prompt-ids: no token ids in '{}'", s);
  return ids;
}

std::vector<int> prompt_tokens(const Model& model, const GenerateArgs& a) {
  if (!a.prompt_ids.empty()) return parse_prompt_ids(a.prompt_ids);
  if (!model.tokenizer())
    fail<InvalidArgument>("{}: no tokenizer.json to encode --prompt; give --prompt-ids",
                          a.llm.model);
  if (model.chat_template() && !a.no_chat_template) {
    auto messages = nlohmann::ordered_json::array();
    if (!a.llm.system.empty()) messages.push_back({{"role", "system"}, {"content", a.llm.system}});
    messages.push_back({{"role", "user"}, {"content", a.prompt}});
    return model.encode_chat(messages);
  }
  if (!a.llm.system.empty())
    fail<InvalidArgument>("--system needs the model's chat template (and no --no-chat-template)");
  return model.encode(a.prompt);
}

nlohmann::json stats_json(const generate::GenerationStats& s) {
  nlohmann::json j{{"prompt_tokens", s.prompt_tokens},
                   {"cached_prompt_tokens", s.cached_prompt_tokens},
                   {"prompt_tps", s.prompt_tps},
                   {"generation_tokens", s.generation_tokens},
                   {"generation_tps", s.generation_tps},
                   {"time_to_first_token_s", s.time_to_first_token_s},
                   {"peak_memory_bytes", s.peak_memory_bytes}};
  if (s.draft_tokens) {
    j["draft_tokens"] = s.draft_tokens;
    j["accepted_draft_tokens"] = s.accepted_draft_tokens;
    j["acceptance_rate"] = s.acceptance_rate();
  }
  return j;
}

void run(const GenerateArgs& a, const GlobalOptions& global) {
  set_device(parse_device_kind(global.device));
  const Model model = load_with_progress(a.llm.model);
  auto prompt = prompt_tokens(model, a);
  auto cache = model.make_cache(cache_options(a.llm));
  auto params = generate_params(a.llm);
  params.ignore_eos = a.ignore_eos;
  params.tokenizer = model.tokenizer();
  std::optional<Model> draft;
  std::optional<generate::PromptCache> draft_cache;
  if (!a.llm.draft_model.empty()) {
    draft.emplace(load_with_progress(a.llm.draft_model));
    draft_cache.emplace(draft->make_cache());
    params.draft = {
        .model = &draft->lm(), .cache = &*draft_cache, .num_draft_tokens = a.llm.num_draft};
  }
  const bool json = a.format == "json";
  const bool has_text = model.tokenizer().has_value();
  auto result = generate::generate(model.lm(), cache, std::move(prompt), params,
                                   [&](const generate::Chunk& c) {
                                     if (json) return true;
                                     if (has_text) {
                                       std::fwrite(c.text.data(), 1, c.text.size(), stdout);
                                     } else {
                                       for (int id : c.tokens) fmt::print("{} ", id);
                                     }
                                     std::fflush(stdout);
                                     return true;
                                   });
  if (json) {
    nlohmann::json j{{"ids", result.tokens},
                     {"finish_reason", generate::to_string(result.finish_reason)},
                     {"stats", stats_json(result.stats)}};
    if (has_text) j["text"] = result.text;
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  fmt::print("\n");
  std::fflush(stdout);
  fmt::print(stderr, "{}\n", stats_line(result.stats));
}

}  // namespace

void add_generate(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt with a language model");
  auto args = std::make_shared<GenerateArgs>();
  add_llm_options(cmd, args->llm);
  auto* prompt = cmd->add_option("--prompt", args->prompt, "Prompt text");
  auto* ids = cmd->add_option("--prompt-ids", args->prompt_ids, "Prompt token ids, e.g. \"1,2,3\"");
  prompt->excludes(ids);
  cmd->add_flag("--ignore-eos", args->ignore_eos, "Do not stop at EOS tokens");
  cmd->add_flag("--no-chat-template", args->no_chat_template,
                "Encode --prompt as is, without the chat template");
  cmd->add_option("--format", args->format, "text (streamed) or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->callback([args, prompt, ids, &global] {
    if (!*prompt && !*ids) fail<InvalidArgument>("generate: give --prompt or --prompt-ids");
    run(*args, global);
  });
}

}  // namespace ominix::cli
