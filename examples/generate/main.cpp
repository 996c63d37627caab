// Streams a model's answer to a prompt, then shows the token range API.
//   generate <model dir> "<prompt>" [max tokens]
#include <cstdio>
#include <ranges>
#include <string>
#include <vector>

#include <ominix/ominix.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR PROMPT [MAX_TOKENS]\n", argv[0]);
    return 2;
  }
  try {
    auto model = ominix::load_model(argv[1]);
    auto cache = model.make_cache();
    const int max_tokens = argc > 3 ? std::stoi(argv[3]) : 64;

    // The prompt: through the chat template when the model has one.
    std::vector<int> prompt = model.chat_template()
                                  ? model.encode_chat(nlohmann::ordered_json::array(
                                        {{{"role", "user"}, {"content", argv[2]}}}))
                                  : model.encode(argv[2]);

    // Text pieces as they are generated.
    for (const std::string& piece :
         ominix::generate_text(model, cache, {.max_tokens = max_tokens}, prompt)) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    std::printf("\n");

    // Token ids as a C++20 range: the first 8 (the cache is reused: the prompt is not prefilled
    // again).
    std::printf("ids:");
    for (int tok :
         ominix::generate_tokens(model, cache, {.max_tokens = 1000}, prompt) | std::views::take(8))
      std::printf(" %d", tok);
    std::printf("\n");
  } catch (const ominix::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
