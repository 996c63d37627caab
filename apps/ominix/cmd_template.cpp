// ominix template: placeholder until the text stack lands.
#include "commands.h"

namespace ominix::cli {
void add_template(CLI::App&, const GlobalOptions&) {}
}  // namespace ominix::cli
