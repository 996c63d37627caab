// ominix generate: one prompt in, generated text (streamed) or a JSON object out.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "commands.h"
#include "llm_options.h"
#include "ominix/base/device.h"
#include "ominix/base/error.h"

namespace ominix::cli {
namespace {

struct GenerateArgs {
  LlmArgs llm;
  std::string prompt, prompt_file, prompt_ids, format = "text";
  std::optional<int> logprobs;
  bool no_chat_template = false;
  std::vector<std::string> images;  // --image: one user message holds them, then the prompt
};

// The prompt text of --prompt (- reads stdin) or --prompt-file, checked to be UTF-8 (the offset
// is within that text).
std::string prompt_text(const GenerateArgs& a, bool from_file) {
  if (from_file) {
    auto text = read_input(a.prompt_file, "--prompt-file");
    check_utf8(text, "--prompt-file " + a.prompt_file);
    return text;
  }
  if (a.prompt == "-") {
    auto text = read_input("-", "--prompt");
    check_utf8(text, "--prompt - (stdin)");
    return text;
  }
  check_utf8(a.prompt, "--prompt");
  return a.prompt;
}

std::vector<int> prompt_tokens(const Model& model, const ChatFormat& chat, const GenerateArgs& a,
                               bool ids, bool from_file) {
  if (ids) {
    auto out = parse_token_ids(a.prompt_ids, "--prompt-ids");
    check_ids_in_vocab(out, static_cast<std::size_t>(model.info().vocab_size), "--prompt-ids");
    return out;
  }
  if (!model.tokenizer())
    fail<InvalidArgument>("{}: no tokenizer.json to encode --prompt; give --prompt-ids",
                          a.llm.model);
  const std::string text = prompt_text(a, from_file);
  check_utf8(a.llm.system, "--system");
  if (chat.get() && !a.no_chat_template) {
    auto messages = nlohmann::ordered_json::array();
    if (!a.llm.system.empty()) messages.push_back({{"role", "system"}, {"content", a.llm.system}});
    messages.push_back({{"role", "user"}, {"content", text}});
    return chat.encode(messages);
  }
  if (!a.llm.system.empty())
    fail<InvalidArgument>("--system needs the model's chat template (and no --no-chat-template)");
  return model.encode(text);
}

// The prompt of --image: one user message holding the images and then the prompt text, rendered
// with the chat template and its generation prompt; the image-pad tokens expanded to the images'
// patch counts.
qwen_vl::Prompt image_prompt(const Model& model, const ChatFormat& chat, const GenerateArgs& a,
                             bool ids, bool from_file) {
  if (!model.reads_images())
    fail<InvalidArgument>("--image: {} is a text-only model ({}); it reads no images", a.llm.model,
                          model.info().model_type);
  if (ids) fail<InvalidArgument>("--image needs --prompt or --prompt-file, not --prompt-ids");
  if (!chat.get() || a.no_chat_template)
    fail<InvalidArgument>(
        "--image needs a chat template (the model's or --chat-template) and no "
        "--no-chat-template");
  if (!a.llm.draft_model.empty())
    fail<InvalidArgument>("--draft-model does not work with --image yet");
  const std::string text = prompt_text(a, from_file);
  check_utf8(a.llm.system, "--system");
  auto content = nlohmann::ordered_json::array();
  std::vector<std::filesystem::path> paths;
  for (const auto& image : a.images) {
    content.push_back({{"type", "image"}, {"image", image}});
    paths.emplace_back(image);
  }
  content.push_back({{"type", "text"}, {"text", text}});
  auto messages = nlohmann::ordered_json::array();
  if (!a.llm.system.empty()) messages.push_back({{"role", "system"}, {"content", a.llm.system}});
  messages.push_back({{"role", "user"}, {"content", std::move(content)}});
  return model.encode_with_images(chat.render(messages), paths);
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

// [{"id", "token", "logprob", "top_logprobs": [{"id", "token", "logprob"}]}] ("token": the
// vocabulary entry, with a tokenizer).
nlohmann::json logprobs_json(const Model& model, const std::vector<generate::TokenLogprobs>& lps) {
  auto entry = [&](int id, float lp) {
    nlohmann::json e{{"id", id}, {"logprob", lp}};
    if (model.tokenizer())
      if (auto t = model.tokenizer()->id_to_token(id)) e["token"] = *t;
    return e;
  };
  auto out = nlohmann::json::array();
  for (const auto& t : lps) {
    auto e = entry(t.token, t.logprob);
    auto top = nlohmann::json::array();
    for (const auto& [id, lp] : t.top) top.push_back(entry(id, lp));
    e["top_logprobs"] = std::move(top);
    out.push_back(std::move(e));
  }
  return out;
}

void run(const GenerateArgs& a, const GlobalOptions& global, bool ids, bool from_file) {
  set_device(parse_device_kind(global.device));
  const bool json = a.format == "json";
  if (a.logprobs && !json) fail<InvalidArgument>("--logprobs needs --format json");
  const Model model = load_with_progress(a.llm.model, a.llm.quiet);
  const ChatFormat chat(model, a.llm);
  std::vector<int> prompt;
  std::unique_ptr<generate::LanguageModel> bound;  // the model bound to --image's images
  if (!a.images.empty()) {
    auto p = image_prompt(model, chat, a, ids, from_file);
    bound = model.bind(p);
    prompt = std::move(p.ids);
  } else {
    prompt = prompt_tokens(model, chat, a, ids, from_file);
  }
  const generate::LanguageModel& lm = bound ? *bound : model.lm();
  generate::PromptCache cache(lm, cache_options(a.llm));
  auto params = generate_params(a.llm, model);
  params.logprobs = a.logprobs;
  if (auto room = context_room(model, cache, static_cast<int>(prompt.size()));
      room && *room >= 0 && a.llm.max_tokens > *room)
    fmt::print(stderr,
               "warning: --max-tokens {} goes past the model's context of {} tokens (the prompt "
               "has {}): generation stops at {} tokens (finish_reason \"length\")\n",
               a.llm.max_tokens, model.info().max_position_embeddings, prompt.size(), *room);
  std::optional<Model> draft;
  std::optional<generate::PromptCache> draft_cache;
  if (!a.llm.draft_model.empty()) {
    draft.emplace(load_with_progress(a.llm.draft_model, a.llm.quiet));
    draft_cache.emplace(draft->make_cache());
    params.draft = {
        .model = &draft->lm(), .cache = &*draft_cache, .num_draft_tokens = a.llm.num_draft};
  }
  const bool has_text = model.tokenizer().has_value();
  auto result =
      generate::generate(lm, cache, std::move(prompt), params, [&](const generate::Chunk& c) {
        if (json) return true;
        if (has_text) {
          std::fwrite(c.text.data(), 1, c.text.size(), stdout);
        } else {
          for (int id : c.tokens) fmt::print("{} ", id);
        }
        std::fflush(stdout);
        return true;
      });
  if (result.finish_reason == generate::FinishReason::context && !a.llm.quiet)
    fmt::print(stderr, "[stopped at the model's context of {} tokens]\n",
               model.info().max_position_embeddings);
  if (json) {
    nlohmann::json j{{"ids", result.tokens},
                     {"finish_reason", generate::to_string(result.finish_reason)},
                     {"stats", stats_json(result.stats)}};
    if (has_text) j["text"] = result.text;
    if (a.logprobs) j["logprobs"] = logprobs_json(model, result.logprobs);
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  fmt::print("\n");
  std::fflush(stdout);
  if (!a.llm.quiet) fmt::print(stderr, "{}\n", stats_line(result.stats));
}

}  // namespace

void add_generate(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt with a language model");
  auto args = std::make_shared<GenerateArgs>();
  add_llm_options(cmd, args->llm);
  auto* prompt = cmd->add_option("-p,--prompt", args->prompt, "Prompt text (-: read stdin)");
  auto* file = cmd->add_option("--prompt-file", args->prompt_file, "Read the prompt from a file");
  auto* ids = cmd->add_option("--prompt-ids", args->prompt_ids, "Prompt token ids, e.g. \"1,2,3\"");
  prompt->excludes(ids)->excludes(file);
  file->excludes(ids);
  cmd->add_option("--image", args->images,
                  "Image file (PNG, JPEG, BMP, GIF, WebP) for a vision-language model; repeat for "
                  "several. The prompt is one user message holding the images, then the text");
  cmd->add_flag("--no-chat-template", args->no_chat_template,
                "Encode the prompt as is, without the chat template")
      ->excludes(cmd->get_option("--chat-template"));
  cmd->add_option("--format", args->format, "text (streamed) or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--logprobs", args->logprobs,
                  "With --format json: each token's logprob and the N most probable (0-20)")
      ->check(between(0, 20));
  cmd->callback([args, prompt, file, ids, &global] {
    if (!*prompt && !*ids && !*file)
      fail<InvalidArgument>("generate: give --prompt or --prompt-ids (or --prompt-file)");
    run(*args, global, static_cast<bool>(*ids), static_cast<bool>(*file));
  });
}

}  // namespace ominix::cli
