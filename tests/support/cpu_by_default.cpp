// Parity tests state fp32 tolerances for the CPU; GPU matmuls run in tf32 (~3e-4 relative), so
// these suites pin the CPU unless OMINIX_TEST_DEVICE=gpu. tests/gpu compares the GPU to the CPU.
#include <cstdlib>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "ominix/base/device.h"

namespace {
class DeviceEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* env = std::getenv("OMINIX_TEST_DEVICE");
    ominix::set_device(ominix::parse_device_kind(env ? env : "cpu"));
  }
};
const auto* const kRegistered =
    ::testing::AddGlobalTestEnvironment(std::make_unique<DeviceEnvironment>().release());
}  // namespace
