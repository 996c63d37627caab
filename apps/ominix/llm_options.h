// What `ominix generate` and `ominix chat` share: sampling, penalty, stop and cache flags, model
// loading with a progress bar and clear errors, the chat template (the model's or --chat-template
// FILE) and the stats line.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "cli_util.h"
#include "ominix/models/gemma3.h"
#include "ominix/ominix.h"

namespace ominix::cli {

/// Flags of the sampler, penalties, stop rules, chat template and KV cache.
struct LlmArgs {
  std::string model;
  int max_tokens = 256;
  float temp = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::vector<std::string> logit_bias;  // "ID=BIAS"
  std::vector<std::string> stop;
  std::optional<std::int64_t> seed;
  std::string system;
  std::string chat_template;  // a Jinja file replacing the model's template
  bool no_thinking = false;
  std::string ignore_eos;  // "" (stop at EOS), "forbid" (llama.cpp) or "pass" (vLLM)
  bool quiet = false;
  std::optional<int> max_kv_size;
  std::optional<int> kv_bits;
  int kv_group_size = 64;
  std::string draft_model;
  int num_draft = 3;
};

inline void add_llm_options(CLI::App* cmd, LlmArgs& a) {
  cmd->option_defaults()->always_capture_default();
  a.model = gemma3::default_model().string();
  cmd->add_option("-m,--model", a.model,
                  "Model directory (config.json, *.safetensors) or .gguf file (default: "
                  "$OMINIX_MODEL, else the model scripts/setup.sh installs)");
  cmd->add_option("-n,--max-tokens", a.max_tokens,
                  "Generate at most this many tokens; -1: until EOS or the model's context")
      ->check(at_least(-1));
  cmd->add_option("--temp", a.temp, "Sampling temperature (0: greedy)")->check(at_least(0));
  cmd->add_option("--top-p", a.top_p, "Nucleus sampling mass (1: off)")->check(between(0, 1));
  cmd->add_option("--top-k", a.top_k, "Keep the k most probable tokens (0: off)")
      ->check(at_least(0));
  cmd->add_option("--min-p", a.min_p, "Drop tokens below min-p x the top probability (0: off)")
      ->check(between(0, 1));
  cmd->add_option("--repetition-penalty", a.repetition_penalty,
                  "CTRL penalty on the last 20 tokens, prompt included (1: off)")
      ->check(greater_than(0));
  cmd->add_option("--presence-penalty", a.presence_penalty,
                  "OpenAI presence penalty: subtracted once from each token already generated "
                  "(0: off)")
      ->check(between(-2, 2));
  cmd->add_option("--frequency-penalty", a.frequency_penalty,
                  "OpenAI frequency penalty: subtracted per occurrence in the generated tokens "
                  "(0: off)")
      ->check(between(-2, 2));
  cmd->add_option("--logit-bias", a.logit_bias,
                  "ID=BIAS: add BIAS to token ID's logit (repeatable; BIAS may be -inf)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--stop", a.stop,
                  "Stop when the text contains this string, not printed (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--seed", a.seed, "Random seed, ≥ 0 (default: random)")->check(at_least(0));
  cmd->add_option("--system", a.system, "System prompt (with the chat template)");
  cmd->add_option("--chat-template", a.chat_template,
                  "Jinja chat template file used instead of the model's");
  cmd->add_flag("--no-thinking", a.no_thinking, "Pass enable_thinking=false to the chat template");
  cmd->add_flag("--ignore-eos{forbid}", a.ignore_eos,
                "Do not stop at EOS: --ignore-eos (or =forbid) never generates it (llama.cpp); "
                "--ignore-eos=pass generates it and goes on (vLLM)")
      ->check(CLI::IsMember({"forbid", "pass"}));
  cmd->add_flag("-q,--quiet", a.quiet, "No progress bar, stats or notes on stderr");
  cmd->add_option("--max-kv-size", a.max_kv_size,
                  "Rotating KV cache of this many positions (a sliding window: no context limit)")
      ->check(at_least(1));
  cmd->add_option("--kv-bits", a.kv_bits, "Quantize the KV cache to 4 or 8 bits")
      ->check(CLI::IsMember({4, 8}));
  cmd->add_option("--kv-group-size", a.kv_group_size,
                  "Group size of the quantized KV cache: 32, 64 or 128 (divides the head dim)")
      ->check(CLI::IsMember({32, 64, 128}));
  auto* draft = cmd->add_option("--draft-model", a.draft_model,
                                "Draft model directory for speculative decoding");
  cmd->add_option("--num-draft", a.num_draft, "Tokens the draft proposes per round")
      ->check(at_least(1))
      ->needs(draft);
}

/// Loads a model directory or .gguf file, with a progress bar on stderr when it is a terminal.
/// Says what is wrong with a path that is not a model.
inline Model load_with_progress(const std::string& dir, bool quiet = false) {
  ModelOptions options;
  if (!quiet && ::isatty(STDERR_FILENO)) {
    options.progress = [dir](const io::LoadProgress& p) {
      constexpr int kWidth = 30;
      const double f = p.bytes_total ? static_cast<double>(p.bytes_done) / p.bytes_total : 1.0;
      const int filled = static_cast<int>(f * kWidth);
      fmt::print(stderr, "\rloading {} [{}{}] {}/{} files, {:.2f}/{:.2f} GB", dir,
                 std::string(filled, '#'), std::string(kWidth - filled, ' '), p.files_done,
                 p.files_total, p.bytes_done / 1e9, p.bytes_total / 1e9);
      if (p.files_done == p.files_total) fmt::print(stderr, "\n");
      std::fflush(stderr);
    };
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    const char* env = std::getenv("OMINIX_MODEL");
    if (env && *env && dir == env)
      fail<IoError>(
          "$OMINIX_MODEL is '{}', which does not exist: point it at a model directory or .gguf "
          "file, unset it, or pass --model",
          dir);
    if (dir == gemma3::default_model().string())
      fail<IoError>(
          "{}: the default model is not installed (run scripts/setup.sh, or pass --model)", dir);
    fail<IoError>("{}: no such model directory or .gguf file", dir);
  }
  if (!fs::is_directory(dir, ec) && fs::path(dir).extension() != ".gguf")
    fail<IoError>(
        "{}: a file, not a model: --model takes a model directory (config.json and "
        "*.safetensors) or a .gguf file",
        dir);
  return load_model(dir, options);
}

inline generate::CacheOptions cache_options(const LlmArgs& a) {
  if (a.max_kv_size && a.kv_bits)
    fail<InvalidArgument>("--max-kv-size and --kv-bits cannot be combined");
  return {.max_kv_size = a.max_kv_size, .kv_bits = a.kv_bits, .kv_group_size = a.kv_group_size};
}

/// "ID=BIAS" entries -> {id: bias}, ids checked against the vocabulary.
inline std::map<int, float> parse_logit_bias(const std::vector<std::string>& entries,
                                             int vocab_size) {
  std::map<int, float> out;
  for (const auto& e : entries) {
    const auto eq = e.find('=');
    std::vector<int> id;
    float bias = 0;
    try {
      if (eq == std::string::npos) throw std::invalid_argument(e);
      id = parse_token_ids(e.substr(0, eq), "--logit-bias");
      std::size_t used = 0;
      const std::string b = e.substr(eq + 1);
      bias = std::stof(b, &used);
      if (used != b.size() || id.size() != 1 || std::isnan(bias)) throw std::invalid_argument(e);
    } catch (const std::exception&) {
      fail<InvalidArgument>("--logit-bias: '{}' is not ID=BIAS (e.g. 42=-100 or 42=-inf)", e);
    }
    check_ids_in_vocab(id, static_cast<std::size_t>(vocab_size), "--logit-bias");
    out[id[0]] = bias;
  }
  return out;
}

inline generate::GenerateParams generate_params(const LlmArgs& a, const Model& model) {
  generate::GenerateParams p{.max_tokens = a.max_tokens};
  std::optional<std::uint64_t> seed;
  if (a.seed) seed = static_cast<std::uint64_t>(*a.seed);
  p.sampler = {
      .temperature = a.temp, .top_k = a.top_k, .top_p = a.top_p, .min_p = a.min_p, .seed = seed};
  p.logits.repetition_penalty = a.repetition_penalty;
  p.logits.presence_penalty = a.presence_penalty;
  p.logits.frequency_penalty = a.frequency_penalty;
  p.logits.presence_context_size = std::nullopt;  // OpenAI: every generated token counts
  p.logits.frequency_context_size = std::nullopt;
  p.logits.penalty_scope = generate::PenaltyScope::generated;
  p.logits.logit_bias = parse_logit_bias(a.logit_bias, model.info().vocab_size);
  for (const auto& s : a.stop)
    if (s.empty()) fail<InvalidArgument>("--stop: a stop string is empty");
  p.stop_strings = a.stop;
  if (!p.stop_strings.empty() && !model.tokenizer())
    fail<InvalidArgument>("--stop needs the model's tokenizer ({} has none)", a.model);
  p.ignore_eos = a.ignore_eos == "pass";
  p.ban_eos = a.ignore_eos == "forbid";
  p.tokenizer = model.tokenizer();
  return p;
}

/// The chat template a command renders with: --chat-template FILE, else the model's; and the
/// template switches (--no-thinking).
class ChatFormat {
 public:
  ChatFormat(const Model& model, const LlmArgs& a) : model_(model) {
    if (!a.chat_template.empty()) {
      const std::string source = read_input(a.chat_template, "--chat-template");
      check_utf8(source, "--chat-template " + a.chat_template);
      // The special tokens the model's own template would get (read again from its files).
      own_.emplace(source, model.chat_template() ? model.chat_template()->special_tokens()
                                                 : load_text_assets(model.dir()).special_tokens);
      source_ = a.chat_template;
    } else {
      source_ = a.model;
    }
    if (a.no_thinking) options_.extra["enable_thinking"] = false;
  }

  /// The template in use, or nullptr when neither --chat-template nor the model gives one.
  const text::ChatTemplate* get() const {
    if (own_) return &*own_;
    return model_.chat_template() ? &*model_.chat_template() : nullptr;
  }

  /// The prompt text of messages (with the assistant header).
  std::string render(const nlohmann::ordered_json& messages) const {
    try {
      return get()->render(messages, options_);
    } catch (const text::TemplateError& e) {
      fail<FormatError>("chat template of {} failed: {}", source_, e.what());
    }
  }

  /// Token ids of the rendered messages (no extra special tokens, as apply_chat_template).
  std::vector<int> encode(const nlohmann::ordered_json& messages) const {
    return model_.encode(render(messages), /*add_special_tokens=*/false);
  }

 private:
  const Model& model_;
  std::optional<text::ChatTemplate> own_;
  std::string source_;
  text::RenderOptions options_{.add_generation_prompt = true};
};

/// Tokens the model's context leaves after `prompt_tokens` (nullopt: no limit: a rotating cache,
/// or a model without max_position_embeddings).
inline std::optional<int> context_room(const Model& model, const generate::PromptCache& cache,
                                       int prompt_tokens) {
  const int context = model.info().max_position_embeddings;
  if (context <= 0 || cache.rotating()) return std::nullopt;
  return context - prompt_tokens;
}

/// The stats as one line for stderr.
inline std::string stats_line(const generate::GenerationStats& s) {
  std::string line = fmt::format(
      "prompt: {} tokens ({} cached), {:.1f} tok/s | generation: {} tokens, {:.1f} tok/s | "
      "time to first token: {:.3f} s | peak memory: {:.3f} GB",
      s.prompt_tokens, s.cached_prompt_tokens, s.prompt_tps, s.generation_tokens, s.generation_tps,
      s.time_to_first_token_s, s.peak_memory_bytes / 1e9);
  if (s.draft_tokens)
    line += fmt::format(" | draft acceptance: {}/{} ({:.1f}%)", s.accepted_draft_tokens,
                        s.draft_tokens, 100.0 * s.acceptance_rate());
  return line;
}

}  // namespace ominix::cli
