// The ominix CLI's subcommands. Each adds itself to the app and runs through the callback it sets.
#pragma once

#include <CLI/CLI.hpp>

namespace ominix::cli {

/// Options every subcommand shares.
struct GlobalOptions {
  std::string device = "auto";
};

void add_info(CLI::App& app, const GlobalOptions& global);
void add_list(CLI::App& app, const GlobalOptions& global);
void add_tokenize(CLI::App& app, const GlobalOptions& global);
void add_template(CLI::App& app, const GlobalOptions& global);
void add_generate(CLI::App& app, const GlobalOptions& global);
void add_chat(CLI::App& app, const GlobalOptions& global);
void add_transcribe(CLI::App& app, const GlobalOptions& global);
void add_convert(CLI::App& app, const GlobalOptions& global);

}  // namespace ominix::cli
