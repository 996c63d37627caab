// The Qwen2.5-VL vision tower (internal to the family).
#pragma once

#include <string>
#include <vector>

#include "models/qwen_vl/config.h"
#include "ominix/io/weights.h"
#include "ominix/models/qwen_vl.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/mlp.h"
#include "ominix/nn/norm.h"

namespace ominix::qwen_vl {

/// ref: modeling_qwen2_5_vl.py Qwen2_5_VLVisionAttention.
struct VisionAttention {
  nn::LinearLayer qkv, proj;
  int num_heads = 0;
};

/// ref: modeling_qwen2_5_vl.py Qwen2_5_VLVisionBlock.
struct VisionBlock {
  nn::RMSNorm norm1, norm2;
  VisionAttention attn;
  nn::GatedMLP mlp;
};

/// ref: modeling_qwen2_5_vl.py Qwen2_5_VLPatchMerger.
struct PatchMerger {
  nn::RMSNorm ln_q;
  nn::LinearLayer mlp0, mlp2;  ///< mlp.0, mlp.2 (a GELU between)
};

/// ref: modeling_qwen3_vl.py Qwen3VLVisionPatchMerger: (LayerNorm over one patch, or with
/// use_postshuffle_norm over the merged unit) -> linear_fc1 -> GELU -> linear_fc2.
struct LayerNormMerger {
  nn::LayerNorm norm;
  nn::LinearLayer linear_fc1, linear_fc2;
  bool postshuffle = false;
};

/// ref: modeling_qwen3_vl.py Qwen3VLVisionBlock (LayerNorm, GELU MLP without a gate).
struct Qwen3VisionBlock {
  nn::LayerNorm norm1, norm2;
  VisionAttention attn;
  nn::LinearLayer linear_fc1, linear_fc2;
};

/// ref: modeling_qwen3_vl.py Qwen3VLVisionModel.
struct Qwen3VisionTower {
  Qwen3VisionConfig config;
  mx::array patch_embed;       ///< [hidden_size, patch_dim]
  mx::array patch_embed_bias;  ///< [hidden_size]
  mx::array pos_embed;         ///< [num_position_embeddings, hidden_size]
  std::vector<Qwen3VisionBlock> blocks;
  LayerNormMerger merger;
  std::vector<LayerNormMerger> deepstack_merger_list;

  static Qwen3VisionTower load(io::WeightMap& w, const std::string& prefix,
                               const Qwen3VisionConfig& c);

  VisionOutput operator()(const Images& images) const;
};

/// ref: modeling_qwen2_5_vl.py Qwen2_5_VisionTransformerPretrainedModel.
struct VisionTower {
  VisionConfig config;
  mx::array patch_embed;  ///< Conv3d weight flattened: [hidden_size, patch_dim]
  std::vector<VisionBlock> blocks;
  PatchMerger merger;

  /// Binds `<prefix>patch_embed.proj.weight`, `<prefix>blocks.N.*`, `<prefix>merger.*`.
  static VisionTower load(io::WeightMap& w, const std::string& prefix, const VisionConfig& c);

  VisionOutput operator()(const Images& images) const;
};

}  // namespace ominix::qwen_vl
