// What `ominix generate` and `ominix chat` share: sampling and cache flags, model loading with a
// progress bar, and the stats line.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "ominix/models/gemma3.h"
#include "ominix/ominix.h"

namespace ominix::cli {

/// Flags of the sampler, penalties and KV cache.
struct LlmArgs {
  std::string model;
  int max_tokens = 256;
  float temp = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  std::optional<std::uint64_t> seed;
  std::string system;
  std::optional<int> max_kv_size;
  std::optional<int> kv_bits;
  int kv_group_size = 64;
  std::string draft_model;
  int num_draft = 3;
};

inline void add_llm_options(CLI::App* cmd, LlmArgs& a) {
  a.model = gemma3::default_model().string();
  cmd->add_option("--model", a.model,
                  "Model directory (config.json, *.safetensors) or .gguf file (default: the "
                  "model scripts/setup.sh installs, or $OMINIX_MODEL)")
      ->capture_default_str();
  cmd->add_option("--max-tokens", a.max_tokens, "Generate at most this many tokens")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", a.temp, "Sampling temperature (0: greedy)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", a.top_p, "Nucleus sampling mass (1: off)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--top-k", a.top_k, "Keep the k most probable tokens (0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--min-p", a.min_p, "Drop tokens below min-p x the top probability (0: off)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--repetition-penalty", a.repetition_penalty,
                  "Penalise tokens of the last 20 (1: off)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a.seed, "Random seed (default: random)");
  cmd->add_option("--system", a.system, "System prompt (with the chat template)");
  cmd->add_option("--max-kv-size", a.max_kv_size, "Rotating KV cache of this many positions")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--kv-bits", a.kv_bits, "Quantize the KV cache to 4 or 8 bits")
      ->check(CLI::IsMember({4, 8}));
  cmd->add_option("--kv-group-size", a.kv_group_size,
                  "Group size of the quantized KV cache (divides the head dim)")
      ->check(CLI::IsMember({32, 64, 128}));
  auto* draft = cmd->add_option("--draft-model", a.draft_model,
                                "Draft model directory for speculative decoding");
  cmd->add_option("--num-draft", a.num_draft, "Tokens the draft proposes per round")
      ->check(CLI::PositiveNumber)
      ->needs(draft);
}

/// Loads a model directory, with a progress bar on stderr when it is a terminal.
inline Model load_with_progress(const std::string& dir) {
  ModelOptions options;
  if (::isatty(STDERR_FILENO)) {
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
  if (!std::filesystem::exists(dir)) {
    if (dir == gemma3::default_model().string())
      fail<IoError>(
          "{}: the default model is not installed (run scripts/setup.sh, or pass --model)", dir);
    fail<IoError>("{}: no such model directory or .gguf file", dir);
  }
  return load_model(dir, options);
}

inline generate::CacheOptions cache_options(const LlmArgs& a) {
  if (a.max_kv_size && a.kv_bits)
    fail<InvalidArgument>("--max-kv-size and --kv-bits cannot be combined");
  return {.max_kv_size = a.max_kv_size, .kv_bits = a.kv_bits, .kv_group_size = a.kv_group_size};
}

inline generate::GenerateParams generate_params(const LlmArgs& a) {
  generate::GenerateParams p{.max_tokens = a.max_tokens};
  p.sampler = {
      .temperature = a.temp, .top_k = a.top_k, .top_p = a.top_p, .min_p = a.min_p, .seed = a.seed};
  p.logits.repetition_penalty = a.repetition_penalty;
  return p;
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
