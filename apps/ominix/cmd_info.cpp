// ominix info: version, MLX version and backend, devices and memory.
#include <nlohmann/json.hpp>

#include <fmt/core.h>

#include "commands.h"
#include "ominix/base/device.h"

namespace ominix::cli {

void add_info(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("info", "Print version, MLX backend, devices and memory");
  auto format = std::make_shared<std::string>("text");
  cmd->add_option("--format", *format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->callback([&global, format] {
    set_device(parse_device_kind(global.device));
    auto devices = list_devices();
    auto mem = memory_stats();
    if (*format == "json") {
      nlohmann::json j;
      j["ominix_version"] = version();
      j["mlx_version"] = mlx_version();
      j["backend"] = mlx_backend();
      j["default_device"] = current_device();
      for (const auto& d : devices) {
        nlohmann::json props = nlohmann::json::object();
        for (const auto& [k, v] : d.properties) props[k] = v;
        j["devices"].push_back({{"kind", d.kind}, {"index", d.index}, {"properties", props}});
      }
      j["memory"] = {
          {"active", mem.active}, {"peak", mem.peak}, {"cache", mem.cache}, {"limit", mem.limit}};
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print("ominix {}\nMLX {} (backend: {})\ndefault device: {}\n", version(), mlx_version(),
               mlx_backend(), current_device());
    for (const auto& d : devices) {
      fmt::print("device {}:{}\n", d.kind, d.index);
      for (const auto& [k, v] : d.properties) fmt::print("  {}: {}\n", k, v);
    }
    fmt::print("memory: active {} B, peak {} B, cache {} B, limit {} B\n", mem.active, mem.peak,
               mem.cache, mem.limit);
  });
}

}  // namespace ominix::cli
