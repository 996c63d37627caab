// llama.cpp GGUF files of the Qwen family (general.architecture qwen2, qwen3, qwen3moe): tensor
// names and metadata as the transformers checkpoint the loader binds.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "ominix/io/gguf.h"

namespace ominix::qwen3 {

/// llama.cpp's tensor name ("blk.0.attn_q.weight") -> transformers' ("model.layers.0.self_attn.
/// q_proj.weight"); stacked experts (ffn_*_exps, [E, out, in]) go straight to mlp.switch_mlp.
std::string rename_gguf(const std::string& name);

/// The config.json of a GGUF checkpoint whose tensors rename_gguf has renamed. UnsupportedError
/// for other architectures or rope scalings; ConfigError names missing metadata keys.
nlohmann::json gguf_config(const io::GgufCheckpoint& ck);

}  // namespace ominix::qwen3
