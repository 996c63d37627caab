// The Qwen2-VL image processor (shared by Qwen2-VL, Qwen2.5-VL, Qwen3-VL and Qwen-Image's text
// encoder): smart_resize, bicubic resize, rescale + normalise, temporal patching and the patch
// flattening order. Port of transformers 5.24 models/qwen2_vl/image_processing_qwen2_vl.py
// (Qwen2VLImageProcessor, the torchvision backend AutoProcessor picks; docs/vision.md).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include <mlx/array.h>

#include "ominix/vision/image.h"

namespace ominix::vision {

namespace mx = mlx::core;

/// preprocessor_config.json's fields, with Qwen2VLImageProcessor's defaults.
struct Qwen2VLProcessorOptions {
  int patch_size = 14;                ///< 14: Qwen2/2.5-VL, 16: Qwen3-VL
  int merge_size = 2;                 ///< spatial merge; resize factor = patch_size * merge_size
  int temporal_patch_size = 2;        ///< an image is repeated to this many frames
  std::int64_t min_pixels = 56 * 56;  ///< min_pixels or size.shortest_edge
  std::int64_t max_pixels = 28 * 28 * 1280;  ///< max_pixels or size.longest_edge
  bool do_resize = true;
  bool do_rescale = true;
  bool do_normalize = true;
  double rescale_factor = 1.0 / 255.0;
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};  ///< OpenAI CLIP
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};

  /// Reads preprocessor_config.json (min_pixels/max_pixels override size.shortest_edge/
  /// longest_edge, as the reference's constructor does). ConfigError naming the field on a bad
  /// value or a resample other than bicubic (3).
  static Qwen2VLProcessorOptions load(const std::filesystem::path& preprocessor_config);
};

/// Output height and width: multiples of `factor`, area within [min_pixels, max_pixels], aspect
/// ratio kept as closely as possible (transformers' smart_resize). InvalidArgument for an aspect
/// ratio above 200 or an empty size.
std::array<int, 2> smart_resize(int height, int width, int factor, std::int64_t min_pixels,
                                std::int64_t max_pixels);

/// One image's patch grid: temporal, height and width in patches (before merging).
using GridTHW = std::array<std::int64_t, 3>;

struct ProcessedImages {
  /// [sum of t*h*w, C * temporal_patch_size * patch_size^2] float32; rows in the reference's order
  /// (merge windows row-major, the merge_size^2 patches of each window row-major), columns
  /// (channel, frame, row, column).
  mx::array pixel_values;
  std::vector<GridTHW> image_grid_thw;  ///< one per image, in order
};

/// pixel_values and image_grid_thw for images, as the reference processor returns them.
ProcessedImages qwen2_vl_process_images(std::span<const Image> images,
                                        const Qwen2VLProcessorOptions& options);

}  // namespace ominix::vision
