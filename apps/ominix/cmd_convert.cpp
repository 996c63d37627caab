// ominix convert: a checkpoint rewritten as MLX safetensors (ominix::convert_checkpoint),
// optionally cast and quantized as mlx-lm's convert does it.
#include <fmt/core.h>

#include "commands.h"
#include "ominix/base/device.h"
#include "ominix/convert.h"

namespace ominix::cli {

namespace {

struct ConvertFlags {
  std::filesystem::path model, out;
  int quantize_bits = 0;  // 0: keep floating weights
  int group_size = 64;
  std::string dtype;  // "": config.json's torch_dtype, as mlx-lm
};

void run_convert(const ConvertFlags& f) {
  ConvertOptions options{.model = f.model, .out = f.out};
  if (f.quantize_bits) options.quantize = io::QuantSpec{f.group_size, f.quantize_bits};
  if (f.dtype == "float16") options.dtype = mlx::core::float16;
  if (f.dtype == "bfloat16") options.dtype = mlx::core::bfloat16;
  if (f.dtype == "float32") options.dtype = mlx::core::float32;
  const auto report = convert_checkpoint(options);
  for (const auto& d : report.dirs)
    fmt::print("wrote {} ({} tensors in {} file{}{})\n", d.dir.string(), d.tensors, d.shards,
               d.shards == 1 ? "" : "s",
               f.quantize_bits
                   ? fmt::format(", {} modules quantized to {} bits", d.quantized, f.quantize_bits)
                   : "");
}

}  // namespace

void add_convert(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "convert",
      "Rewrite a checkpoint as MLX safetensors (as mlx-lm's convert: experts stacked, optionally "
      "cast and quantized); other files and subdirectories are copied");
  auto f = std::make_shared<ConvertFlags>();
  cmd->add_option("--model", f->model,
                  "Model directory (safetensors, sharded safetensors or a PyTorch model.pt)")
      ->required();
  cmd->add_option("--out", f->out, "Output directory (must not exist, or be empty)")->required();
  cmd->add_option("--quantize", f->quantize_bits,
                  "Quantize weight matrices and embeddings to this many bits (MLX affine; "
                  "routers follow the family's mlx-lm rule). Default: no quantization")
      ->check(CLI::IsMember({2, 3, 4, 5, 6, 8}));
  cmd->add_option("--group-size", f->group_size, "Quantization group size")
      ->check(CLI::IsMember({32, 64, 128}))
      ->capture_default_str();
  cmd->add_option("--dtype", f->dtype,
                  "Cast floating tensors. Default: config.json's torch_dtype (as mlx-lm), else "
                  "the checkpoint's own")
      ->check(CLI::IsMember({"float16", "bfloat16", "float32"}));
  cmd->callback([&global, f] {
    set_device(parse_device_kind(global.device));
    run_convert(*f);
  });
}

}  // namespace ominix::cli
