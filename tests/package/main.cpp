// Links ominix::core from an installed package and runs one layer.
#include <cstdio>

#include <mlx/mlx.h>

#include "ominix/base/device.h"
#include "ominix/nn/norm.h"

int main() {
  namespace mx = mlx::core;
  ominix::nn::RMSNorm norm{mx::ones({4}), 1e-6f};
  auto y = norm(mx::array({1.0f, 2.0f, 3.0f, 4.0f}));
  std::printf("ominix %s on MLX %s: rms_norm sum %.4f\n", ominix::version().c_str(),
              ominix::mlx_version().c_str(), mx::sum(y).item<float>());
  return 0;
}
