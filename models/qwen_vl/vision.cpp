// Port of transformers 5.24.0 src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py
// (Qwen2_5_VisionTransformerPretrainedModel and its parts) and vision_utils.py
// (get_vision_position_ids, get_vision_window_index, get_vision_cu_seqlens).
#include "models/qwen_vl/vision.h"

#include <algorithm>
#include <cmath>

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

/// Block-diagonal attention (ref: cu_seqlens): a patch sees the patches of its own segment.
nn::AttentionMask segment_mask(const std::vector<int>& segment) {
  if (std::all_of(segment.begin(), segment.end(), [&](int s) { return s == segment[0]; }))
    return nn::NoMask{};
  auto s = int_array(segment);
  return mx::equal(mx::expand_dims(s, 1), mx::expand_dims(s, 0));  // [N,N]
}

/// ref: Qwen2_5_VLVisionRotaryEmbedding — inverse frequencies over head_dim / 2, the h positions
/// turning the first half of the pairs and the w positions the second: M-RoPE with two axes.
nn::RotaryTables vision_rotary(const VisionConfig& c, const Plan& p) {
  const int spatial = c.head_dim() / 2, quarter = spatial / 2;
  std::vector<float> inv(quarter);
  for (int i = 0; i < quarter; ++i)
    inv[i] = 1.0f / std::pow(static_cast<float>(c.rope_theta),
                             static_cast<float>(2 * i) / static_cast<float>(spatial));
  std::vector<float> both = inv;
  both.insert(both.end(), inv.begin(), inv.end());
  auto positions = mx::reshape(mx::stack({int_array(p.h_pos), int_array(p.w_pos)}),
                               {2, 1, static_cast<int>(p.h_pos.size())});      // [2,1,N]
  return nn::mrope_tables(positions, both, {.sections = {quarter, quarter}});  // [1,N,Dh]
}

mx::array attention(const VisionAttention& a, const mx::array& x, const nn::AttentionMask& mask,
                    const nn::RotaryTables& rotary) {
  const int N = x.shape(0), D = x.shape(1), H = a.num_heads;
  // [N,3D] -> [N,3,H,Dh] -> three [1,H,N,Dh]
  auto qkv = mx::reshape(a.qkv(x), {N, 3, H, D / H});
  auto heads = [&](int i) {
    auto t = mx::reshape(mx::slice(qkv, {0, i, 0, 0}, {N, i + 1, H, D / H}), {1, N, H, D / H});
    return mx::transpose(t, {0, 2, 1, 3});
  };
  auto q = nn::apply_rotary(heads(0), rotary), k = nn::apply_rotary(heads(1), rotary);
  auto o = nn::sdpa(q, k, heads(2), 1.0f / std::sqrt(float(D / H)), mask);  // [1,H,N,Dh]
  return a.proj(mx::reshape(mx::transpose(o, {0, 2, 1, 3}), {N, D}));       // -> [N,D]
}

}  // namespace

VisionTower VisionTower::load(io::WeightMap& w, const std::string& p, const VisionConfig& c) {
  const int D = c.hidden_size, unit = c.spatial_merge_size * c.spatial_merge_size;
  auto linear = [&](const std::string& name, nn::LinearShape shape) {
    return nn::LinearLayer::load(w, p + name, shape, std::nullopt);
  };
  auto embed = w.take(p + "patch_embed.proj.weight",
                      {D, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size});
  VisionTower t{.config = c,
                .patch_embed = mx::reshape(embed, {D, c.patch_dim()}),
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
  long patches = 0;
  for (const auto& g : images.grids) {
    if (g.t <= 0 || g.h <= 0 || g.w <= 0 || g.h % m || g.w % m)
      fail<InvalidArgument>(
          "qwen2_5_vl: image grid [{}, {}, {}] is not positive with h and w "
          "multiples of spatial_merge_size {}",
          g.t, g.h, g.w, m);
    patches += long(g.t) * g.h * g.w;
  }
  const auto& pv = images.pixel_values;
  if (images.grids.empty() || pv.ndim() != 2 || pv.shape(0) != patches ||
      pv.shape(1) != c.patch_dim())
    fail<InvalidArgument>(
        "qwen2_5_vl: pixel_values must be [{}, {}] for the {} image grid(s), got {} dims of {} "
        "rows",
        patches, c.patch_dim(), images.grids.size(), pv.ndim(), pv.ndim() ? pv.shape(0) : 0);
  const int N = static_cast<int>(patches);
  const auto p = plan(c, images.grids);
  // ref: Qwen2_5_VisionPatchEmbed — the Conv3d over whole patches is a matmul: [N,patch_dim] ->
  // [N,D]
  auto x = mx::matmul(mx::astype(pv, patch_embed.dtype()), mx::transpose(patch_embed));
  // ref: permute_input_for_window_attn — [N,D] -> [N/unit,unit,D] in window order -> [N,D]
  x = mx::reshape(mx::take(mx::reshape(x, {N / unit, unit, D}), int_array(p.window_index), 0),
                  {N, D});
  const auto rotary = vision_rotary(c, p);
  const auto full = segment_mask(p.frame), windowed = segment_mask(p.window);
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
  return {x, mx::take(merged, int_array(reverse), 0)};
}

}  // namespace ominix::qwen_vl
