#include "ominix/nn/activations.h"

#include <cmath>

#include <mlx/compile.h>
#include <mlx/ops.h>

#include "ominix/base/error.h"

namespace ominix::nn {

Activation parse_activation(const std::string& name, const std::string& where) {
  if (name == "silu" || name == "swish") return Activation::silu;
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new" || name == "gelu_fast")
    return Activation::gelu_tanh;
  if (name == "relu") return Activation::relu;
  fail<UnsupportedError>("{}: activation '{}' is not supported", where, name);
}

mx::array silu(const mx::array& x) {
  return mx::multiply(x, mx::sigmoid(x));
}

mx::array gelu(const mx::array& x) {
  // 0.5 x (1 + erf(x / sqrt 2))
  auto half = mx::array(0.5f, x.dtype());
  return mx::multiply(mx::multiply(half, x),
                      mx::add(mx::array(1.0f, x.dtype()),
                              mx::erf(mx::multiply(x, mx::array(float(M_SQRT1_2), x.dtype())))));
}

mx::array gelu_tanh(const mx::array& x) {
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  auto dt = x.dtype();
  auto inner = mx::multiply(
      mx::array(float(std::sqrt(2.0 / M_PI)), dt),
      mx::add(x, mx::multiply(mx::array(0.044715f, dt), mx::power(x, mx::array(3.0f, dt)))));
  return mx::multiply(mx::multiply(mx::array(0.5f, dt), x),
                      mx::add(mx::array(1.0f, dt), mx::tanh(inner)));
}

mx::array relu(const mx::array& x) {
  return mx::maximum(x, mx::array(0.0f, x.dtype()));
}

mx::array activate(Activation a, const mx::array& x) {
  switch (a) {
    case Activation::silu:
      return silu(x);
    case Activation::gelu:
      return gelu(x);
    case Activation::gelu_tanh:
      return gelu_tanh(x);
    case Activation::relu:
      return relu(x);
  }
  return x;
}

mx::array gated(Activation a, const mx::array& gate, const mx::array& up) {
  // One fused kernel (and one graph node) instead of three: this runs in every layer of every
  // decode step. ref: mlx-lm's compiled swiglu.
  static const auto swiglu = mx::compile(
      [](const std::vector<mx::array>& in) {
        return std::vector<mx::array>{mx::multiply(silu(in[0]), in[1])};
      },
      /*shapeless=*/true);
  if (a == Activation::silu) return swiglu({gate, up})[0];
  return mx::multiply(activate(a, gate), up);
}

}  // namespace ominix::nn
