// PyTorch zip checkpoints (torch.save since 1.6): state dicts only, read without executing code.
// ref: pytorch torch/serialization.py (_save, _load), torch/_utils.py (_rebuild_tensor_v2),
//      caffe2/serialize/inline_container.cc (the zip layout); Python's Lib/pickletools.py.
#pragma once

#include <filesystem>
#include <string>

#include "ominix/io/safetensors.h"

namespace ominix::io {

/// Loads the tensors of a state dict saved by torch.save: `archive/data.pkl` is read by a small
/// unpickler that knows only what state dicts use (dicts, OrderedDict, lists, tuples, strings,
/// numbers, None, torch.*Storage persistent ids, _rebuild_tensor_v2, _rebuild_parameter); any
/// other opcode or global is a FormatError naming the file and it. Nested dicts give
/// dot-joined keys ({"model": {"w": t}} -> "model.w"); non-tensor values are skipped. Storages
/// (fp32/fp64/fp16/bf16, int8-64, uint8, bool) must be stored uncompressed; views with an offset
/// and strides are copied out, storages shared between tensors are read once. IoError when the
/// file cannot be read, FormatError for a truncated or inconsistent zip or pickle.
TensorMap load_torch_zip(const std::filesystem::path& path);

/// True when the file starts with a zip local-file signature (a candidate for load_torch_zip).
bool is_zip_file(const std::filesystem::path& path);

}  // namespace ominix::io
