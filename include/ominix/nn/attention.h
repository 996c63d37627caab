// Attention masks and scaled dot-product attention over mlx::core::fast (GQA without repeating
// K/V).
#pragma once

#include <optional>
#include <variant>

#include <mlx/array.h>

namespace ominix::nn {

namespace mx = mlx::core;

/// Boolean mask [L, offset+L] (true = may attend): query i sits at position offset+i and sees
/// keys at positions <= its own, and, with a window w, only the last w of them (kv > q - w).
mx::array causal_mask(int L, int offset = 0, std::optional<int> window = std::nullopt);

/// Boolean mask [B, 1, 1, S] from per-sequence lengths [B] (int): true for real tokens.
/// Left padding (prompts aligned to the right) puts the pad in front.
mx::array padding_mask(const mx::array& lengths, int S, bool left_padded = false);

/// Logical and of two broadcastable boolean masks.
mx::array combine_masks(const mx::array& a, const mx::array& b);

/// What the attention may see: everything, causal (aligned to the end of the keys, so queries are
/// the last L positions), or an explicit boolean / additive mask broadcastable to [B, H, L, S].
struct NoMask {};
struct CausalMask {};
using AttentionMask = std::variant<NoMask, CausalMask, mx::array>;

/// softmax(q k^T * scale + mask) v. q [B, Hq, L, D], k/v [B, Hkv, S, D] with Hkv dividing Hq.
mx::array sdpa(const mx::array& q, const mx::array& k, const mx::array& v, float scale,
               const AttentionMask& mask = NoMask{});

}  // namespace ominix::nn
