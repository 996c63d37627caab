// ominix tokenize: encode text to ids (and token strings), or decode ids to text, with the
// tokenizer.json of a model directory.
#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include <fmt/core.h>
#include <fmt/format.h>

#include "commands.h"
#include "ominix/base/error.h"
#include "ominix/text/tokenizer.h"

namespace ominix::cli {
namespace {

struct TokenizeOptions {
  std::string model, text, file, decode, format = "text";
  bool no_special = false, skip_special = false;
};

// "1,2,3", "1 2 3" and "[1, 2, 3]" all parse.
std::vector<text::TokenId> parse_ids(const std::string& s) {
  std::vector<text::TokenId> ids;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(cur, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != cur.size() || v < 0 || v > INT32_MAX)
      fail<InvalidArgument>("--decode: '{}' is not a token id", cur);
    ids.push_back(static_cast<text::TokenId>(v));
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
  return ids;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<IoError>("cannot open {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

}  // namespace

void add_tokenize(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand("tokenize", "Encode text to token ids, or decode ids to text");
  auto opt = std::make_shared<TokenizeOptions>();
  cmd->add_option("--model", opt->model, "Directory holding tokenizer.json")->required();
  auto* text = cmd->add_option("--text", opt->text, "Text to encode");
  auto* file = cmd->add_option("--file", opt->file, "UTF-8 file to encode");
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
    const auto tok = text::Tokenizer::from_dir(opt->model);
    if (*decode) {
      const std::string out = tok.decode(parse_ids(opt->decode), opt->skip_special);
      if (opt->format == "json") {
        fmt::print("{}\n", nlohmann::json{{"text", out}}.dump(
                               -1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        fmt::print("{}\n", out);
      }
      return;
    }
    const std::string input = *file ? read_text_file(opt->file) : opt->text;
    text::Encoding enc;
    try {
      enc = tok.encode_with_tokens(input, !opt->no_special);
    } catch (const InvalidArgument& e) {
      if (!*file) throw;
      fail<InvalidArgument>("{}: {}", opt->file, e.what());
    }
    if (opt->format == "json") {
      nlohmann::json j{{"ids", enc.ids}, {"tokens", enc.tokens}};
      fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      fmt::print("{}\n", fmt::join(enc.ids, ","));
    }
  });
}

}  // namespace ominix::cli
