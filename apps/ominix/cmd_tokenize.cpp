// ominix tokenize: placeholder until the text stack lands.
#include "commands.h"

namespace ominix::cli {
void add_tokenize(CLI::App&, const GlobalOptions&) {}
}  // namespace ominix::cli
