// Device choice and memory control over MLX's global state.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace ominix {

enum class DeviceKind { automatic, cpu, gpu };

/// Parses "auto", "cpu" or "gpu" (throws InvalidArgument otherwise).
DeviceKind parse_device_kind(const std::string& s);

/// True when MLX was built with a GPU backend (CUDA or Metal) and a GPU is present.
bool gpu_available();

/// Makes `kind` MLX's default device. `automatic` picks the GPU when present.
/// Asking for a GPU where there is none throws UnsupportedError.
void set_device(DeviceKind kind);

/// "cpu" or "gpu": MLX's current default device.
std::string current_device();

/// Limits in bytes; nullopt leaves MLX's default. Returns nothing: read back with memory_stats().
struct MemoryLimits {
  std::optional<std::size_t> memory_limit;  ///< soft limit on active memory
  std::optional<std::size_t> cache_limit;   ///< buffers kept for reuse after they are freed
};
void set_memory_limits(const MemoryLimits& limits);

struct MemoryStats {
  std::size_t active = 0, peak = 0, cache = 0, limit = 0;
};
MemoryStats memory_stats();

/// One line per key of backend/device facts (name, architecture, memory...).
struct DeviceInfo {
  std::string kind;  ///< "cpu" or "gpu"
  int index = 0;
  std::vector<std::pair<std::string, std::string>> properties;
};
std::vector<DeviceInfo> list_devices();

/// The MLX backend this build runs on: "cuda", "metal" or "cpu".
std::string mlx_backend();
/// MLX's version string, e.g. "0.32.4".
std::string mlx_version();
/// OminiX's version string.
std::string version();

}  // namespace ominix
