// ominix: the command-line front end. Thin: parse flags, call the libraries, report errors.
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include <fmt/core.h>

#include "commands.h"
#include "ominix/base/device.h"
#include "ominix/base/error.h"

namespace {

// The first argument that is neither an option of the app nor its value: the subcommand's name
// ("" when there is none).
std::string subcommand_name(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--device") {
      ++i;  // its value
      continue;
    }
    if (arg.starts_with("-")) continue;
    return std::string(arg);
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "OminiX: native inference on MLX for language models (generate, chat), vision-language "
      "models reading images (generate --image, chat's /image) and speech recognition "
      "(transcribe)"};
  app.require_subcommand(1);
  app.fallthrough();  // --device is accepted after the subcommand too
  app.set_version_flag("--version", ominix::version());
  ominix::cli::GlobalOptions global;
  app.add_option("--device", global.device, "auto, cpu or gpu (anywhere on the command line)")
      ->check(CLI::IsMember({"auto", "cpu", "gpu"}))
      ->capture_default_str();

  ominix::cli::add_info(app, global);
  ominix::cli::add_list(app, global);
  ominix::cli::add_tokenize(app, global);
  ominix::cli::add_template(app, global);
  ominix::cli::add_generate(app, global);
  ominix::cli::add_chat(app, global);
  ominix::cli::add_transcribe(app, global);
  ominix::cli::add_convert(app, global);

  if (const auto name = subcommand_name(argc, argv); !name.empty()) {
    std::string known;
    bool found = false;
    for (const auto* sub : app.get_subcommands({})) {
      known += (known.empty() ? "" : ", ") + sub->get_name();
      found = found || sub->get_name() == name;
    }
    if (!found) {
      fmt::print(stderr, "error: unknown command '{}'; the commands are: {} (ominix --help)\n",
                 name, known);
      return 106;  // CLI11's exit code for a bad argument
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ominix::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
  return 0;
}
