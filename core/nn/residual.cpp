// The deferred residual add (nn::Residual): a decoder layer's trailing add is folded into the next
// norm, which add_rms_norm does in one kernel on CUDA.
#include <mlx/ops.h>

#include "ominix/nn/fused.h"

namespace ominix::nn {

mx::array value(const Residual& x) {
  return x.r ? mx::add(x.h, *x.r) : x.h;
}

AddNorm add_rms_norm(const Residual& x, const RMSNorm& norm) {
  if (x.r) return add_rms_norm(x.h, *x.r, norm);
  return {x.h, norm(x.h)};
}

}  // namespace ominix::nn
