// ominix list: what this build supports, read from the registries the loaders use: language
// model families (config.json model_type), GGUF architectures and tensor types, speech
// recognition families.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "ominix/asr.h"
#include "ominix/io/gguf.h"
#include "ominix/ominix.h"

namespace ominix::cli {
namespace {

struct Support {
  std::vector<std::string> model_types, gguf_architectures, gguf_types_quantized,
      gguf_types_dequantized, asr_families;
};

Support support() {
  register_builtin_families();
  Support s;
  for (const auto& [name, _] : generate::model_registry()) s.model_types.push_back(name);
  for (const auto& [name, _] : generate::gguf_registry()) s.gguf_architectures.push_back(name);
  for (std::uint32_t t = 0; t < 256; ++t) {
    const auto info = io::ggml_type_info(t);
    if (!info) continue;
    const auto type = static_cast<io::GgmlType>(t);
    if (!io::ggml_type_supported(type)) continue;
    (io::ggml_affine_spec(type) ? s.gguf_types_quantized : s.gguf_types_dequantized)
        .push_back(info->name);
  }
  s.asr_families = asr_families();
  return s;
}

}  // namespace

void add_list(CLI::App& app, const GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "list", "List the supported model families, GGUF architectures and tensor types");
  auto format = std::make_shared<std::string>("text");
  cmd->add_option("--format", *format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->callback([format] {
    const auto s = support();
    if (*format == "json") {
      nlohmann::json j{{"model_types", s.model_types},
                       {"gguf_architectures", s.gguf_architectures},
                       {"gguf_types_kept_quantized", s.gguf_types_quantized},
                       {"gguf_types_dequantized", s.gguf_types_dequantized},
                       {"asr_families", s.asr_families}};
      fmt::print("{}\n", j.dump(2));
      return;
    }
    fmt::print(
        "Language models (generate, chat):\n"
        "  Hugging Face / mlx-community directories (config.json + *.safetensors, float or\n"
        "  mlx-quantized), by config.json model_type: {}\n"
        "  GGUF files (llama.cpp), by general.architecture: {}\n"
        "    tensor types kept quantized (MLX affine, group 32): {}\n"
        "    tensor types dequantized on load: {}\n"
        "Speech recognition (transcribe), FunASR directories (config.yaml) by model: {}\n",
        fmt::join(s.model_types, ", "), fmt::join(s.gguf_architectures, ", "),
        fmt::join(s.gguf_types_quantized, ", "), fmt::join(s.gguf_types_dequantized, ", "),
        fmt::join(s.asr_families, ", "));
  });
}

}  // namespace ominix::cli
