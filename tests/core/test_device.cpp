#include <gtest/gtest.h>
#include <mlx/mlx.h>

#include "ominix/base/device.h"
#include "ominix/base/error.h"

using namespace ominix;
namespace mx = mlx::core;

TEST(Device, ParseKinds) {
  EXPECT_EQ(parse_device_kind("auto"), DeviceKind::automatic);
  EXPECT_EQ(parse_device_kind("cpu"), DeviceKind::cpu);
  EXPECT_EQ(parse_device_kind("gpu"), DeviceKind::gpu);
  EXPECT_THROW(parse_device_kind("tpu"), InvalidArgument);
}

TEST(Device, ChooseDevice) {
  set_device(DeviceKind::cpu);
  EXPECT_EQ(current_device(), "cpu");
  set_device(DeviceKind::automatic);
  EXPECT_EQ(current_device(), gpu_available() ? "gpu" : "cpu");
  if (gpu_available()) {
    set_device(DeviceKind::gpu);
    EXPECT_EQ(current_device(), "gpu");
  } else {
    EXPECT_THROW(set_device(DeviceKind::gpu), UnsupportedError);
  }
  set_device(DeviceKind::cpu);
}

TEST(Device, Describe) {
  auto devices = list_devices();
  ASSERT_FALSE(devices.empty());
  EXPECT_EQ(devices.front().kind, "cpu");
  EXPECT_EQ(mlx_version(), "0.32.4");
  EXPECT_FALSE(version().empty());
  auto backend = mlx_backend();
  EXPECT_TRUE(backend == "cpu" || backend == "cuda" || backend == "metal") << backend;
}

TEST(Device, MemoryLimits) {
  auto before = memory_stats();
  set_memory_limits({.memory_limit = std::size_t(1) << 30, .cache_limit = std::size_t(1) << 20});
  EXPECT_EQ(memory_stats().limit, std::size_t(1) << 30);
  auto a = mx::ones({1024, 1024});
  mx::eval(a);
  EXPECT_GE(memory_stats().peak, std::size_t(4) << 20);
  set_memory_limits({.memory_limit = before.limit});
}
