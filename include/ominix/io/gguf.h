// GGUF files (llama.cpp's format, versions 2 and 3): a validating reader of the header, metadata
// and tensor table; typed metadata access; the tokenizer metadata as raw data; and tensor loading
// that keeps exactly representable quantizations (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K) packed
// in MLX's affine layout and dequantizes the rest (Q2_K, Q3_K, Q6_K, F16, BF16) to a float dtype.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <mlx/array.h>

#include "ominix/io/config.h"
#include "ominix/io/safetensors.h"

namespace ominix::io {

namespace mx = mlx::core;

// ---------------------------------------------------------------------------------------------
// Metadata

/// Metadata value types, numbered as in the file.
enum class GgufType : std::uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};
const char* to_string(GgufType t);

/// One metadata value. Integers are held widened (signed ones as int64, unsigned as uint64) and
/// floats as double; `type` (and `element_type` for arrays) keep the file's types. Arrays of
/// arrays hold their elements as GgufValues.
struct GgufValue {
  GgufType type = GgufType::uint8;
  GgufType element_type = GgufType::uint8;  ///< arrays only
  std::variant<std::int64_t, std::uint64_t, double, bool, std::string, std::vector<std::int64_t>,
               std::vector<std::uint64_t>, std::vector<double>, std::vector<bool>,
               std::vector<std::string>, std::vector<GgufValue>>
      data;

  bool is_array() const { return type == GgufType::array; }
  /// Number of elements of an array; 1 for a scalar.
  std::size_t size() const;
};

/// The key/value section of a GGUF file, with typed access whose errors (ConfigError) name the
/// file and the key, like ConfigReader. T is bool, int, std::int64_t, std::uint32_t,
/// std::uint64_t, float, double, std::string, or std::vector of int, std::int64_t, float, double,
/// std::string. Integers convert to any integer type they fit and to floats; floats never
/// convert to integers.
class GgufMetadata {
 public:
  GgufMetadata() = default;
  GgufMetadata(std::map<std::string, GgufValue> values, std::string where);

  bool has(const std::string& key) const { return values_.count(key) > 0; }
  const GgufValue* find(const std::string& key) const;
  template <typename T>
  T required(const std::string& key) const;  ///< ConfigError if missing, mistyped or out of range
  template <typename T>
  T get(const std::string& key, T fallback) const;  ///< fallback if missing
  template <typename T>
  std::optional<T> optional(const std::string& key) const;

  /// `general.architecture` ("gemma3", "llama"...), the prefix of the model's keys.
  std::string architecture() const { return required<std::string>("general.architecture"); }

  const std::map<std::string, GgufValue>& values() const { return values_; }
  const std::string& where() const { return where_; }
  /// "model.gguf: key" for error messages.
  std::string field(const std::string& key) const;

 private:
  std::map<std::string, GgufValue> values_;
  std::string where_;
};

/// The tokenizer stored in `tokenizer.ggml.*` and `tokenizer.chat_template`, as raw data (no
/// tokenizer logic). Absent keys leave vectors empty and optionals unset.
struct GgufTokenizerData {
  std::string model;  ///< tokenizer.ggml.model: "llama" (SentencePiece), "gpt2" (byte BPE), ...
  std::string pre;    ///< tokenizer.ggml.pre: pre-tokenizer name ("" if absent)
  std::vector<std::string> tokens;
  std::vector<float> scores;             ///< one per token, or empty
  std::vector<std::int32_t> token_type;  ///< one per token, or empty (1 normal, 2 unknown,
                                         ///< 3 control, 4 user defined, 5 unused, 6 byte)
  std::vector<std::string> merges;       ///< "left right" pairs, or empty
  std::optional<std::int64_t> bos_token_id, eos_token_id, eot_token_id, eom_token_id,
      unknown_token_id, separator_token_id, padding_token_id, mask_token_id;
  std::optional<bool> add_bos_token, add_eos_token, add_space_prefix;
  std::optional<std::string> chat_template;

  /// Reads the keys; FormatError if tokens are missing, scores or token_type do not have one
  /// entry per token, or a special token id is out of range. ConfigError on mistyped keys.
  static GgufTokenizerData parse(const GgufMetadata& metadata);

  /// The ids llama.cpp ends generation at: eos, eot and eom, those present, each once, in that
  /// order.
  std::vector<int> end_token_ids() const;
};

// ---------------------------------------------------------------------------------------------
// Tensor types and raw block codecs

/// ggml tensor types, numbered as in the file.
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};

/// Layout of a ggml type: `block_size` values are stored in `type_size` bytes.
struct GgmlTypeInfo {
  const char* name;
  int block_size;
  int type_size;
};
/// The layout of a type number; nullopt for numbers this reader does not know.
std::optional<GgmlTypeInfo> ggml_type_info(std::uint32_t type);
const char* to_string(GgmlType t);

/// True for the types load() can read (dense or dequantized): F32, F16, BF16, F64, I8..I64,
/// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
bool ggml_type_supported(GgmlType t);

/// The MLX affine spec a type repacks into exactly (group 32; 4, 5 or 8 bits), or nullopt.
std::optional<QuantSpec> ggml_affine_spec(GgmlType t);

/// Decodes whole blocks of a quantized or float type to float32, bit for bit as the `gguf`
/// Python package's gguf.quants.dequantize. `blocks.size()` must be a multiple of the type size
/// and `out.size()` the matching number of values (InvalidArgument otherwise; UnsupportedError
/// for types ggml_type_supported() rejects or integer types).
void dequantize_ggml(GgmlType type, std::span<const std::uint8_t> blocks, std::span<float> out);

// ---------------------------------------------------------------------------------------------
// Tensors

/// One entry of the tensor table. Offsets are relative to the data section.
struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<std::uint64_t> ne;  ///< ggml order: ne[0] is the fastest-varying axis
  mx::Shape shape;                ///< row-major: ne reversed ([rows, cols] for a matrix)
  std::uint64_t offset = 0;
  std::uint64_t nbytes = 0;
};

/// An MLX affine-quantized tensor: weight uint32 [..., cols*bits/32], scales and biases
/// [..., cols/group_size] of the load dtype. The fields of nn::QuantizedLinear.
struct QuantizedWeight {
  mx::array weight, scales, biases;
  QuantSpec spec;
  /// mx::dequantize of the parts: [..., cols] of the scales' dtype.
  mx::array dequantize() const;
};

/// A loaded tensor: `dense` (float dtype asked for, or the integer type of I8..I64 tensors) or
/// `quantized`, exactly one of them set. `shape` is the logical row-major shape.
struct GgufTensor {
  std::string name;
  GgmlType source_type = GgmlType::F32;
  mx::Shape shape;
  std::optional<mx::array> dense;
  std::optional<QuantizedWeight> quantized;

  /// The values as one dense array (dequantizing a quantized tensor).
  mx::array to_dense() const;
};

enum class GgufQuantPolicy {
  repack,      ///< exactly representable types stay packed (ggml_affine_spec); the rest: dense
  dequantize,  ///< every tensor is loaded dense
};

struct GgufLoadOptions {
  /// Float dtype of dense tensors and of the scales/biases of repacked ones: float32 (exact),
  /// float16 or bfloat16 (one rounding, as a cast of the exact values would do).
  mx::Dtype dtype = mx::float32;
  GgufQuantPolicy quant = GgufQuantPolicy::repack;
  /// With `repack`: types that cannot be repacked exactly (Q2_K, Q3_K, Q6_K: sub-blocks of 16)
  /// are dequantized and then re-quantized with mx::quantize at this spec (lossy). nullopt:
  /// they are loaded dense.
  std::optional<QuantSpec> requantize;
};

/// A checked GGUF file: header, metadata and tensor table are validated on open; tensor data is
/// read (memory-mapped) when a tensor is loaded. Cheap to copy (the mapping is shared).
class GgufFile {
 public:
  /// Maps and checks a file: IoError if it cannot be read, FormatError naming the file (and the
  /// key or tensor) on anything malformed (big-endian files included).
  static GgufFile open(const std::filesystem::path& path);
  /// Checks a file held in memory; `name` stands for the file in messages.
  static GgufFile from_bytes(std::vector<std::uint8_t> bytes, std::string name);

  const std::string& name() const { return name_; }
  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }
  std::uint64_t file_size() const { return bytes_.size(); }
  const GgufMetadata& metadata() const { return metadata_; }
  /// The tensor table in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find(const std::string& name) const;
  /// The raw bytes of a tensor of this file.
  std::span<const std::uint8_t> raw(const GgufTensorInfo& t) const;

  /// Loads one tensor (WeightError if absent; UnsupportedError for a type it cannot read).
  GgufTensor load(const std::string& name, const GgufLoadOptions& options = {}) const;
  GgufTensor load(const GgufTensorInfo& t, const GgufLoadOptions& options = {}) const;

 private:
  GgufFile() = default;
  void parse();

  std::shared_ptr<const void> owner_;  ///< the mapping or buffer behind bytes_
  std::span<const std::uint8_t> bytes_;
  std::string name_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  GgufMetadata metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;
};

/// A whole GGUF file in the mlx-lm checkpoint layout, for WeightMap and LinearLayer::load: a
/// dense tensor is `<name>`; a quantized `<m>.weight` becomes `<m>.weight` (uint32),
/// `<m>.scales` and `<m>.biases`, with `quantization.overrides["<m>"]` its spec.
struct GgufCheckpoint {
  TensorMap tensors;
  QuantizationConfig quantization;
  GgufMetadata metadata;
};

/// A family's per-layer names: each llama.cpp prefix ("attn_q.") with the transformers module it
/// stands for ("self_attn.q_proj."), as gguf-py tensor_mapping.py pairs them.
using GgufLayerNames = std::vector<std::pair<std::string, std::string>>;

/// llama.cpp's tensor name as transformers spells it: token_embd. -> model.embed_tokens.,
/// output_norm. -> model.norm., output. -> lm_head., and blk.N.<from>... -> model.layers.N.<to>...
/// for the first entry of `layer` whose `from` begins what follows "blk.N.". Any other name is
/// returned unchanged.
std::string rename_gguf_tensor(const std::string& name, const GgufLayerNames& layer);

/// Loads every tensor; `rename` (if given) maps GGUF names ("blk.0.attn_q.weight") to the
/// model's before keys are formed. A quantized tensor whose (renamed) name does not end in
/// ".weight" is loaded dense.
GgufCheckpoint load_gguf_checkpoint(
    const std::filesystem::path& path, const GgufLoadOptions& options = {},
    const std::function<std::string(const std::string&)>& rename = {});

}  // namespace ominix::io
