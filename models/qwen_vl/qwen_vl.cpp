// Port of transformers 5.24.0 src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py:
// Qwen2_5_VLModel (get_rope_index; the image features scattered at the image-pad tokens; the text
// model rotating by M-RoPE, Qwen2_5_VLRotaryEmbedding) over the qwen3 family's Qwen2 text model;
// and of models/qwen3_vl/modeling_qwen3_vl.py: Qwen3VLModel (the same positions for images,
// interleaved M-RoPE sections, DeepStack features added after the first text layers) over its
// Qwen3 text model.
#include "ominix/models/qwen_vl.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include <mlx/ops.h>
#include <mlx/transforms.h>

#include "models/qwen_vl/config.h"
#include "models/qwen_vl/vision.h"
#include "ominix/base/error.h"
#include "ominix/io/weights.h"
#include "ominix/models/qwen3.h"
#include "ominix/nn/rope.h"

namespace ominix::qwen_vl {
namespace {

/// get_rope_index's positions on the host: time, height, width per token.
struct HostIndex {
  std::array<std::vector<int>, 3> pos;
  int delta = 0;
};

class Impl final : public Model {
 public:
  Impl(Config config, std::unique_ptr<VisionEncoder> vision,
       std::unique_ptr<qwen3::EmbeddingsModel> text, generate::ModelInfo info,
       std::vector<float> inv_freq)
      : config_(std::move(config)),
        vision_(std::move(vision)),
        text_(std::move(text)),
        info_(std::move(info)),
        inv_freq_(std::move(inv_freq)) {}

  // Text only: every axis at the cache offset, which plain RoPE is.
  mx::array operator()(const mx::array& tokens, generate::Cache& cache) const override {
    return (*text_)(tokens, cache);
  }
  generate::Cache make_cache(const generate::CacheOptions& options) const override {
    return text_->make_cache(options);
  }
  const generate::ModelInfo& info() const override { return info_; }

  VisionOutput encode_images(const Images& images) const override { return (*vision_)(images); }

  RopeIndex rope_index(std::span<const int> ids, const MediaGrids& grids) const override {
    auto index = host_rope_index(ids, grids);
    std::vector<int> flat;
    for (const auto& axis : index.pos) flat.insert(flat.end(), axis.begin(), axis.end());
    const int L = static_cast<int>(ids.size());
    return {mx::array(flat.data(), {3, 1, L}, mx::int32), index.delta};
  }

  std::unique_ptr<generate::LanguageModel> bind(const Prompt& prompt) const override;

  /// ref: Qwen2_5_VLModel.get_rope_index (one sequence, no padding; mm_token_type_ids from the
  /// pad tokens). Runs of text tokens count on from the last position on all three axes; a run of
  /// image-pad (video-pad) tokens is its grid merged, (t * interval, h, w) offset by the position
  /// reached, which then moves on by max(h, w). interval: 1 for images, tokens_per_second *
  /// second_per_grid for videos, the product truncated as the reference's .long().
  HostIndex host_rope_index(std::span<const int> ids, const MediaGrids& grids) const {
    const int L = static_cast<int>(ids.size()), m = config_.spatial_merge_size;
    const bool v3 = config_.model_type == "qwen3_vl";
    HostIndex r;
    for (auto& axis : r.pos) axis.resize(L);
    auto kind = [&](int id) {
      return id == config_.image_token_id ? 1 : id == config_.video_token_id ? 2 : 0;
    };
    std::size_t used[3] = {0, 0, 0};
    const char* names[3] = {"", "image", "video"};
    int current = 0;
    for (int i = 0; i < L;) {
      const int type = kind(ids[i]);
      int j = i;
      while (j < L && kind(ids[j]) == type) ++j;
      if (type == 0) {
        for (int k = i; k < j; ++k)
          for (auto& axis : r.pos) axis[k] = current + (k - i);
        current += j - i;
        i = j;
        continue;
      }
      if (type == 2 && v3)
        fail<UnsupportedError>("qwen_vl: Qwen3-VL video (video-pad id {} at {}) is not supported",
                               ids[i], i);
      const auto& list = type == 1 ? grids.images : grids.videos;
      const std::size_t n = used[type]++;
      if (n >= list.size())
        fail<InvalidArgument>("qwen_vl: more runs of {}-pad tokens than the {} {}(s)", names[type],
                              list.size(), names[type]);
      const Grid& g = list[n];
      const int lt = g.t, lh = g.h / m, lw = g.w / m;
      if (j - i != lt * lh * lw)
        fail<InvalidArgument>("qwen_vl: {} {} has a grid of {} merged patches but {} pad tokens",
                              names[type], n, lt * lh * lw, j - i);
      float interval = 1.0f;
      if (type == 2)
        interval = static_cast<float>(config_.vision.tokens_per_second) *
                   (n < grids.second_per_grid.size() ? grids.second_per_grid[n] : 1.0f);
      int k = i;
      for (int t = 0; t < lt; ++t)
        for (int h = 0; h < lh; ++h)
          for (int w = 0; w < lw; ++w, ++k) {
            r.pos[0][k] = static_cast<int>(static_cast<float>(t) * interval) + current;
            r.pos[1][k] = h + current, r.pos[2][k] = w + current;
          }
      current += std::max(g.h, g.w) / m;
      i = j;
    }
    if (used[1] != grids.images.size() || used[2] != grids.videos.size())
      fail<InvalidArgument>("qwen_vl: {} image(s) and {} video(s) but {} and {} runs of pad tokens",
                            grids.images.size(), grids.videos.size(), used[1], used[2]);
    int max = -1;
    for (const auto& axis : r.pos)
      for (int p : axis) max = std::max(max, p);
    r.delta = max + 1 - L;
    return r;
  }

  const Config& config() const { return config_; }
  const qwen3::EmbeddingsModel& text() const { return *text_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  Config config_;
  std::unique_ptr<VisionEncoder> vision_;
  std::unique_ptr<qwen3::EmbeddingsModel> text_;
  generate::ModelInfo info_;
  std::vector<float> inv_freq_;  ///< the text model's RoPE inverse frequencies [head_dim / 2]
};

/// The model bound to one prompt (Model::bind).
class Bound final : public generate::LanguageModel {
 public:
  /// `images` and `videos`: the towers' outputs for the prompt's images and videos.
  Bound(const Impl& model, std::vector<int> ids, std::optional<VisionOutput> images,
        std::optional<VisionOutput> videos, HostIndex index)
      : m_(model), ids_(std::move(ids)), index_(std::move(index)) {
    const int have_images = images ? images->features.shape(0) : 0;
    const int have_videos = videos ? videos->features.shape(0) : 0;
    int image = 0, video = 0;
    for (int id : ids_)
      rows_.push_back(id == m_.config().image_token_id   ? image++
                      : id == m_.config().video_token_id ? have_images + video++
                                                         : -1);
    if (image != have_images || video != have_videos)
      fail<InvalidArgument>(
          "qwen_vl: {} image-pad and {} video-pad tokens but {} image and {} video features", image,
          video, have_images, have_videos);
    // One table: the images' rows, then the videos'.
    if (images && videos)
      features_ = mx::concatenate({images->features, videos->features}, 0);
    else if (images || videos)
      features_ = images ? images->features : videos->features;
    if (images) deepstack_ = images->deepstack;  // Qwen3-VL, which takes no video here
  }

  mx::array operator()(const mx::array& tokens, generate::Cache& cache) const override {
    generate::check_tokens(m_.info().model_type, tokens);
    const auto& text = m_.text();
    const int offset = cache.offset(), L = tokens.shape(1), P = static_cast<int>(ids_.size());
    // ref: Qwen2_5_VLModel.compute_3d_position_ids — after the prompt every axis sits at
    // cache length + rope delta: plain RoPE from that offset.
    if (offset >= P)
      return text.forward_embeddings(text.embed(tokens), cache,
                                     {.positions = {.offset = offset + index_.delta}});
    if (tokens.shape(0) != 1)
      fail<InvalidArgument>("qwen_vl: a prompt with images or videos is batch 1, got {}",
                            tokens.shape(0));
    std::vector<int> positions(3 * L), rows(L, 0);
    std::vector<uint8_t> is_image(L, 0);
    bool any_image = false;
    for (int k = 0; k < L; ++k) {
      const int i = offset + k;
      for (int a = 0; a < 3; ++a)
        positions[a * L + k] = i < P ? index_.pos[a][i] : i + index_.delta;
      if (i < P && rows_[i] >= 0) rows[k] = rows_[i], is_image[k] = 1, any_image = true;
    }
    auto x = text.embed(tokens);  // [1,L,D]
    qwen3::EmbeddingsForward forward;
    if (any_image) {
      // This chunk's image rows of features [M,D] at their tokens -> [1,L,D], zero elsewhere.
      const auto mask = mx::reshape(mx::array(is_image.begin(), {L}, mx::bool_), {1, L, 1});
      const auto index = mx::array(rows.data(), {L}, mx::int32);
      auto at_images = [&](const mx::array& features, const mx::array& otherwise) {
        auto f = mx::expand_dims(mx::take(features, index, 0), 0);
        return mx::where(mask, mx::astype(f, x.dtype()), otherwise);
      };
      // ref: inputs_embeds.masked_scatter(image_mask, image_embeds) (video_mask, video_embeds)
      x = at_images(*features_, x);
      // ref: Qwen3VLTextModel._deepstack_process — added after the first layers
      for (const auto& features : deepstack_)
        forward.after_layer.push_back(at_images(features, mx::zeros_like(x)));
    }
    forward.positions.tables = nn::mrope_tables(
        mx::array(positions.data(), {3, 1, L}, mx::int32), m_.inv_freq(),
        {.sections = m_.config().mrope_section, .interleaved = m_.config().interleaved});
    return text.forward_embeddings(x, cache, forward);
  }

  generate::Cache make_cache(const generate::CacheOptions& options) const override {
    return m_.make_cache(options);
  }
  const generate::ModelInfo& info() const override { return m_.info(); }

 private:
  const Impl& m_;
  std::vector<int> ids_;
  HostIndex index_;
  std::optional<mx::array> features_;  ///< [image + video tokens, hidden]: images', videos'
  std::vector<mx::array> deepstack_;   ///< Qwen3-VL: [image tokens, hidden] each
  std::vector<int> rows_;              ///< per prompt token: its row of features_, -1 for text
};

std::unique_ptr<generate::LanguageModel> Impl::bind(const Prompt& prompt) const {
  const std::vector<Grid> none;
  const std::vector<float> no_seconds;
  const auto& images = prompt.images ? prompt.images->grids : none;
  const auto& videos = prompt.videos ? prompt.videos->grids : none;
  auto index = host_rope_index(
      prompt.ids, {.images = images,
                   .videos = videos,
                   .second_per_grid = prompt.videos ? prompt.videos->second_per_grid : no_seconds});
  auto encode = [&](const mx::array& pixels, const std::vector<Grid>& grids) {
    auto out = (*vision_)({.pixel_values = pixels, .grids = grids});
    mx::eval(out.features);
    mx::eval(out.deepstack);
    return out;
  };
  std::optional<VisionOutput> image_out, video_out;
  if (prompt.images) image_out = encode(prompt.images->pixel_values, images);
  if (prompt.videos) video_out = encode(prompt.videos->pixel_values, videos);
  return std::make_unique<Bound>(*this, prompt.ids, std::move(image_out), std::move(video_out),
                                 std::move(index));
}

/// The key layouts onto transformers 4.x's (model.*, lm_head.*, visual.*): 5.x's
/// model.language_model.* / model.visual.*, and mlx-vlm's language_model.* / vision_tower.*.
std::string canonical_key(const std::string& key) {
  static const std::pair<const char*, const char*> renames[] = {
      {"model.language_model.", "model."},
      {"model.visual.", "visual."},
      {"language_model.model.", "model."},
      {"language_model.lm_head.", "lm_head."},
      {"vision_tower.", "visual."}};
  for (const auto& [from, to] : renames)
    if (key.starts_with(from)) return to + key.substr(std::string(from).size());
  return key;
}

/// A tower as a VisionEncoder.
template <typename Tower>
class Encoder final : public VisionEncoder {
 public:
  explicit Encoder(Tower tower) : tower_(std::move(tower)) {}
  VisionOutput operator()(const Images& images) const override { return tower_(images); }

 private:
  Tower tower_;
};

/// Binds the tower `config` names to `vision` (keys visual.*), strictly.
std::unique_ptr<VisionEncoder> bind_tower(const Config& config, io::TensorMap vision,
                                          const std::string& source) {
  io::WeightMap w(std::move(vision), source);
  std::unique_ptr<VisionEncoder> encoder;
  if (config.model_type == "qwen3_vl")
    encoder = std::make_unique<Encoder<Qwen3VisionTower>>(
        Qwen3VisionTower::load(w, "visual.", config.vision3));
  else
    encoder =
        std::make_unique<Encoder<VisionTower>>(VisionTower::load(w, "visual.", config.vision));
  w.finish();
  return encoder;
}

/// mlx-vlm stores the patch embedding channels-last, [D, T, P, P, C] (MLX's Conv3d layout):
/// back to PyTorch's [D, C, T, P, P] (ref: mlx-vlm qwen2_5_vl/vision.py sanitize, inverted).
void patch_embed_channels_first(io::TensorMap& vision, int in_channels, int temporal_patch_size) {
  auto it = vision.find("visual.patch_embed.proj.weight");
  if (it == vision.end() || it->second.ndim() != 5) return;
  const auto& w = it->second;
  if (w.shape(4) == in_channels && w.shape(1) == temporal_patch_size && w.shape(1) != in_channels)
    it->second = mx::transpose(w, {0, 4, 1, 2, 3});
}

/// The checkpoint's tensors in the canonical layout, split into text and vision (visual.*).
std::pair<io::TensorMap, io::TensorMap> read_checkpoint(const std::filesystem::path& dir,
                                                        const Config& config,
                                                        const generate::LoadModelOptions& options) {
  io::TensorMap text, vision;
  for (auto& [key, value] : io::load_checkpoint(dir, {.dtype = options.dtype})) {
    auto name = canonical_key(key);
    (name.starts_with("visual.") ? vision : text).insert_or_assign(std::move(name), value);
  }
  const bool v3 = config.model_type == "qwen3_vl";
  patch_embed_channels_first(
      vision, v3 ? config.vision3.in_channels : config.vision.in_channels,
      v3 ? config.vision3.temporal_patch_size : config.vision.temporal_patch_size);
  return {std::move(text), std::move(vision)};
}

std::unique_ptr<Model> build(const std::filesystem::path& dir, const io::ConfigReader& reader,
                             const generate::LoadModelOptions& options) {
  auto config = Config::parse(reader);
  const io::ConfigReader text_reader(config.text, reader.where() + ": text_config");
  const auto attention = io::AttentionConfig::parse(text_reader);
  int pairs = 0;
  for (int s : config.mrope_section) pairs += s;
  if (pairs * 2 != attention.head_dim)
    fail<ConfigError>("{}: mrope_section sums to {} rotary pairs, head_dim {} has {}",
                      reader.where(), pairs, attention.head_dim, attention.head_dim / 2);
  if (config.vision_out_hidden_size != attention.hidden_size)
    fail<ConfigError>("{}: {} differs from the text hidden_size {}",
                      reader.child("vision_config").field("out_hidden_size"),
                      config.vision_out_hidden_size, attention.hidden_size);
  auto [text, vision] = read_checkpoint(dir, config, options);
  auto tower = bind_tower(config, std::move(vision), dir.string());
  auto lm = qwen3::load_from_tensors(text_reader, dir, std::move(text), dir.string());
  auto info = lm->info();
  info.model_type = reader.required<std::string>("model_type");
  auto inv_freq = nn::RoPE(io::RopeConfig::parse(text_reader), attention.head_dim).inv_freq(0);
  return std::make_unique<Impl>(std::move(config), std::move(tower), std::move(lm), std::move(info),
                                std::move(inv_freq));
}

}  // namespace

std::unique_ptr<VisionEncoder> load_vision(const std::filesystem::path& dir,
                                           const generate::LoadModelOptions& options) {
  const auto config = Config::parse(io::ConfigReader::load(dir / "config.json"));
  return bind_tower(config, read_checkpoint(dir, config, options).second, dir.string());
}

void register_family() {
  for (const char* type : {"qwen2_5_vl", "qwen3_vl"})
    generate::register_model(
        type, [](const std::filesystem::path& dir, const io::ConfigReader& config,
                 const generate::LoadModelOptions& options) {
          return std::unique_ptr<generate::LanguageModel>(build(dir, config, options));
        });
}

std::unique_ptr<Model> load(const std::filesystem::path& dir,
                            const generate::LoadModelOptions& options) {
  return build(dir, io::ConfigReader::load(dir / "config.json"), options);
}

}  // namespace ominix::qwen_vl
