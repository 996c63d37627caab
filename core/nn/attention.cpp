#include "ominix/nn/attention.h"

#include <mlx/fast.h>
#include <mlx/ops.h>

#include "ominix/base/error.h"

namespace ominix::nn {

mx::array causal_mask(int L, int offset, std::optional<int> window) {
  auto q = mx::expand_dims(mx::arange(offset, offset + L, mx::int32), 1);  // [L, 1]
  auto k = mx::expand_dims(mx::arange(0, offset + L, mx::int32), 0);       // [1, S]
  auto mask = mx::greater_equal(q, k);
  if (window) mask = mx::logical_and(mask, mx::greater(k, mx::subtract(q, mx::array(*window))));
  return mask;
}

mx::array padding_mask(const mx::array& lengths, int S, bool left_padded) {
  if (lengths.ndim() != 1) fail<InvalidArgument>("padding_mask: lengths must be 1-D, got {} dims", lengths.ndim());
  auto pos = mx::expand_dims(mx::arange(0, S, mx::int32), 0);  // [1, S]
  auto len = mx::expand_dims(mx::astype(lengths, mx::int32), 1);  // [B, 1]
  auto mask = left_padded ? mx::greater_equal(pos, mx::subtract(mx::array(S), len)) : mx::less(pos, len);
  return mx::expand_dims(mask, {1, 2});  // [B, 1, 1, S]
}

mx::array combine_masks(const mx::array& a, const mx::array& b) { return mx::logical_and(a, b); }

mx::array sdpa(const mx::array& q, const mx::array& k, const mx::array& v, float scale,
               const AttentionMask& mask) {
  if (q.ndim() != 4 || k.ndim() != 4 || v.ndim() != 4)
    fail<InvalidArgument>("sdpa: expected 4-D q, k, v ([B, H, L, D])");
  if (k.shape(1) == 0 || q.shape(1) % k.shape(1) != 0)
    fail<InvalidArgument>("sdpa: {} key/value heads do not divide {} query heads", k.shape(1), q.shape(1));
  if (std::holds_alternative<CausalMask>(mask))
    return mx::fast::scaled_dot_product_attention(q, k, v, scale, "causal");
  if (const auto* m = std::get_if<mx::array>(&mask))
    return mx::fast::scaled_dot_product_attention(q, k, v, scale, "array", *m);
  return mx::fast::scaled_dot_product_attention(q, k, v, scale);
}

}  // namespace ominix::nn
