// Measures one checkpoint with OminiX: load time, prefill tok/s at the given prompt lengths and
// decode tok/s at batch 1, as mlx-lm's generate_step runs them (prompt but the last token in
// chunks with only the cache evaluated, then the last token; decode one step ahead with
// async_eval). Prints one JSON object. Random token ids: timing does not depend on them.
//
//   bench_llm --model DIR [--prefill 512,2048] [--decode 128] [--warmup 1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include <mlx/mlx.h>
#include <mlx/primitives.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "ominix/base/device.h"
#include "ominix/generate/model.h"
#include "ominix/models/glm4.h"
#include "ominix/models/mixtral.h"
#include "ominix/models/qwen3.h"

namespace mx = mlx::core;
using Clock = std::chrono::steady_clock;
using ominix::generate::Cache;
using ominix::generate::LanguageModel;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

mx::array random_tokens(int n, int vocab, int seed) {
  return mx::random::randint(0, vocab, {1, n}, mx::int32, mx::random::key(seed));
}

constexpr int kPrefillStep = 2048;

// Prompt processing up to the first token's logits; returns seconds.
double prefill(const LanguageModel& model, const mx::array& prompt) {
  Cache cache = model.make_cache();
  mx::eval(prompt);
  mx::synchronize();
  auto t0 = Clock::now();
  int n = prompt.shape(1), done = 0;
  while (n - done > 1) {
    int step = std::min(kPrefillStep, n - 1 - done);
    model(mx::slice(prompt, {0, done}, {1, done + step}), cache);
    mx::eval(cache.state());
    done += step;
  }
  auto logits = model(mx::slice(prompt, {0, done}, {1, n}), cache);
  auto y = mx::argmax(mx::slice(logits, {0, logits.shape(1) - 1, 0}, logits.shape()), -1);
  mx::eval(y);
  return seconds_since(t0);
}

// Greedy decode of `steps` tokens after a short prompt, one step ahead; returns seconds/token.
double decode(const LanguageModel& model, int vocab, int steps) {
  Cache cache = model.make_cache();
  auto prompt = random_tokens(16, vocab, 7);
  auto step_fn = [&](const mx::array& y) {
    auto logits = model(mx::reshape(y, {1, 1}), cache);
    return mx::argmax(mx::reshape(logits, {-1}), -1);
  };
  auto logits = model(prompt, cache);
  auto y = mx::argmax(mx::reshape(mx::slice(logits, {0, 15, 0}, logits.shape()), {-1}), -1);
  mx::eval(y);
  auto t0 = Clock::now();
  auto next = step_fn(y);
  mx::async_eval(next);
  for (int i = 1; i < steps; ++i) {
    auto after = step_fn(next);
    mx::async_eval(after);
    next.item<uint32_t>();  // the token the caller would stream now
    next = after;
  }
  next.item<uint32_t>();
  return seconds_since(t0) / steps;
}

// The operations an evaluation of `out` runs (arrays not yet computed, one per primitive), by
// primitive name: each costs host time to encode, most a kernel launch.
nlohmann::json graph_ops(const mx::array& out) {
  std::unordered_set<std::uintptr_t> seen_arrays, seen_primitives;
  std::map<std::string, int> by_name;
  std::vector<mx::array> stack{out};
  int total = 0;
  while (!stack.empty()) {
    auto a = stack.back();
    stack.pop_back();
    if (!a.has_primitive() || !seen_arrays.insert(a.id()).second) continue;
    if (seen_primitives.insert(a.primitive_id()).second) {
      ++by_name[a.primitive().name()];
      ++total;
    }
    for (const auto& in : a.inputs()) stack.push_back(in);
  }
  nlohmann::json j = {{"total", total}};
  for (const auto& [name, n] : by_name) j["by_primitive"][name] = n;
  return j;
}

// Where a decode step's time goes on the host: building the graph, then encoding it (what
// async_eval does before it returns: every primitive's eval and the kernel launches), then the
// wait for the device. `sync_step_ms` is the sum, a step run without the one-step-ahead overlap.
nlohmann::json profile_step(const LanguageModel& model, int vocab, int steps) {
  Cache cache = model.make_cache();
  auto first = model(random_tokens(16, vocab, 7), cache);
  auto y = mx::argmax(mx::reshape(mx::slice(first, {0, 15, 0}, first.shape()), {-1}), -1);
  mx::eval(y);
  double build = 0, encode = 0, sync = 0;
  nlohmann::json ops;
  for (int i = 0; i < steps; ++i) {
    auto t0 = Clock::now();
    auto logits = model(mx::reshape(y, {1, 1}), cache);
    auto next = mx::argmax(mx::reshape(logits, {-1}), -1);
    build += seconds_since(t0);
    if (i == 0) ops = graph_ops(next);
    auto t1 = Clock::now();
    mx::async_eval(next);
    encode += seconds_since(t1);
    mx::eval(next);
    sync += seconds_since(t0);
    y = next;
  }
  return {{"graph_build_ms", 1e3 * build / steps},
          {"encode_ms", 1e3 * encode / steps},
          {"sync_step_ms", 1e3 * sync / steps},
          {"ops", ops}};
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    auto comma = s.find(',', pos);
    out.push_back(std::stoi(s.substr(pos, comma - pos)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"OminiX LLM benchmark"};
  std::string model_dir, prefill_list = "512,2048";
  int decode_steps = 128, warmup = 1;
  app.add_option("--model", model_dir)->required();
  app.add_option("--prefill", prefill_list);
  app.add_option("--decode", decode_steps);
  app.add_option("--warmup", warmup);
  CLI11_PARSE(app, argc, argv);

  ominix::qwen3::register_family();
  ominix::glm4::register_family();
  ominix::mixtral::register_family();
  ominix::set_device(ominix::DeviceKind::automatic);
  nlohmann::json out;
  out["engine"] = "ominix";
  if (const char* moe = std::getenv("OMINIX_MOE_FUSED")) out["OMINIX_MOE_FUSED"] = moe;
  out["device"] = ominix::current_device();
  for (const auto& d : ominix::list_devices())
    for (const auto& [k, v] : d.properties)
      if (d.kind == ominix::current_device() && k == "device_name") out["card"] = v;

  auto t0 = Clock::now();
  auto model = ominix::generate::load_model(model_dir);
  mx::eval(model->make_cache().state());  // nothing to do, but keeps the first call out of the load
  out["load_s"] = seconds_since(t0);
  const int vocab = model->info().vocab_size;

  for (int i = 0; i < warmup; ++i) {
    prefill(*model, random_tokens(64, vocab, 1));
    decode(*model, vocab, 8);
  }
  for (int n : parse_list(prefill_list)) {
    auto prompt = random_tokens(n, vocab, 11);
    prefill(*model, prompt);  // the first run at a new length compiles kernels
    double s = prefill(*model, prompt);
    out["prefill"][std::to_string(n)] = {{"seconds", s}, {"tok_s", n / s}};
  }
  mx::reset_peak_memory();
  // Median of three runs: the host CPU builds every step's graph, so timings move with its load.
  std::vector<double> runs;
  for (int r = 0; r < 3; ++r) runs.push_back(decode(*model, vocab, decode_steps));
  std::sort(runs.begin(), runs.end());
  double per_token = runs[1];
  out["decode"] = {{"steps", decode_steps},
                   {"tok_s", 1.0 / per_token},
                   {"ms_per_token", 1e3 * per_token},
                   {"runs_ms_per_token", {1e3 * runs[0], 1e3 * runs[1], 1e3 * runs[2]}},
                   {"profile", profile_step(*model, vocab, 32)}};
  out["peak_memory_gb"] = mx::get_peak_memory() / 1e9;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
