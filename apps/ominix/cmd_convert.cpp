// ominix convert: rewrites a checkpoint as safetensors (from safetensors shards or a PyTorch
// model.pt), optionally casting floating tensors and quantizing weight matrices into MLX's affine
// layout, with the checkpoint's other files copied beside it.
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/core.h>
#include <mlx/mlx.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "ominix/base/device.h"
#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/io/safetensors.h"
#include "ominix/io/torch_zip.h"
#include "ominix/io/weights.h"

namespace ominix::cli {

namespace {

namespace fs = std::filesystem;
namespace mx = mlx::core;

struct ConvertOptions {
  fs::path model, out;
  int quantize_bits = 0;  // 0: keep floating weights
  int group_size = 64;
  std::string dtype;  // "", "float16", "bfloat16", "float32"
};

io::TensorMap read_weights(const fs::path& dir) {
  if (fs::exists(dir / "model.pt") && !fs::exists(dir / "model.safetensors") &&
      !fs::exists(dir / "model.safetensors.index.json"))
    return io::load_torch_zip(dir / "model.pt");
  return io::load_checkpoint(dir);
}

// Weight matrices (and stacked experts) whose rows split into groups; routers stay in float, as
// the families compute them at full precision.
bool quantizable(const std::string& name, const mx::array& a, int group_size) {
  if (!name.ends_with(".weight") || (a.ndim() != 2 && a.ndim() != 3)) return false;
  if (!mx::issubdtype(a.dtype(), mx::floating)) return false;
  if (name.ends_with("mlp.gate.weight") || name.ends_with("block_sparse_moe.gate.weight"))
    return false;
  return a.shape(-1) % group_size == 0;
}

void convert(const ConvertOptions& o) {
  if (!fs::is_directory(o.model)) fail<IoError>("{}: not a model directory", o.model.string());
  if (fs::exists(o.out) && !fs::is_empty(o.out))
    fail<InvalidArgument>("{}: output directory exists and is not empty", o.out.string());
  const bool has_config_json = fs::exists(o.model / "config.json");
  if (o.quantize_bits && !has_config_json)
    fail<UnsupportedError>(
        "{}: --quantize writes the quantization into config.json, which this model does not have",
        o.model.string());
  io::QuantSpec spec{o.group_size, o.quantize_bits, io::QuantMode::affine};
  if (o.quantize_bits) io::validate(spec, "--quantize/--group-size");

  io::TensorMap in = read_weights(o.model), out;
  std::optional<mx::Dtype> dtype;
  if (o.dtype == "float16") dtype = mx::float16;
  if (o.dtype == "bfloat16") dtype = mx::bfloat16;
  if (o.dtype == "float32") dtype = mx::float32;
  int quantized = 0;
  for (auto& [name, a] : in) {
    mx::array t = a;
    if (dtype && mx::issubdtype(t.dtype(), mx::floating)) t = mx::astype(t, *dtype);
    if (o.quantize_bits && quantizable(name, t, o.group_size)) {
      auto parts = mx::quantize(t, o.group_size, o.quantize_bits);
      const auto prefix = name.substr(0, name.size() - std::string(".weight").size());
      out.insert_or_assign(prefix + ".weight", parts[0]);
      out.insert_or_assign(prefix + ".scales", parts[1]);
      out.insert_or_assign(prefix + ".biases", parts[2]);
      ++quantized;
      continue;
    }
    out.insert_or_assign(name, t);
  }

  // Everything lands in a temporary directory that is renamed at the end: no half-written output.
  fs::path tmp = o.out;
  tmp += ".partial";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  io::save_safetensors(tmp / "model.safetensors", out, {{"format", "mlx"}});
  static const std::set<std::string> kWeightFiles = {"model.pt", "model.safetensors",
                                                     "model.safetensors.index.json"};
  for (const auto& e : fs::directory_iterator(o.model)) {
    const auto name = e.path().filename().string();
    if (!e.is_regular_file() || kWeightFiles.count(name) || e.path().extension() == ".safetensors")
      continue;
    fs::copy_file(e.path(), tmp / name);
  }
  if (o.quantize_bits) {
    auto config = io::ConfigReader::load(o.model / "config.json").json();
    nlohmann::json q = {
        {"group_size", o.group_size}, {"bits", o.quantize_bits}, {"mode", "affine"}};
    config["quantization"] = q;
    config["quantization_config"] = q;
    std::ofstream(tmp / "config.json") << config.dump(2) << "\n";
  }
  if (fs::exists(o.out)) fs::remove(o.out);
  fs::rename(tmp, o.out);
  fmt::print(
      "wrote {} ({} tensors{})\n", (o.out / "model.safetensors").string(), out.size(),
      o.quantize_bits ? fmt::format(", {} quantized to {} bits", quantized, o.quantize_bits) : "");
}

}  // namespace

void add_convert(CLI::App& app, const GlobalOptions& global) {
  auto* cmd =
      app.add_subcommand("convert", "Rewrite a checkpoint as safetensors, optionally quantized");
  auto o = std::make_shared<ConvertOptions>();
  cmd->add_option("--model", o->model, "Model directory (safetensors or model.pt)")->required();
  cmd->add_option("--out", o->out, "Output directory (must not exist or be empty)")->required();
  cmd->add_option("--quantize", o->quantize_bits,
                  "Quantize weight matrices to this many bits (MLX affine)")
      ->check(CLI::IsMember({2, 3, 4, 5, 6, 8}));
  cmd->add_option("--group-size", o->group_size, "Quantization group size")
      ->check(CLI::IsMember({32, 64, 128}));
  cmd->add_option("--dtype", o->dtype, "Cast floating tensors")
      ->check(CLI::IsMember({"float16", "bfloat16", "float32"}));
  cmd->callback([&global, o] {
    set_device(parse_device_kind(global.device));
    convert(*o);
  });
}

}  // namespace ominix::cli
