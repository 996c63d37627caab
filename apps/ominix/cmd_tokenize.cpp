// ominix tokenize: encode text to ids (and token strings), or decode ids to text, with the
// tokenizer of a model directory (tokenizer.json) or of a .gguf file's metadata.
#include <memory>

#include <nlohmann/json.hpp>

#include <fmt/core.h>
#include <fmt/format.h>

#include "cli_util.h"
#include "commands.h"
#include "ominix/base/error.h"
#include "ominix/ominix.h"

namespace ominix::cli {
namespace {

struct TokenizeOptions {
  std::string model, text, file, decode, format = "text";
  bool no_special = false, skip_special = false;
};

}  // namespace

void add_tokenize(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand("tokenize", "Encode text to token ids, or decode ids to text");
  auto opt = std::make_shared<TokenizeOptions>();
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--model", opt->model,
                  "Model directory holding tokenizer.json, or a .gguf file")
      ->required();
  auto* text = cmd->add_option("--text", opt->text, "Text to encode");
  auto* file = cmd->add_option("--file", opt->file, "UTF-8 file to encode (-: stdin)");
  auto* decode = cmd->add_option("--decode", opt->decode, "Ids to decode, e.g. \"1,2,3\"");
  text->excludes(file)->excludes(decode);
  file->excludes(decode);
  cmd->add_option("--format", opt->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->add_flag("--no-special", opt->no_special,
                "Encode without the special tokens the post-processor adds");
  cmd->add_flag("--skip-special", opt->skip_special, "Decode without special tokens");
  cmd->callback([opt, text, file, decode] {
    if (!*text && !*file && !*decode)
      fail<InvalidArgument>("tokenize: give --text, --file or --decode");
    const auto assets = load_text_assets(opt->model);
    if (!assets.tokenizer)
      fail<InvalidArgument>(
          "{}: no tokenizer (no tokenizer.json, or no tokenizer in the GGUF "
          "metadata)",
          opt->model);
    const auto& tok = *assets.tokenizer;
    if (*decode) {
      const auto ids = parse_token_ids(opt->decode, "--decode");
      check_ids_in_vocab(ids, tok.vocab_size(), "--decode");
      const std::string out =
          tok.decode(std::vector<text::TokenId>(ids.begin(), ids.end()), opt->skip_special);
      if (opt->format == "json") {
        fmt::print("{}\n", nlohmann::json{{"text", out}}.dump(
                               -1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        fmt::print("{}\n", out);
      }
      return;
    }
    const std::string input = *file ? read_input(opt->file, "--file") : opt->text;
    check_utf8(input, *file ? "--file " + opt->file : std::string("--text"));
    const auto enc = tok.encode_with_tokens(input, !opt->no_special);
    if (opt->format == "json") {
      nlohmann::json j{{"ids", enc.ids}, {"tokens", enc.tokens}};
      fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      fmt::print("{}\n", fmt::join(enc.ids, ","));
    }
  });
}

}  // namespace ominix::cli
