#include "ominix/base/device.h"

namespace ominix {
std::string version() { return OMINIX_VERSION; }
}  // namespace ominix
