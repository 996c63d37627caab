// The Qwen-VL vision-language family (config.json model_type qwen2_5_vl, qwen3_vl): a ViT whose
// merged patch features take the places of the prompt's <|image_pad|> tokens in the qwen3
// family's text model (Qwen2 for Qwen2.5-VL, Qwen3 for Qwen3-VL), which rotates by multimodal RoPE
// (M-RoPE) positions; Qwen3-VL also adds DeepStack features after its first layers.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <mlx/array.h>

#include "ominix/generate/model.h"

namespace ominix::qwen_vl {

namespace mx = mlx::core;

/// An image's patch grid (a row of image_grid_thw): temporal, height and width patches.
struct Grid {
  int t = 1, h = 0, w = 0;
};

/// A prompt's images as the Qwen2-VL image processor gives them, in prompt order.
struct Images {
  /// float [sum of t*h*w, in_channels * temporal_patch_size * patch_size^2] (pixel_values)
  mx::array pixel_values;
  std::vector<Grid> grids;  ///< one per image (image_grid_thw)
};

/// A prompt's videos as the Qwen2-VL video processor gives them, in prompt order (Qwen2.5-VL).
struct Videos {
  mx::array pixel_values;   ///< pixel_values_videos, laid out as Images::pixel_values
  std::vector<Grid> grids;  ///< video_grid_thw
  /// second_per_grid_ts: seconds per temporal patch, one per video (empty: 1 each, as
  /// transformers without it)
  std::vector<float> second_per_grid;
};

/// What the vision tower computes.
struct VisionOutput {
  /// [patches, vision hidden_size]: after the last block, in window order (transformers'
  /// last_hidden_state)
  mx::array hidden;
  /// [patches / spatial_merge_size^2, text hidden_size]: merged, in image order (pooler_output)
  mx::array features;
  /// Qwen3-VL: the DeepStack mergers' outputs (deepstack_visual_indexes), each shaped as
  /// `features`; empty for Qwen2.5-VL.
  std::vector<mx::array> deepstack;
};

/// A vision tower alone.
class VisionEncoder {
 public:
  virtual ~VisionEncoder() = default;
  /// InvalidArgument when pixel rows and grids disagree.
  virtual VisionOutput operator()(const Images& images) const = 0;
};

/// get_rope_index for one sequence.
struct RopeIndex {
  mx::array positions;  ///< int32 [3, 1, L]: time, height and width positions of each token
  int delta = 0;        ///< max position + 1 - L: a later token at index i sits at i + delta
};

/// Token ids whose runs of image-pad (video-pad) tokens take the images' (videos') merged
/// features, in order.
struct Prompt {
  std::vector<int> ids;
  std::optional<Images> images;
  std::optional<Videos> videos;
};

/// The grids get_rope_index reads besides the ids.
struct MediaGrids {
  std::span<const Grid> images;
  std::span<const Grid> videos;
  std::span<const float> second_per_grid;  ///< per video, as Videos::second_per_grid
};

/// A loaded model. As a LanguageModel it reads text only (positions = cache offset); bind()
/// gives the generation loop a model that reads a prompt with images.
class Model : public generate::LanguageModel {
 public:
  /// The vision tower over images or video frames (InvalidArgument when pixel rows and grids
  /// disagree).
  virtual VisionOutput encode_images(const Images& images) const = 0;
  /// M-RoPE positions of `ids` whose image-pad (video-pad) runs are the images (videos) of
  /// `grids` (ref: transformers 5.24 Qwen2_5_VLModel.get_rope_index, which Qwen3VLModel's equals
  /// for images; a video's time positions are its temporal patch index times tokens_per_second *
  /// second_per_grid, truncated; text only: 0..L-1 on every axis, delta 0). InvalidArgument when
  /// the runs do not match the grids; UnsupportedError for Qwen3-VL video (text timestamps).
  virtual RopeIndex rope_index(std::span<const int> ids, const MediaGrids& grids) const = 0;
  /// A model bound to `prompt` (its images and videos encoded now) for the generation loop: fed
  /// the prompt (in chunks, from any cached prefix on) and then generated tokens, it splices the
  /// image (video) features at the image-pad (video-pad) tokens and rotates by the prompt's M-RoPE
  /// positions, later tokens at cache offset + rope delta. It refers to *this, which must outlive
  /// it. Batch 1.
  virtual std::unique_ptr<generate::LanguageModel> bind(const Prompt& prompt) const = 0;
};

/// Registers the loaders of "qwen2_5_vl" and "qwen3_vl" in generate::model_registry().
void register_family();

/// Loads a Hugging Face Qwen2.5-VL or Qwen3-VL directory: config.json (text_config /
/// vision_config, or the flat transformers 4.x layout; rope_parameters or rope_scaling with
/// mrope_section) and *.safetensors in the transformers 4.x (model.layers, visual) or 5.x
/// (model.language_model, model.visual) key layout. ConfigError/UnsupportedError name the field,
/// WeightError lists every missing, unexpected or mis-shaped tensor.
std::unique_ptr<Model> load(const std::filesystem::path& dir,
                            const generate::LoadModelOptions& options = {});

/// Loads only the vision tower of a Hugging Face directory: Qwen2.5-VL (model_type qwen2_5_vl)
/// or Qwen3-VL (qwen3_vl: patch 16, learned position grid resampled bilinearly to each image,
/// LayerNorm blocks, full attention, DeepStack mergers). The text model's tensors are skipped.
std::unique_ptr<VisionEncoder> load_vision(const std::filesystem::path& dir,
                                           const generate::LoadModelOptions& options = {});

}  // namespace ominix::qwen_vl
