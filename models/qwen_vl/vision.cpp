// Port of transformers 5.24.0 src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py
// (Qwen2_5_VisionTransformerPretrainedModel and its parts) and vision_utils.py
// (get_vision_position_ids, get_vision_window_index, get_vision_cu_seqlens).
#include "models/qwen_vl/vision.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <mlx/ops.h>

#include "ominix/base/error.h"
#include "ominix/nn/activations.h"
#include "ominix/nn/attention.h"
#include "ominix/nn/rope.h"

namespace ominix::qwen_vl {
namespace {

/// Where each patch goes: the window order of the merged units and, per patch in that order, its
/// (h, w) rotary position, its window and its frame (the attention segments).
struct Plan {
  std::vector<int> window_index;   ///< merged units in window order (ref: window_index)
  std::vector<int> h_pos, w_pos;   ///< per patch, window order
  std::vector<int> window, frame;  ///< per patch, window order: segment ids
};

// ref: vision_utils.py get_vision_position_ids, get_vision_window_index, get_vision_cu_seqlens.
// A window covers `ws` x `ws` merged units of one frame; windows run row-major over the frame,
// units row-major inside a window (the reference pads the grid to whole windows and drops the
// padding, which gives exactly this).
Plan plan(const VisionConfig& c, const std::vector<Grid>& grids) {
  const int m = c.spatial_merge_size, unit = m * m, ws = c.window_size / m / c.patch_size;
  std::vector<int> unit_h, unit_w;  // per merged unit, original order: its top-left patch
  std::vector<int> unit_window, unit_frame;
  Plan p;
  int base = 0, window = 0, frame = 0;
  for (const auto& g : grids) {
    const int lh = g.h / m, lw = g.w / m;
    for (int t = 0; t < g.t; ++t)
      for (int y = 0; y < lh; ++y)
        for (int x = 0; x < lw; ++x) unit_h.push_back(y * m), unit_w.push_back(x * m);
    unit_window.resize(unit_h.size()), unit_frame.resize(unit_h.size());
    for (int t = 0; t < g.t; ++t, ++frame)
      for (int wy = 0; wy < lh; wy += ws)
        for (int wx = 0; wx < lw; wx += ws, ++window)
          for (int y = wy; y < std::min(wy + ws, lh); ++y)
            for (int x = wx; x < std::min(wx + ws, lw); ++x) {
              const int u = base + (t * lh + y) * lw + x;
              p.window_index.push_back(u);
              unit_window[u] = window, unit_frame[u] = frame;
            }
    base += g.t * lh * lw;
  }
  // Patches of a unit are consecutive (block-major, ref: get_vision_position_ids).
  for (int u : p.window_index)
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < m; ++j) {
        p.h_pos.push_back(unit_h[u] + i), p.w_pos.push_back(unit_w[u] + j);
        p.window.push_back(unit_window[u]), p.frame.push_back(unit_frame[u]);
      }
  (void)unit;
  return p;
}

mx::array int_array(const std::vector<int>& v) {
  return mx::array(v.data(), {static_cast<int>(v.size())}, mx::int32);
}

/// Block-diagonal attention (ref: cu_seqlens): a patch sees the patches of its own segment
/// (window or frame). Segments are contiguous runs; attention runs over them as a batch, each
/// padded to the longest with the padding masked out of the keys, so a window layer costs
/// N x window instead of N x N.
struct Segments {
  int count = 1, longest = 0;
  std::optional<mx::array> gather;    ///< [count * longest]: the patch at each padded slot
  std::optional<mx::array> key_mask;  ///< [count, 1, 1, longest]: the slot holds a patch
  std::optional<mx::array> scatter;   ///< [N]: each patch's padded slot
};
Segments segments(const std::vector<int>& segment) {
  const int N = static_cast<int>(segment.size());
  std::vector<int> starts;
  for (int i = 0; i < N; ++i)
    if (i == 0 || segment[i] != segment[i - 1]) starts.push_back(i);
  Segments s{.count = static_cast<int>(starts.size()), .longest = N};
  if (s.count == 1) return s;
  starts.push_back(N);
  s.longest = 0;
  for (int j = 0; j < s.count; ++j) s.longest = std::max(s.longest, starts[j + 1] - starts[j]);
  std::vector<int> gather(std::size_t(s.count) * s.longest, 0), scatter(N);
  std::vector<uint8_t> valid(gather.size(), 0);
  for (int j = 0; j < s.count; ++j)
    for (int i = starts[j]; i < starts[j + 1]; ++i) {
      const int slot = j * s.longest + (i - starts[j]);
      gather[slot] = i, valid[slot] = 1, scatter[i] = slot;
    }
  s.gather = int_array(gather);
  s.key_mask = mx::reshape(mx::array(valid.begin(), {int(valid.size())}, mx::bool_),
                           {s.count, 1, 1, s.longest});
  s.scatter = int_array(scatter);
  return s;
}

/// ref: Qwen2_5_VLVisionRotaryEmbedding / Qwen3VLVisionRotaryEmbedding — inverse frequencies
/// over head_dim / 2, the h positions turning the first half of the pairs and the w positions the
/// second: M-RoPE with two axes.
nn::RotaryTables axial_rotary(int head_dim, double theta, const std::vector<int>& h_pos,
                              const std::vector<int>& w_pos) {
  const int spatial = head_dim / 2, quarter = spatial / 2;
  std::vector<float> inv(quarter);
  for (int i = 0; i < quarter; ++i)
    inv[i] = 1.0f / std::pow(static_cast<float>(theta),
                             static_cast<float>(2 * i) / static_cast<float>(spatial));
  std::vector<float> both = inv;
  both.insert(both.end(), inv.begin(), inv.end());
  auto positions = mx::reshape(mx::stack({int_array(h_pos), int_array(w_pos)}),
                               {2, 1, static_cast<int>(h_pos.size())});        // [2,1,N]
  return nn::mrope_tables(positions, both, {.sections = {quarter, quarter}});  // [1,N,Dh]
}

/// The number of patches of `images`, after checking pixel rows and grids agree.
int check_images(const Images& images, int merge, int patch_dim) {
  long patches = 0;
  for (const auto& g : images.grids) {
    if (g.t <= 0 || g.h <= 0 || g.w <= 0 || g.h % merge || g.w % merge)
      fail<InvalidArgument>(
          "qwen_vl: image grid [{}, {}, {}] is not positive with h and w "
          "multiples of spatial_merge_size {}",
          g.t, g.h, g.w, merge);
    patches += long(g.t) * g.h * g.w;
  }
  const auto& pv = images.pixel_values;
  if (images.grids.empty() || pv.ndim() != 2 || pv.shape(0) != patches || pv.shape(1) != patch_dim)
    fail<InvalidArgument>(
        "qwen_vl: pixel_values must be [{}, {}] for the {} image grid(s), got {} dims of {} rows",
        patches, patch_dim, images.grids.size(), pv.ndim(), pv.ndim() ? pv.shape(0) : 0);
  return static_cast<int>(patches);
}

mx::array attention(const VisionAttention& a, const mx::array& x, const Segments& segments,
                    const nn::RotaryTables& rotary) {
  const int N = x.shape(0), D = x.shape(1), H = a.num_heads, Dh = D / H;
  // [N,3D] -> [N,3,H,Dh] -> three [1,H,N,Dh]
  auto qkv = mx::reshape(a.qkv(x), {N, 3, H, Dh});
  auto heads = [&](int i) {
    auto t = mx::reshape(mx::slice(qkv, {0, i, 0, 0}, {N, i + 1, H, Dh}), {1, N, H, Dh});
    return mx::transpose(t, {0, 2, 1, 3});
  };
  auto q = nn::apply_rotary(heads(0), rotary), k = nn::apply_rotary(heads(1), rotary);
  auto v = heads(2);
  const float scale = 1.0f / std::sqrt(float(Dh));
  mx::array o = q;
  if (segments.count == 1) {
    o = nn::sdpa(q, k, v, scale);  // [1,H,N,Dh]
  } else {
    const int G = segments.count, S = segments.longest;
    // [1,H,N,Dh] -> padded slots [1,H,G*S,Dh] -> [G,H,S,Dh]
    auto batch = [&](const mx::array& t) {
      auto g = mx::reshape(mx::take(t, *segments.gather, 2), {H, G, S, Dh});
      return mx::transpose(g, {1, 0, 2, 3});
    };
    o = nn::sdpa(batch(q), batch(k), batch(v), scale, *segments.key_mask);  // [G,H,S,Dh]
    o = mx::reshape(mx::transpose(o, {1, 0, 2, 3}), {1, H, G * S, Dh});
    o = mx::take(o, *segments.scatter, 2);  // -> [1,H,N,Dh]
  }
  return a.proj(mx::reshape(mx::transpose(o, {0, 2, 1, 3}), {N, D}));  // -> [N,D]
}

/// The Conv3d over whole patches as a matmul: pixel_values [N, patch_dim] -> [N, D].
mx::array embed_patches(const mx::array& pixel_values, const mx::array& weight) {
  return mx::matmul(mx::astype(pixel_values, weight.dtype()), mx::transpose(weight));
}

mx::array flat_patch_weight(io::WeightMap& w, const std::string& key, int D, int C, int T, int P) {
  return mx::reshape(w.take(key, {D, C, T, P, P}), {D, C * T * P * P});
}

}  // namespace

VisionTower VisionTower::load(io::WeightMap& w, const std::string& p, const VisionConfig& c) {
  const int D = c.hidden_size, unit = c.spatial_merge_size * c.spatial_merge_size;
  auto linear = [&](const std::string& name, nn::LinearShape shape) {
    return nn::LinearLayer::load(w, p + name, shape, std::nullopt);
  };
  VisionTower t{.config = c,
                .patch_embed = flat_patch_weight(w, p + "patch_embed.proj.weight", D, c.in_channels,
                                                 c.temporal_patch_size, c.patch_size),
                .blocks = {},
                .merger = {nn::RMSNorm::load(w, p + "merger.ln_q", D, 1e-6f),
                           linear("merger.mlp.0", {D * unit, D * unit, true}),
                           linear("merger.mlp.2", {D * unit, c.out_hidden_size, true})}};
  for (int i = 0; i < c.depth; ++i) {
    const auto b = fmt::format("blocks.{}.", i);
    t.blocks.push_back(
        {nn::RMSNorm::load(w, p + b + "norm1", D, 1e-6f),
         nn::RMSNorm::load(w, p + b + "norm2", D, 1e-6f),
         {linear(b + "attn.qkv", {D, 3 * D, true}), linear(b + "attn.proj", {D, D, true}),
          c.num_heads},
         nn::GatedMLP::load(w, p + b + "mlp.", {D, c.intermediate_size, c.hidden_act, true},
                            std::nullopt)});
  }
  return t;
}

VisionOutput VisionTower::operator()(const Images& images) const {
  const auto& c = config;
  const int m = c.spatial_merge_size, unit = m * m, D = c.hidden_size;
  const int N = check_images(images, m, c.patch_dim());
  const auto p = plan(c, images.grids);
  auto x = embed_patches(images.pixel_values, patch_embed);  // [N,D]
  // ref: permute_input_for_window_attn — [N,D] -> [N/unit,unit,D] in window order -> [N,D]
  x = mx::reshape(mx::take(mx::reshape(x, {N / unit, unit, D}), int_array(p.window_index), 0),
                  {N, D});
  const auto rotary = axial_rotary(c.head_dim(), c.rope_theta, p.h_pos, p.w_pos);
  const auto full = segments(p.frame), windowed = segments(p.window);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto& b = blocks[i];
    const bool is_full = std::find(c.fullatt_block_indexes.begin(), c.fullatt_block_indexes.end(),
                                   int(i)) != c.fullatt_block_indexes.end();
    x = mx::add(x, attention(b.attn, b.norm1(x), is_full ? full : windowed, rotary));
    x = mx::add(x, b.mlp(b.norm2(x)));
  }
  // ref: Qwen2_5_VLPatchMerger — [N,D] -> [N/unit, unit*D] -> [N/unit, out_hidden_size]
  auto merged = mx::reshape(merger.ln_q(x), {N / unit, unit * D});
  merged = merger.mlp2(nn::gelu(merger.mlp0(merged)));
  // Back to image order: the inverse of the window permutation (ref: argsort(window_index)).
  std::vector<int> reverse(p.window_index.size());
  for (std::size_t i = 0; i < reverse.size(); ++i) reverse[p.window_index[i]] = int(i);
  return {x, mx::take(merged, int_array(reverse), 0), {}};
}

// ---- Qwen3-VL ----

namespace {

/// ref: vision_utils.py get_vision_position_ids (block-major over the merge units, frames
/// repeated) with each patch's frame, for the Qwen3-VL tower (no windows).
struct BlockOrder {
  std::vector<int> h_pos, w_pos, frame;
};
BlockOrder block_order(const std::vector<Grid>& grids, int m) {
  BlockOrder o;
  int frame = 0;
  for (const auto& g : grids)
    for (int t = 0; t < g.t; ++t, ++frame)
      for (int by = 0; by < g.h / m; ++by)
        for (int bx = 0; bx < g.w / m; ++bx)
          for (int i = 0; i < m; ++i)
            for (int j = 0; j < m; ++j) {
              o.h_pos.push_back(by * m + i), o.w_pos.push_back(bx * m + j);
              o.frame.push_back(frame);
            }
  return o;
}

/// ref: vision_utils.py get_vision_interpolation_indices_and_weights (bilinear, align_corners):
/// each patch's 4 taps into the side x side learned grid and their weights, in block order.
std::pair<std::vector<int>, std::vector<float>> interpolation(const std::vector<Grid>& grids,
                                                              const BlockOrder& o, int side) {
  std::vector<int> index;
  std::vector<float> weight;
  std::size_t k = 0;
  auto taps = [&](int pos, int size, int tap[2], float w[2]) {
    // ref: _interpolation_axis_taps_weights — src = index * (side - 1) / max(size - 1, 1)
    const float src = static_cast<float>(pos) * static_cast<float>(side - 1) /
                      static_cast<float>(std::max(size - 1, 1));
    const float floor = std::floor(src);
    for (int d = 0; d < 2; ++d) {
      tap[d] = std::clamp(static_cast<int>(floor) + d, 0, side - 1);
      w[d] = std::max(1.0f - std::abs(src - floor - static_cast<float>(d)), 0.0f);
    }
  };
  for (const auto& g : grids)
    for (int n = 0; n < g.t * g.h * g.w; ++n, ++k) {
      int ht[2], wt[2];
      float hw[2], ww[2];
      taps(o.h_pos[k], g.h, ht, hw);
      taps(o.w_pos[k], g.w, wt, ww);
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
          index.push_back(ht[a] * side + wt[b]), weight.push_back(hw[a] * ww[b]);
    }
  return {index, weight};
}

mx::array merge(const LayerNormMerger& m, const mx::array& x, int unit) {
  const int rows = x.shape(0) / unit, width = x.shape(1) * unit;
  auto h = m.postshuffle ? m.norm(mx::reshape(x, {rows, width}))  // [N/unit, unit*D]
                         : mx::reshape(m.norm(x), {rows, width});
  return m.linear_fc2(nn::gelu(m.linear_fc1(h)));  // -> [N/unit, out_hidden_size]
}

LayerNormMerger load_merger(io::WeightMap& w, const std::string& p, const Qwen3VisionConfig& c,
                            bool postshuffle) {
  const int unit = c.spatial_merge_size * c.spatial_merge_size, D = c.hidden_size * unit;
  return {nn::LayerNorm::load(w, p + "norm", postshuffle ? D : c.hidden_size, 1e-6f),
          nn::LinearLayer::load(w, p + "linear_fc1", {D, D, true}, std::nullopt),
          nn::LinearLayer::load(w, p + "linear_fc2", {D, c.out_hidden_size, true}, std::nullopt),
          postshuffle};
}

}  // namespace

Qwen3VisionTower Qwen3VisionTower::load(io::WeightMap& w, const std::string& p,
                                        const Qwen3VisionConfig& c) {
  const int D = c.hidden_size;
  auto linear = [&](const std::string& name, nn::LinearShape shape) {
    return nn::LinearLayer::load(w, p + name, shape, std::nullopt);
  };
  Qwen3VisionTower t{
      .config = c,
      .patch_embed = flat_patch_weight(w, p + "patch_embed.proj.weight", D, c.in_channels,
                                       c.temporal_patch_size, c.patch_size),
      .patch_embed_bias = w.take(p + "patch_embed.proj.bias", {D}),
      .pos_embed = w.take(p + "pos_embed.weight", {c.num_position_embeddings, D}),
      .blocks = {},
      .merger = load_merger(w, p + "merger.", c, false),
      .deepstack_merger_list = {}};
  for (int i = 0; i < c.depth; ++i) {
    const auto b = fmt::format("blocks.{}.", i);
    t.blocks.push_back({nn::LayerNorm::load(w, p + b + "norm1", D, 1e-6f),
                        nn::LayerNorm::load(w, p + b + "norm2", D, 1e-6f),
                        {linear(b + "attn.qkv", {D, 3 * D, true}),
                         linear(b + "attn.proj", {D, D, true}), c.num_heads},
                        linear(b + "mlp.linear_fc1", {D, c.intermediate_size, true}),
                        linear(b + "mlp.linear_fc2", {c.intermediate_size, D, true})});
  }
  for (std::size_t i = 0; i < c.deepstack_visual_indexes.size(); ++i)
    t.deepstack_merger_list.push_back(
        load_merger(w, p + fmt::format("deepstack_merger_list.{}.", i), c, true));
  return t;
}

VisionOutput Qwen3VisionTower::operator()(const Images& images) const {
  const auto& c = config;
  const int m = c.spatial_merge_size, unit = m * m, D = c.hidden_size;
  const int N = check_images(images, m, c.patch_dim());
  const auto order = block_order(images.grids, m);
  auto x = mx::add(embed_patches(images.pixel_values, patch_embed), patch_embed_bias);  // [N,D]
  // The learned positions resampled to each grid: 4 weighted taps per patch.
  const auto [index, weight] = interpolation(images.grids, order, c.grid_side());
  auto taps = mx::reshape(mx::take(pos_embed, int_array(index), 0), {N, 4, D});  // [N,4,D]
  auto w = mx::reshape(mx::array(weight.data(), {N * 4}, mx::float32), {N, 4, 1});
  x = mx::add(x, mx::astype(mx::sum(mx::multiply(taps, w), 1), x.dtype()));
  const auto rotary = axial_rotary(c.head_dim(), c.rope_theta, order.h_pos, order.w_pos);
  const auto mask = segments(order.frame);
  std::vector<mx::array> deepstack;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto& b = blocks[i];
    x = mx::add(x, attention(b.attn, b.norm1(x), mask, rotary));
    x = mx::add(x, b.linear_fc2(nn::activate(c.hidden_act, b.linear_fc1(b.norm2(x)))));
    const auto& ds = c.deepstack_visual_indexes;
    if (auto it = std::find(ds.begin(), ds.end(), int(i)); it != ds.end())
      deepstack.push_back(merge(deepstack_merger_list[it - ds.begin()], x, unit));
  }
  return {x, merge(merger, x, unit), std::move(deepstack)};
}

}  // namespace ominix::qwen_vl
