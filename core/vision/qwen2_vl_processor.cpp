// The Qwen2-VL image processor. Port of transformers 5.24
// src/transformers/models/qwen2_vl/image_processing_qwen2_vl.py (Qwen2VLImageProcessor, torchvision
// backend) with image_processing_backends.py (TorchvisionBackend.resize/rescale_and_normalize).
#include "ominix/vision/qwen2_vl_processor.h"

#include <cmath>
#include <memory>

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
  // ref: rescale_and_normalize fuses the two: mean and std divided by rescale_factor (float32),
  // then (x - mean) / std in float32. Inputs are bytes, so a table per channel holds every result.
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < C; ++c) {
    float mean = 0.0f, std = 1.0f;
    if (o.do_normalize) {
      const float inv = o.do_rescale ? static_cast<float>(1.0 / o.rescale_factor) : 1.0f;
      mean = o.image_mean[c] * inv, std = o.image_std[c] * inv;
    }
    for (int v = 0; v < 256; ++v)
      lut[c][v] = o.do_normalize ? (static_cast<float>(v) - mean) / std
                  : o.do_rescale ? static_cast<float>(v) * static_cast<float>(o.rescale_factor)
                                 : static_cast<float>(v);
  }
  // Output sizes first, so that pixel_values is allocated once and handed to MLX without a copy.
  std::vector<std::array<int, 2>> sizes;
  std::vector<GridTHW> grids;
  std::size_t rows = 0;
  for (const Image& image : images) {
    if (image.data.size() != static_cast<std::size_t>(3) * image.width * image.height)
      fail<InvalidArgument>("image {}x{}: {} bytes, expected width * height * 3", image.width,
                            image.height, image.data.size());
    const auto hw = o.do_resize
                        ? smart_resize(image.height, image.width, P * M, o.min_pixels, o.max_pixels)
                        : std::array<int, 2>{image.height, image.width};
    if (hw[0] % (P * M) != 0 || hw[1] % (P * M) != 0)
      fail<InvalidArgument>("image {}x{}: not a multiple of patch_size * merge_size ({})", hw[1],
                            hw[0], P * M);
    sizes.push_back(hw);
    grids.push_back({1, hw[0] / P, hw[1] / P});
    rows += static_cast<std::size_t>(hw[0] / P) * (hw[1] / P);
  }
  std::unique_ptr<float[]> values(new float[rows * row]);
  float* out = values.get();
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto [h, w] = sizes[i];
    const Image resized =
        h == images[i].height && w == images[i].width ? Image{} : resize_bicubic(images[i], h, w);
    const Image& img = resized.data.empty() ? images[i] : resized;
    // ref: patchify: [C, gh/M, M, P, gw/M, M, P] -> [gh/M, gw/M, M, M, C, T, P, P]; the T frames
    // of an image are copies.
    for (int bh = 0; bh < h / (P * M); ++bh)
      for (int bw = 0; bw < w / (P * M); ++bw)
        for (int mh = 0; mh < M; ++mh)
          for (int mw = 0; mw < M; ++mw)
            for (int c = 0; c < C; ++c) {
              const float* frame = out;
              for (int py = 0; py < P; ++py) {
                const int y = (bh * M + mh) * P + py, x = (bw * M + mw) * P;
                const std::uint8_t* src = &img.data[(static_cast<std::size_t>(y) * w + x) * 3 + c];
                for (int px = 0; px < P; ++px) *out++ = lut[c][src[3 * px]];
              }
              for (int t = 1; t < T; ++t, out += P * P) std::copy(frame, frame + P * P, out);
            }
  }
  float* data = values.release();
  return {mx::array(data, {static_cast<int>(rows), row}, mx::float32,
                    [](void* p) { delete[] static_cast<float*>(p); }),
          std::move(grids)};
}

}  // namespace ominix::vision
