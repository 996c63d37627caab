#include "ominix/base/device.h"

#include <mlx/backend/cuda/cuda.h>
#include <mlx/backend/metal/metal.h>
#include <mlx/device.h>
#include <mlx/memory.h>
#include <mlx/version.h>

#include <variant>

#include "ominix/base/error.h"

namespace mx = mlx::core;

namespace ominix {

DeviceKind parse_device_kind(const std::string& s) {
  if (s == "auto") return DeviceKind::automatic;
  if (s == "cpu") return DeviceKind::cpu;
  if (s == "gpu") return DeviceKind::gpu;
  fail<InvalidArgument>("device: expected auto, cpu or gpu, got '{}'", s);
}

bool gpu_available() { return mx::is_available(mx::Device::gpu); }

void set_device(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::automatic:
      mx::set_default_device(gpu_available() ? mx::Device::gpu : mx::Device::cpu);
      return;
    case DeviceKind::cpu:
      mx::set_default_device(mx::Device::cpu);
      return;
    case DeviceKind::gpu:
      if (!gpu_available())
        fail<UnsupportedError>("device: no GPU available (MLX backend: {})", mlx_backend());
      mx::set_default_device(mx::Device::gpu);
      return;
  }
}

std::string current_device() {
  return mx::default_device() == mx::Device::gpu ? "gpu" : "cpu";
}

void set_memory_limits(const MemoryLimits& limits) {
  if (limits.memory_limit) mx::set_memory_limit(*limits.memory_limit);
  if (limits.cache_limit) mx::set_cache_limit(*limits.cache_limit);
}

MemoryStats memory_stats() {
  return {mx::get_active_memory(), mx::get_peak_memory(), mx::get_cache_memory(),
          mx::get_memory_limit()};
}

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out;
  auto describe = [&](mx::Device d, const char* kind) {
    DeviceInfo info{.kind = kind, .index = d.index, .properties = {}};
    for (const auto& [key, value] : mx::device_info(d)) {
      std::string text = std::visit(
          [](const auto& v) {
            if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>)
              return v;
            else
              return std::to_string(v);
          },
          value);
      info.properties.emplace_back(key, std::move(text));
    }
    std::sort(info.properties.begin(), info.properties.end());
    out.push_back(std::move(info));
  };
  describe(mx::Device(mx::Device::cpu, 0), "cpu");
  if (gpu_available()) {
    for (int i = 0; i < mx::device_count(mx::Device::gpu); ++i)
      describe(mx::Device(mx::Device::gpu, i), "gpu");
  }
  return out;
}

std::string mlx_backend() {
  if (mx::cu::is_available()) return "cuda";
  if (mx::metal::is_available()) return "metal";
  return "cpu";
}

std::string mlx_version() { return mx::version(); }

}  // namespace ominix
