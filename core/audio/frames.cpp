#include "frames.h"

#include <mlx/ops.h>

#include "ominix/base/error.h"

namespace ominix::audio::detail {

mx::array frame_positions(int num_frames, int width, int shift, int offset) {
  auto starts = mx::reshape(mx::arange(num_frames, mx::int32) * shift + offset, {num_frames, 1});
  return starts + mx::reshape(mx::arange(width, mx::int32), {1, width});  // [F, 1] + [1, W]
}

mx::array reflect_with_edge(const mx::array& positions, int n, int min_position) {
  // Period 2n: r in [n, 2n) maps to 2n - 1 - r.
  int lift = min_position < 0 ? ((-min_position) / (2 * n) + 1) * (2 * n) : 0;
  auto r = mx::remainder(positions + lift, mx::array(2 * n, mx::int32));
  return mx::where(r >= n, (2 * n - 1) - r, r);
}

mx::array reflect_without_edge(const mx::array& positions, int n, int min_position) {
  if (n == 1) return mx::zeros_like(positions);
  // Period 2n - 2: r in [n, 2n - 2) maps to 2n - 2 - r.
  const int period = 2 * n - 2;
  int lift = min_position < 0 ? ((-min_position) / period + 1) * period : 0;
  auto r = mx::remainder(positions + lift, mx::array(period, mx::int32));
  return mx::where(r >= n, period - r, r);
}

mx::array mono_samples(const mx::array& samples, const std::string& what) {
  if (samples.ndim() == 1) return mx::astype(samples, mx::float32);
  if (samples.ndim() == 2 && samples.shape(0) == 1) {
    return mx::astype(mx::reshape(samples, {samples.shape(1)}), mx::float32);
  }
  fail<InvalidArgument>("{}: samples must be mono [T] or [1, T], got {} dimensions{}", what,
                        samples.ndim(), samples.ndim() == 2 ? " with several channels" : "");
}

}  // namespace ominix::audio::detail
