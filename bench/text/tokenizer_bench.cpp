// Encode throughput of ominix::text::Tokenizer on one corpus file, single-threaded. Prints JSON.
// Documents are separated by a form feed (\f) line, as bench/text/tokenizer_bench.py writes them.
//   tokenizer_bench --model DIR --corpus FILE [--repeat N]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ominix/base/error.h"
#include "ominix/text/tokenizer.h"

int main(int argc, char** argv) {
  std::string model, corpus;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    if (!std::strcmp(argv[i], "--corpus")) corpus = argv[i + 1];
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(argv[i + 1]);
  }
  if (model.empty() || corpus.empty() || repeat < 1) {
    std::fprintf(stderr, "usage: tokenizer_bench --model DIR --corpus FILE [--repeat N]\n");
    return 2;
  }
  try {
    const auto t_load = std::chrono::steady_clock::now();
    const auto tok = ominix::text::Tokenizer::from_dir(model);
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
    std::ifstream in(corpus, std::ios::binary);
    if (!in) ominix::fail<ominix::IoError>("cannot open {}", corpus);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    std::vector<std::string_view> docs;
    std::size_t start = 0;
    while (start <= text.size()) {
      std::size_t end = text.find("\n\f\n", start);
      if (end == std::string::npos) end = text.size();
      docs.push_back(std::string_view(text).substr(start, end - start));
      start = end + 3;
    }
    double best = 1e30;
    std::size_t tokens = 0;
    std::uint64_t hash = 1469598103934665603ull;
    for (int r = 0; r < repeat; ++r) {
      tokens = 0;
      hash = 1469598103934665603ull;
      const auto t0 = std::chrono::steady_clock::now();
      for (std::string_view doc : docs) {
        const auto ids = tok.encode(doc, false);
        tokens += ids.size();
        for (auto id : ids) hash = (hash ^ static_cast<std::uint32_t>(id)) * 1099511628211ull;
      }
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::size_t bytes = 0;
    for (auto d : docs) bytes += d.size();
    std::printf(
        "{\"impl\": \"ominix\", \"bytes\": %zu, \"docs\": %zu, \"tokens\": %zu, \"seconds\": %.6f, "
        "\"bytes_per_s\": %.1f, \"tokens_per_s\": %.1f, \"ids_hash\": \"%016llx\", \"load_s\": "
        "%.3f}\n",
        bytes, docs.size(), tokens, best, bytes / best, tokens / best,
        static_cast<unsigned long long>(hash), load_s);
  } catch (const ominix::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
