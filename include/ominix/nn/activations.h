// Activation functions, by the names config.json uses in `hidden_act`.
#pragma once

#include <string>

#include <mlx/array.h>

namespace ominix::nn {

namespace mx = mlx::core;

enum class Activation { silu, gelu, gelu_tanh, relu };

/// "silu"/"swish", "gelu", "gelu_pytorch_tanh"/"gelu_new"/"gelu_fast", "relu"; ConfigError
/// otherwise.
Activation parse_activation(const std::string& name, const std::string& where);

mx::array silu(const mx::array& x);
mx::array gelu(const mx::array& x);       ///< exact, with erf
mx::array gelu_tanh(const mx::array& x);  ///< tanh approximation
mx::array relu(const mx::array& x);
mx::array activate(Activation a, const mx::array& x);
/// act(gate) * up: the gated MLP of Llama/Qwen (SwiGLU with silu) and Gemma (GeGLU).
mx::array gated(Activation a, const mx::array& gate, const mx::array& up);

}  // namespace ominix::nn
