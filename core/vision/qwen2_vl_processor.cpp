// The Qwen2-VL image processor. Port of transformers 5.24
// src/transformers/models/qwen2_vl/image_processing_qwen2_vl.py (Qwen2VLImageProcessor, torchvision
// backend) with image_processing_backends.py (TorchvisionBackend.resize/rescale_and_normalize).
#include "ominix/vision/qwen2_vl_processor.h"

#include <cmath>

#include "ominix/base/error.h"
#include "ominix/io/config.h"

namespace ominix::vision {

Qwen2VLProcessorOptions Qwen2VLProcessorOptions::load(const std::filesystem::path& path) {
  const auto c = io::ConfigReader::load(path);
  Qwen2VLProcessorOptions o;
  o.patch_size = c.get("patch_size", o.patch_size);
  o.merge_size = c.get("merge_size", o.merge_size);
  o.temporal_patch_size = c.get("temporal_patch_size", o.temporal_patch_size);
  // ref: Qwen2VLImageProcessor.__init__: size (or the class default), then min_pixels/max_pixels.
  if (c.has("size")) {
    const auto size = c.child("size");
    o.min_pixels = size.required<long long>("shortest_edge");
    o.max_pixels = size.required<long long>("longest_edge");
  }
  o.min_pixels = c.get<long long>("min_pixels", o.min_pixels);
  o.max_pixels = c.get<long long>("max_pixels", o.max_pixels);
  o.do_resize = c.get("do_resize", o.do_resize);
  o.do_rescale = c.get("do_rescale", o.do_rescale);
  o.do_normalize = c.get("do_normalize", o.do_normalize);
  o.rescale_factor = c.get("rescale_factor", o.rescale_factor);
  auto read_triple = [&](const std::string& key, std::array<float, 3>& into) {
    if (!c.has(key)) return;
    const auto& v = c.json().at(key);
    if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() ||
        !v[2].is_number())
      fail<ConfigError>("{}: expected 3 numbers, got {}", c.field(key), v.dump());
    for (int i = 0; i < 3; ++i) into[i] = v[i].get<float>();
  };
  read_triple("image_mean", o.image_mean);
  read_triple("image_std", o.image_std);
  if (c.get("resample", 3) != 3)
    fail<ConfigError>("{}: only bicubic resampling (3) is supported", c.field("resample"));
  if (!c.get("do_convert_rgb", true))
    fail<ConfigError>("{}: only RGB input (true) is supported", c.field("do_convert_rgb"));
  if (o.patch_size <= 0 || o.merge_size <= 0 || o.temporal_patch_size <= 0)
    fail<ConfigError>("{}: patch_size, merge_size and temporal_patch_size must be positive",
                      c.where());
  if (o.min_pixels <= 0 || o.max_pixels < o.min_pixels)
    fail<ConfigError>("{}: need 0 < min_pixels ({}) <= max_pixels ({})", c.where(), o.min_pixels,
                      o.max_pixels);
  return o;
}

std::array<int, 2> smart_resize(int height, int width, int factor, std::int64_t min_pixels,
                                std::int64_t max_pixels) {
  if (height <= 0 || width <= 0 || factor <= 0)
    fail<InvalidArgument>("smart_resize: empty image {}x{}", width, height);
  const double h = height, w = width, f = factor;
  if (std::max(h, w) / std::min(h, w) > 200)
    fail<InvalidArgument>("image {}x{}: aspect ratio must be smaller than 200", width, height);
  // Python's round() rounds halves to even, as std::nearbyint does in the default rounding mode.
  double h_bar = std::nearbyint(h / f) * f, w_bar = std::nearbyint(w / f) * f;
  if (h_bar * w_bar > static_cast<double>(max_pixels)) {
    const double beta = std::sqrt(h * w / static_cast<double>(max_pixels));
    h_bar = std::max(f, std::floor(h / beta / f) * f);
    w_bar = std::max(f, std::floor(w / beta / f) * f);
  } else if (h_bar * w_bar < static_cast<double>(min_pixels)) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / (h * w));
    h_bar = std::ceil(h * beta / f) * f;
    w_bar = std::ceil(w * beta / f) * f;
  }
  return {static_cast<int>(h_bar), static_cast<int>(w_bar)};
}

ProcessedImages qwen2_vl_process_images(std::span<const Image> images,
                                        const Qwen2VLProcessorOptions& o) {
  const int P = o.patch_size, M = o.merge_size, T = o.temporal_patch_size, C = 3;
  const int row = C * T * P * P;
  // ref: rescale_and_normalize fuses the two: mean and std divided by rescale_factor (float32).
  std::array<float, 3> mean{0, 0, 0}, std{1, 1, 1};
  float scale = 1.0f;
  if (o.do_normalize) {
    const float inv = o.do_rescale ? static_cast<float>(1.0 / o.rescale_factor) : 1.0f;
    for (int c = 0; c < C; ++c) mean[c] = o.image_mean[c] * inv, std[c] = o.image_std[c] * inv;
  } else if (o.do_rescale) {
    scale = static_cast<float>(o.rescale_factor);
  }
  std::vector<float> values;
  std::vector<GridTHW> grids;
  for (const Image& source : images) {
    Image resized;
    if (o.do_resize) {
      const auto [h, w] =
          smart_resize(source.height, source.width, P * M, o.min_pixels, o.max_pixels);
      resized = resize_bicubic(source, h, w);
    }
    const Image& img = o.do_resize ? resized : source;
    if (img.height % (P * M) != 0 || img.width % (P * M) != 0)
      fail<InvalidArgument>("image {}x{}: not a multiple of patch_size * merge_size ({})",
                            img.width, img.height, P * M);
    const int gh = img.height / P, gw = img.width / P;
    grids.push_back({1, gh, gw});
    const std::size_t base = values.size();
    values.resize(base + static_cast<std::size_t>(1) * gh * gw * row);
    // ref: patchify: [C, gh/M, M, P, gw/M, M, P] -> [gh/M, gw/M, M, M, C, T, P, P].
    std::size_t k = base;
    for (int bh = 0; bh < gh / M; ++bh)
      for (int bw = 0; bw < gw / M; ++bw)
        for (int mh = 0; mh < M; ++mh)
          for (int mw = 0; mw < M; ++mw)
            for (int c = 0; c < C; ++c)
              for (int t = 0; t < T; ++t)
                for (int py = 0; py < P; ++py)
                  for (int px = 0; px < P; ++px) {
                    const int y = (bh * M + mh) * P + py, x = (bw * M + mw) * P + px;
                    const float v =
                        img.data[(static_cast<std::size_t>(1) * y * img.width + x) * 3 + c];
                    values[k++] = o.do_normalize ? (v - mean[c]) / std[c] : v * scale;
                  }
  }
  const int n = static_cast<int>(values.size() / row);
  return {mx::array(values.data(), {n, row}, mx::float32), std::move(grids)};
}

}  // namespace ominix::vision
