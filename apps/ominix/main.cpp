// ominix: the command-line front end. Thin: parse flags, call the libraries, report errors.
#include <cstdio>
#include <exception>

#include <fmt/core.h>

#include "commands.h"
#include "ominix/base/device.h"
#include "ominix/base/error.h"

int main(int argc, char** argv) {
  CLI::App app{"OminiX: native inference for language, speech and image models on MLX"};
  app.require_subcommand(1);
  app.set_version_flag("--version", ominix::version());
  ominix::cli::GlobalOptions global;
  app.add_option("--device", global.device, "auto, cpu or gpu")
      ->check(CLI::IsMember({"auto", "cpu", "gpu"}));

  ominix::cli::add_info(app, global);
  ominix::cli::add_tokenize(app, global);
  ominix::cli::add_template(app, global);
  ominix::cli::add_generate(app, global);
  ominix::cli::add_chat(app, global);
  ominix::cli::add_transcribe(app, global);
  ominix::cli::add_convert(app, global);

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
