// Bicubic antialiased resize in 8-bit fixed point: torchvision's resize(BICUBIC, antialias=True)
// of a uint8 tensor on the CPU, i.e. PyTorch's _upsample_bicubic2d_aa uint8 kernel
// (aten/src/ATen/native/cpu/UpSampleKernel.cpp, _compute_index_ranges_int16_weights), whose
// weights are Pillow's (libImaging/Resample.c) scaled to int16 with the largest precision that
// fits.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ominix/base/error.h"
#include "ominix/vision/image.h"

namespace ominix::vision {
namespace {

double cubic(double x) {  // Keys' cubic, a = -0.5 (as Pillow and PyTorch's antialiased path)
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

struct Taps {
  std::vector<int> start, size;       // per output index: first input index, tap count
  std::vector<std::int16_t> weights;  // per output index, `width` slots
  int width = 0;
  unsigned precision = 0;
};

Taps taps(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double support = scale >= 1.0 ? 2.0 * scale : 2.0;
  const double inv = scale >= 1.0 ? 1.0 / scale : 1.0;
  Taps t;
  t.width = static_cast<int>(std::ceil(support)) * 2 + 1;
  std::vector<double> w(static_cast<std::size_t>(1) * out_size * t.width, 0.0);
  double w_max = 0.0;
  for (int i = 0; i < out_size; ++i) {
    const double center = scale * (i + 0.5);
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int n =
        std::min(std::min(static_cast<int>(center + support + 0.5), in_size) - lo, t.width);
    double total = 0.0;
    for (int j = 0; j < n; ++j)
      total += w[static_cast<std::size_t>(1) * i * t.width + j] =
          cubic((j + lo - center + 0.5) * inv);
    for (int j = 0; j < n; ++j) {
      double& v = w[static_cast<std::size_t>(1) * i * t.width + j];
      if (total != 0.0) v /= total;
      w_max = std::max(w_max, v);
    }
    t.start.push_back(lo);
    t.size.push_back(n);
  }
  // The largest precision whose rounded maximum weight still fits in int16.
  while (t.precision < 22 && static_cast<int>(0.5 + w_max * (1 << (t.precision + 1))) < (1 << 15))
    ++t.precision;
  t.weights.resize(w.size());
  for (std::size_t k = 0; k < w.size(); ++k)
    t.weights[k] = static_cast<std::int16_t>(w[k] < 0 ? -0.5 + w[k] * (1 << t.precision)
                                                      : 0.5 + w[k] * (1 << t.precision));
  return t;
}

// One pass along rows (horizontal) or columns (vertical) of a [H, W, 3] uint8 image. int32
// accumulators as the reference: |sum| < 255 * 2^22 * 1.3.
Image resize_pass(const Image& in, int out_size, bool horizontal) {
  const Taps t = taps(horizontal ? in.width : in.height, out_size);
  Image out{horizontal ? out_size : in.width, horizontal ? in.height : out_size, {}};
  out.data.resize(static_cast<std::size_t>(3) * out.width * out.height);
  const std::int32_t half = std::int32_t{1} << (t.precision - 1);
  auto store = [&](std::int32_t acc) {
    return static_cast<std::uint8_t>(std::clamp(acc >> t.precision, 0, 255));
  };
  if (horizontal) {
    for (int y = 0; y < out.height; ++y) {
      const std::uint8_t* src = &in.data[static_cast<std::size_t>(3) * y * in.width];
      std::uint8_t* dst = &out.data[static_cast<std::size_t>(3) * y * out.width];
      for (int x = 0; x < out.width; ++x) {
        const std::int16_t* w = &t.weights[static_cast<std::size_t>(x) * t.width];
        const std::uint8_t* s = src + 3 * t.start[x];
        std::int32_t r = half, g = half, b = half;
        for (int j = 0; j < t.size[x]; ++j, s += 3)
          r += s[0] * w[j], g += s[1] * w[j], b += s[2] * w[j];
        dst[3 * x] = store(r), dst[3 * x + 1] = store(g), dst[3 * x + 2] = store(b);
      }
    }
    return out;
  }
  const std::size_t row = static_cast<std::size_t>(3) * in.width;
  std::vector<std::int32_t> acc(row);
  for (int y = 0; y < out.height; ++y) {
    std::fill(acc.begin(), acc.end(), half);
    const std::int16_t* w = &t.weights[static_cast<std::size_t>(y) * t.width];
    for (int j = 0; j < t.size[y]; ++j) {
      const std::uint8_t* s = &in.data[(t.start[y] + j) * row];
      for (std::size_t k = 0; k < row; ++k) acc[k] += s[k] * w[j];
    }
    std::uint8_t* dst = &out.data[y * row];
    for (std::size_t k = 0; k < row; ++k) dst[k] = store(acc[k]);
  }
  return out;
}

}  // namespace

Image resize_bicubic(const Image& image, int height, int width) {
  if (height <= 0 || width <= 0 || image.width <= 0 || image.height <= 0 ||
      image.data.size() != static_cast<std::size_t>(3) * image.width * image.height)
    fail<InvalidArgument>("resize_bicubic: cannot resize {}x{} to {}x{}", image.width, image.height,
                          width, height);
  Image out = image.width == width ? image : resize_pass(image, width, true);
  return out.height == height ? out : resize_pass(out, height, false);
}

}  // namespace ominix::vision
