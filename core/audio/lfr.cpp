// ref: FunASR funasr/frontends/wav_frontend.py apply_lfr: (m-1)//2 copies of the first frame in
// front, T_lfr = ceil(T / n) rows of m frames with stride n, the last frame repeated past the end
// (the as_strided version pads exactly those rows).
#include "ominix/audio/lfr.h"

#include <mlx/ops.h>

#include "ominix/base/error.h"

namespace ominix::audio {

mx::array lfr(const mx::array& features, const LfrOptions& o) {
  if (o.m < 1 || o.n < 1)
    fail<InvalidArgument>("lfr: m and n must be >= 1, got m={} n={}", o.m, o.n);
  if (features.ndim() != 2) {
    fail<InvalidArgument>("lfr: features must be [T, D], got {} dimensions", features.ndim());
  }
  const int T = features.shape(0), D = features.shape(1);
  if (T == 0) return mx::zeros({0, o.m * D}, features.dtype());
  const int T_lfr = (T + o.n - 1) / o.n;
  const int left = (o.m - 1) / 2;
  // Source frame of row i, slot j: clip(i*n + j - left, 0, T-1).  [T_lfr, m]
  auto rows = mx::reshape(mx::arange(T_lfr, mx::int32) * o.n - left, {T_lfr, 1}) +
              mx::reshape(mx::arange(o.m, mx::int32), {1, o.m});
  rows = mx::clip(rows, mx::array(0, mx::int32), mx::array(T - 1, mx::int32));
  auto stacked = mx::take(features, mx::flatten(rows), 0);  // [T_lfr * m, D]
  return mx::reshape(stacked, {T_lfr, o.m * D});
}

}  // namespace ominix::audio
