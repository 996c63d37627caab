// Key/value caches for autoregressive decoding: growing (step-preallocated), rotating (sliding
// window with `keep` initial tokens) and affine-quantized, behind one per-layer interface, plus a
// whole-model container. Semantics follow mlx-lm's mlx_lm/models/cache.py (0.32.2).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <mlx/array.h>

#include "ominix/nn/attention.h"

namespace ominix::generate {

namespace mx = mlx::core;

/// How make_mask builds its mask.
struct MaskOptions {
  std::optional<int> window_size;  ///< the layer's sliding window (nullopt: attends to everything)
  bool return_array = false;       ///< an explicit boolean array instead of nn::CausalMask
};

/// Bits (2, 4 or 8) and group size of an affine-quantized KV cache.
struct KVQuantization {
  int bits = 8;
  int group_size = 64;
};

/// A tensor [..., D] quantized along its last axis by mx::quantize (affine mode).
struct QuantizedTensor {
  mx::array data;    ///< uint32 [..., D * bits / 32]
  mx::array scales;  ///< [..., D / group_size], the source dtype
  mx::array biases;  ///< [..., D / group_size], the source dtype
  int group_size = 64;
  int bits = 8;

  /// Quantizes x [..., D] (D a multiple of group_size).
  static QuantizedTensor quantize(const mx::array& x, const KVQuantization& q);
  /// Back to floats [..., D] in the dtype of the scales.
  mx::array dequantize() const;
};

/// Attention of float queries over a quantized cache, as mlx-lm's
/// quantized_scaled_dot_product_attention: two mx::quantized_matmul calls and a precise softmax.
/// queries [B, Hq, L, D]; keys/values quantized [B, Hkv, S, D] with Hkv dividing Hq (GQA without
/// repeating the cache); mask as for nn::sdpa (causal aligned to the end of the keys). Returns
/// [B, Hq, L, Dv] in the dtype of the queries.
mx::array quantized_sdpa(const mx::array& queries, const QuantizedTensor& keys,
                         const QuantizedTensor& values, float scale,
                         const nn::AttentionMask& mask = nn::NoMask{});

/// One attention layer's cache. Keys are [B, H, L, Dk] and values [B, H, L, Dv].
class LayerCache {
 public:
  virtual ~LayerCache() = default;

  /// Appends L new positions and returns what the layer attends to: keys [B, H, S, Dk] and values
  /// [B, H, S, Dv] in the input dtype (a quantized cache returns them dequantized).
  virtual std::pair<mx::array, mx::array> update_and_fetch(const mx::array& keys,
                                                           const mx::array& values) = 0;
  /// update_and_fetch, then attention of queries [B, Hq, L, Dk] -> [B, Hq, L, Dv]. A quantized
  /// cache attends over its quantized tensors without dequantizing them.
  virtual mx::array update_and_attend(const mx::array& queries, const mx::array& keys,
                                      const mx::array& values, float scale,
                                      const nn::AttentionMask& mask);

  /// Positions seen so far: the position of the next token.
  virtual int offset() const = 0;
  /// Positions held (a rotating cache holds at most its window).
  virtual int size() const = 0;
  /// True before the first update.
  virtual bool empty() const = 0;
  /// Whether trim can drop positions now.
  virtual bool is_trimmable() const = 0;
  /// Drops the last min(n, offset) positions; returns how many were dropped.
  virtual int trim(int n) = 0;
  /// The mask for the next update of n positions, taken before that update (as mlx-lm's models
  /// do): causal for several positions, none for one, a window mask where a window cuts in.
  virtual nn::AttentionMask make_mask(int n, const MaskOptions& options = {}) const = 0;
  /// The buffers holding the cache (whole capacity), to pass to mx::eval / mx::async_eval.
  virtual std::vector<mx::array> state() const = 0;
  /// Bytes held by the cache buffers.
  virtual std::size_t nbytes() const = 0;
  /// An independent copy (arrays are immutable, so this is cheap): for prompt-cache reuse.
  virtual std::unique_ptr<LayerCache> clone() const = 0;

 protected:
  LayerCache() = default;
  LayerCache(const LayerCache&) = default;
  LayerCache& operator=(const LayerCache&) = default;
};

class QuantizedKVCache;

/// Growing cache: buffers preallocated in steps of `step` positions, filled with slice_update.
class KVCache : public LayerCache {
 public:
  explicit KVCache(int step = 256);

  std::pair<mx::array, mx::array> update_and_fetch(const mx::array& keys,
                                                   const mx::array& values) override;
  int offset() const override { return offset_; }
  int size() const override { return offset_; }
  bool empty() const override { return !keys_.has_value(); }
  bool is_trimmable() const override { return true; }
  int trim(int n) override;
  nn::AttentionMask make_mask(int n, const MaskOptions& options = {}) const override;
  std::vector<mx::array> state() const override;
  std::size_t nbytes() const override;
  std::unique_ptr<LayerCache> clone() const override;

  /// The same positions in a quantized cache (mlx-lm's to_quantized).
  std::unique_ptr<QuantizedKVCache> to_quantized(const KVQuantization& q) const;

 private:
  std::pair<mx::array, mx::array> keys_and_values() const;

  int step_;
  int offset_ = 0;
  std::optional<mx::array> keys_, values_;  ///< [B, H, capacity, D]
};

/// Sliding-window cache of at most `max_size` positions whose first `keep` positions are never
/// evicted. Single-token updates write in place and rotate; multi-token updates (prefill) put the
/// buffer in temporal order and concatenate, keeping max_size - 1 old positions so that every new
/// token sees a full window.
class RotatingKVCache : public LayerCache {
 public:
  RotatingKVCache(int max_size, int keep = 0, int step = 256);

  std::pair<mx::array, mx::array> update_and_fetch(const mx::array& keys,
                                                   const mx::array& values) override;
  int offset() const override { return offset_; }
  int size() const override { return offset_ < max_size_ ? offset_ : max_size_; }
  bool empty() const override { return !keys_.has_value(); }
  /// Only before the window is full (mlx-lm's rule).
  bool is_trimmable() const override { return offset_ < max_size_; }
  int trim(int n) override;
  nn::AttentionMask make_mask(int n, const MaskOptions& options = {}) const override;
  std::vector<mx::array> state() const override;
  std::size_t nbytes() const override;
  std::unique_ptr<LayerCache> clone() const override;

  int max_size() const { return max_size_; }
  int keep() const { return keep_; }

 private:
  std::pair<mx::array, mx::array> update_in_place(const mx::array& keys, const mx::array& values);
  std::pair<mx::array, mx::array> update_concat(const mx::array& keys, const mx::array& values);
  std::pair<mx::array, mx::array> keys_and_values() const;
  mx::array trim_buffer(int trim_size, const mx::array& v,
                        const std::optional<mx::array>& append = std::nullopt) const;
  mx::array temporal_order(const mx::array& v) const;

  int max_size_, keep_, step_;
  int offset_ = 0;
  int idx_ = 0;  ///< where the next single-token update is written
  std::optional<mx::array> keys_, values_;
};

/// Growing cache holding affine-quantized keys and values (mx::quantize along the head dim).
class QuantizedKVCache : public LayerCache {
 public:
  explicit QuantizedKVCache(const KVQuantization& q = {}, int step = 256);

  /// Appends keys [B, H, L, Dk] / values [B, H, L, Dv] (Dk, Dv multiples of group_size) and
  /// returns the quantized cache: [B, H, S, ...] per part.
  std::pair<QuantizedTensor, QuantizedTensor> update_and_fetch_quantized(const mx::array& keys,
                                                                         const mx::array& values);
  /// As update_and_fetch_quantized, dequantized (for generic code; attention should use
  /// update_and_attend, which stays quantized).
  std::pair<mx::array, mx::array> update_and_fetch(const mx::array& keys,
                                                   const mx::array& values) override;
  mx::array update_and_attend(const mx::array& queries, const mx::array& keys,
                              const mx::array& values, float scale,
                              const nn::AttentionMask& mask) override;
  int offset() const override { return offset_; }
  int size() const override { return offset_; }
  bool empty() const override { return !keys_.has_value(); }
  bool is_trimmable() const override { return true; }
  int trim(int n) override;
  nn::AttentionMask make_mask(int n, const MaskOptions& options = {}) const override;
  std::vector<mx::array> state() const override;
  std::size_t nbytes() const override;
  std::unique_ptr<LayerCache> clone() const override;

  const KVQuantization& quantization() const { return q_; }

 private:
  friend class KVCache;
  std::pair<QuantizedTensor, QuantizedTensor> keys_and_values() const;

  KVQuantization q_;
  int step_;
  int offset_ = 0;
  std::optional<QuantizedTensor> keys_, values_;  ///< [B, H, capacity, ...]
};

/// mlx-lm's create_attention_mask for caches with a plain offset: a causal mask of n queries at
/// positions offset.. (an array when a window is given or asked for), none for a single query.
nn::AttentionMask make_attention_mask(int n, int offset, const MaskOptions& options = {});

/// What Cache::make builds.
struct CacheOptions {
  std::optional<int> max_kv_size;  ///< rotating caches of this many positions (nullopt: growing)
  int keep = 4;                    ///< with max_kv_size: initial positions never evicted
  std::optional<int> kv_bits;      ///< quantized caches of 4 or 8 bits (not with max_kv_size)
  int kv_group_size = 64;
};

/// A whole model's cache: one LayerCache per attention layer.
class Cache {
 public:
  Cache() = default;
  explicit Cache(std::vector<std::unique_ptr<LayerCache>> layers);
  Cache(Cache&&) = default;
  Cache& operator=(Cache&&) = default;

  /// num_layers caches of the kind the options ask for (InvalidArgument on bad options,
  /// UnsupportedError for a quantized rotating cache).
  static Cache make(int num_layers, const CacheOptions& options = {});

  LayerCache& operator[](std::size_t layer) { return *layers_.at(layer); }
  const LayerCache& operator[](std::size_t layer) const { return *layers_.at(layer); }
  std::size_t num_layers() const { return layers_.size(); }

  /// The first layer's offset (0 without layers).
  int offset() const;
  /// The first layer's mask for the next n positions.
  nn::AttentionMask make_mask(int n, const MaskOptions& options = {}) const;
  /// True when every layer can be trimmed.
  bool is_trimmable() const;
  /// Drops the last n positions of every layer if all are trimmable; returns how many were
  /// dropped (0 when not trimmable).
  int trim(int n);
  /// Replaces every growing KVCache layer whose offset has reached `start` by its quantized copy
  /// (mlx-lm's maybe_quantize_kv_cache with quantized_kv_start).
  void quantize(const KVQuantization& q, int start = 0);
  /// Every layer's arrays, to evaluate after a prefill chunk or decode step.
  std::vector<mx::array> state() const;
  std::size_t nbytes() const;
  /// An independent copy of every layer.
  Cache clone() const;

 private:
  std::vector<std::unique_ptr<LayerCache>> layers_;
};

}  // namespace ominix::generate
