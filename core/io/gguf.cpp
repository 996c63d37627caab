// GGUF reading. ref: ggml/docs/gguf.md and ggml/src/gguf.cpp (llama.cpp), gguf-py/gguf/
// gguf_reader.py (gguf 0.19.0). Every count, length and offset is checked against the bytes that
// remain before it is used, so that a hostile file gets a FormatError, never a huge allocation.
#include "ominix/io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include <mlx/allocator.h>
#include <mlx/ops.h>
#include <mlx/transforms.h>

#include "gguf_quants.h"
#include "ominix/base/error.h"
#include "ominix/io/weights.h"

namespace ominix::io {

static_assert(std::endian::native == std::endian::little,
              "GGUF reading assumes a little-endian host");

namespace {

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr std::size_t kMaxDims = 4;           // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;             // arrays of arrays of ...

// --- Type tables --------------------------------------------------------------------------------

struct TypeRow {
  GgmlType type;
  GgmlTypeInfo info;
};
constexpr TypeRow kGgmlTypes[] = {
    {GgmlType::F32, {"F32", 1, 4}},
    {GgmlType::F16, {"F16", 1, 2}},
    {GgmlType::Q4_0, {"Q4_0", 32, 18}},
    {GgmlType::Q4_1, {"Q4_1", 32, 20}},
    {GgmlType::Q5_0, {"Q5_0", 32, 22}},
    {GgmlType::Q5_1, {"Q5_1", 32, 24}},
    {GgmlType::Q8_0, {"Q8_0", 32, 34}},
    {GgmlType::Q8_1, {"Q8_1", 32, 40}},
    {GgmlType::Q2_K, {"Q2_K", 256, 84}},
    {GgmlType::Q3_K, {"Q3_K", 256, 110}},
    {GgmlType::Q4_K, {"Q4_K", 256, 144}},
    {GgmlType::Q5_K, {"Q5_K", 256, 176}},
    {GgmlType::Q6_K, {"Q6_K", 256, 210}},
    {GgmlType::Q8_K, {"Q8_K", 256, 292}},
    {GgmlType::IQ2_XXS, {"IQ2_XXS", 256, 66}},
    {GgmlType::IQ2_XS, {"IQ2_XS", 256, 74}},
    {GgmlType::IQ3_XXS, {"IQ3_XXS", 256, 98}},
    {GgmlType::IQ1_S, {"IQ1_S", 256, 50}},
    {GgmlType::IQ4_NL, {"IQ4_NL", 32, 18}},
    {GgmlType::IQ3_S, {"IQ3_S", 256, 110}},
    {GgmlType::IQ2_S, {"IQ2_S", 256, 82}},
    {GgmlType::IQ4_XS, {"IQ4_XS", 256, 136}},
    {GgmlType::I8, {"I8", 1, 1}},
    {GgmlType::I16, {"I16", 1, 2}},
    {GgmlType::I32, {"I32", 1, 4}},
    {GgmlType::I64, {"I64", 1, 8}},
    {GgmlType::F64, {"F64", 1, 8}},
    {GgmlType::IQ1_M, {"IQ1_M", 256, 56}},
    {GgmlType::BF16, {"BF16", 1, 2}},
    {GgmlType::TQ1_0, {"TQ1_0", 256, 54}},
    {GgmlType::TQ2_0, {"TQ2_0", 256, 66}},
    {GgmlType::MXFP4, {"MXFP4", 32, 17}},
    {GgmlType::NVFP4, {"NVFP4", 64, 36}},
    {GgmlType::Q1_0, {"Q1_0", 128, 18}},
};

std::size_t min_value_size(GgufType t) {
  switch (t) {
    case GgufType::uint8:
    case GgufType::int8:
    case GgufType::boolean:
      return 1;
    case GgufType::uint16:
    case GgufType::int16:
      return 2;
    case GgufType::uint32:
    case GgufType::int32:
    case GgufType::float32:
      return 4;
    case GgufType::uint64:
    case GgufType::int64:
    case GgufType::float64:
    case GgufType::string:  // its length
      return 8;
    case GgufType::array:  // element type and count
      return 12;
  }
  return 1;
}

bool known_value_type(std::uint32_t t) {
  return t <= static_cast<std::uint32_t>(GgufType::float64);
}

// --- A bounds-checked cursor over the file ------------------------------------------------------

class Cursor {
 public:
  Cursor(std::span<const std::uint8_t> bytes, const std::string& file)
      : bytes_(bytes), file_(file) {}

  std::uint64_t pos() const { return pos_; }
  std::uint64_t left() const { return bytes_.size() - pos_; }

  /// FormatError unless n more bytes exist; `what` names the thing being read.
  void need(std::uint64_t n, const std::string& what) const {
    if (n > left()) truncated(n, what);
  }
  [[noreturn]] void truncated(std::uint64_t n, const std::string& what) const {
    fail<FormatError>("{}: truncated: {} needs {} bytes at offset {}, the file has {} left", file_,
                      what, n, pos_, left());
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const std::string& what) { return string_at(what, std::nullopt); }
  /// A string that is element `index` of an array (its name is formatted only on error).
  std::string string_at(const std::string& what, std::optional<std::uint64_t> index) {
    auto name = [&] { return index ? fmt::format("{}[{}]", what, *index) : what; };
    if (left() < 8) truncated(8, name());
    const auto n = read<std::uint64_t>(what);
    if (n > left()) truncated(n, name());
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::uint8_t> bytes_;
  const std::string& file_;
  std::uint64_t pos_ = 0;
};

// --- Metadata values ----------------------------------------------------------------------------

GgufValue read_value(Cursor& c, GgufType type, const std::string& what, int depth);

template <typename Stored, typename OnDisk>
std::vector<Stored> read_numbers(Cursor& c, std::uint64_t n, const std::string& what) {
  c.need(n * sizeof(OnDisk), what);  // n was checked against the bytes left, no overflow
  std::vector<Stored> out;
  out.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) out.push_back(static_cast<Stored>(c.read<OnDisk>(what)));
  return out;
}

GgufValue read_array(Cursor& c, const std::string& what, int depth) {
  const auto raw_type = c.read<std::uint32_t>(what + " (array element type)");
  if (!known_value_type(raw_type))
    fail<FormatError>("{}: unknown array element type {}", what, raw_type);
  const auto et = static_cast<GgufType>(raw_type);
  const auto n = c.read<std::uint64_t>(what + " (array length)");
  const std::size_t min = min_value_size(et);
  if (n > c.left() / min)
    fail<FormatError>(
        "{}: array of {} {} needs at least {} bytes per element, the file has {} left", what, n,
        to_string(et), min, c.left());
  GgufValue v{.type = GgufType::array, .element_type = et, .data = std::int64_t{0}};
  switch (et) {
    case GgufType::uint8:
      v.data = read_numbers<std::uint64_t, std::uint8_t>(c, n, what);
      break;
    case GgufType::int8:
      v.data = read_numbers<std::int64_t, std::int8_t>(c, n, what);
      break;
    case GgufType::uint16:
      v.data = read_numbers<std::uint64_t, std::uint16_t>(c, n, what);
      break;
    case GgufType::int16:
      v.data = read_numbers<std::int64_t, std::int16_t>(c, n, what);
      break;
    case GgufType::uint32:
      v.data = read_numbers<std::uint64_t, std::uint32_t>(c, n, what);
      break;
    case GgufType::int32:
      v.data = read_numbers<std::int64_t, std::int32_t>(c, n, what);
      break;
    case GgufType::uint64:
      v.data = read_numbers<std::uint64_t, std::uint64_t>(c, n, what);
      break;
    case GgufType::int64:
      v.data = read_numbers<std::int64_t, std::int64_t>(c, n, what);
      break;
    case GgufType::float32:
      v.data = read_numbers<double, float>(c, n, what);
      break;
    case GgufType::float64:
      v.data = read_numbers<double, double>(c, n, what);
      break;
    case GgufType::boolean: {
      std::vector<bool> b;
      b.reserve(n);
      for (std::uint64_t i = 0; i < n; ++i) {
        const auto x = c.read<std::uint8_t>(what);
        if (x > 1) fail<FormatError>("{}: boolean element {} has value {}", what, i, x);
        b.push_back(x != 0);
      }
      v.data = std::move(b);
      break;
    }
    case GgufType::string: {
      std::vector<std::string> s;
      s.reserve(n);
      for (std::uint64_t i = 0; i < n; ++i) s.push_back(c.string_at(what, i));
      v.data = std::move(s);
      break;
    }
    case GgufType::array: {
      if (depth + 1 >= kMaxArrayDepth)
        fail<FormatError>("{}: arrays nested deeper than {} levels", what, kMaxArrayDepth);
      std::vector<GgufValue> a;
      a.reserve(n);
      for (std::uint64_t i = 0; i < n; ++i)
        a.push_back(read_value(c, GgufType::array, fmt::format("{}[{}]", what, i), depth + 1));
      v.data = std::move(a);
      break;
    }
  }
  return v;
}

GgufValue read_value(Cursor& c, GgufType type, const std::string& what, int depth) {
  GgufValue v{.type = type, .element_type = type, .data = std::int64_t{0}};
  switch (type) {
    case GgufType::uint8:
      v.data = std::uint64_t{c.read<std::uint8_t>(what)};
      break;
    case GgufType::int8:
      v.data = std::int64_t{c.read<std::int8_t>(what)};
      break;
    case GgufType::uint16:
      v.data = std::uint64_t{c.read<std::uint16_t>(what)};
      break;
    case GgufType::int16:
      v.data = std::int64_t{c.read<std::int16_t>(what)};
      break;
    case GgufType::uint32:
      v.data = std::uint64_t{c.read<std::uint32_t>(what)};
      break;
    case GgufType::int32:
      v.data = std::int64_t{c.read<std::int32_t>(what)};
      break;
    case GgufType::uint64:
      v.data = c.read<std::uint64_t>(what);
      break;
    case GgufType::int64:
      v.data = c.read<std::int64_t>(what);
      break;
    case GgufType::float32:
      v.data = double{c.read<float>(what)};
      break;
    case GgufType::float64:
      v.data = c.read<double>(what);
      break;
    case GgufType::boolean: {
      const auto x = c.read<std::uint8_t>(what);
      if (x > 1) fail<FormatError>("{}: boolean has value {}", what, x);
      v.data = x != 0;
      break;
    }
    case GgufType::string:
      v.data = c.string(what);
      break;
    case GgufType::array:
      return read_array(c, what, depth);
  }
  return v;
}

std::string describe(const GgufValue& v) {
  if (v.is_array()) return fmt::format("an array of {} {}", v.size(), to_string(v.element_type));
  return fmt::format("a {}", to_string(v.type));
}

// --- Typed conversion for GgufMetadata ----------------------------------------------------------

template <typename T>
struct is_vector : std::false_type {};
template <typename E>
struct is_vector<std::vector<E>> : std::true_type {
  using element = E;
};

template <typename T>
const char* wanted_plural() {
  if constexpr (std::is_same_v<T, bool>)
    return "bools";
  else if constexpr (std::is_integral_v<T>)
    return "integers";
  else if constexpr (std::is_floating_point_v<T>)
    return "numbers";
  else
    return "strings";
}

template <typename T>
const char* wanted() {
  if constexpr (std::is_same_v<T, bool>)
    return "a bool";
  else if constexpr (std::is_integral_v<T>)
    return "an integer";
  else if constexpr (std::is_floating_point_v<T>)
    return "a number";
  else if constexpr (std::is_same_v<T, std::string>)
    return "a string";
  else
    return "an array";
}

/// One stored scalar as T; nullopt if of the wrong kind; ConfigError if out of T's range.
template <typename T, typename S>
std::optional<T> scalar_as(const S& x, const std::string& field) {
  if constexpr (std::is_same_v<S, bool> || std::is_same_v<T, bool>) {
    if constexpr (std::is_same_v<S, T>) return x;
    return std::nullopt;
  } else if constexpr (std::is_same_v<S, std::string> || std::is_same_v<T, std::string>) {
    if constexpr (std::is_same_v<S, T>) return x;
    return std::nullopt;
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(x);  // integers and floats alike
  } else if constexpr (std::is_integral_v<S>) {
    if (!std::in_range<T>(x)) fail<ConfigError>("{}: value {} is out of range", field, x);
    return static_cast<T>(x);
  } else {
    return std::nullopt;  // a float asked for as an integer
  }
}

template <typename T>
T convert(const GgufValue& v, const std::string& field) {
  if constexpr (is_vector<T>::value) {
    using E = typename is_vector<T>::element;
    if (!v.is_array()) fail<ConfigError>("{}: expected an array, found {}", field, describe(v));
    T out;
    const bool ok = std::visit(
        [&](const auto& vec) {
          using A = std::decay_t<decltype(vec)>;
          if constexpr (is_vector<A>::value && !std::is_same_v<A, std::vector<GgufValue>>) {
            using S = typename is_vector<A>::element;
            out.reserve(vec.size());
            for (std::size_t i = 0; i < vec.size(); ++i) {
              auto x = scalar_as<E, S>(static_cast<const S&>(vec[i]), field);
              if (!x) return false;
              out.push_back(std::move(*x));
            }
            return true;
          }
          return false;
        },
        v.data);
    if (!ok)
      fail<ConfigError>("{}: expected an array of {}, found {}", field, wanted_plural<E>(),
                        describe(v));
    return out;
  } else {
    std::optional<T> x;
    if (!v.is_array())
      x = std::visit(
          [&](const auto& d) -> std::optional<T> {
            using A = std::decay_t<decltype(d)>;
            if constexpr (is_vector<A>::value)
              return std::nullopt;
            else
              return scalar_as<T, A>(d, field);
          },
          v.data);
    if (!x) fail<ConfigError>("{}: expected {}, found {}", field, wanted<T>(), describe(v));
    return *x;
  }
}

// --- Files --------------------------------------------------------------------------------------

std::shared_ptr<const void> map_file(const std::filesystem::path& path,
                                     std::span<const std::uint8_t>& bytes) {
  const std::string file = path.string();
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail<IoError>("{}: cannot open: {}", file, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail<IoError>("{}: not a regular file", file);
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    bytes = {};
    return nullptr;
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) fail<IoError>("{}: cannot map: {}", file, std::strerror(err));
  bytes = {static_cast<const std::uint8_t*>(p), size};
  return std::shared_ptr<const void>(
      p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
}

bool is_float(mx::Dtype d) {
  return d == mx::float32 || d == mx::float16 || d == mx::bfloat16;
}

/// A fresh, evaluated array whose memory the caller fills.
mx::array allocate(const mx::Shape& shape, mx::Dtype dtype) {
  std::size_t n = 1;
  for (int d : shape) n *= static_cast<std::size_t>(d);
  return mx::array(mx::allocator::malloc(n * dtype.size()), shape, dtype);
}

mx::array copy_raw(std::span<const std::uint8_t> raw, const mx::Shape& shape, mx::Dtype dtype) {
  auto a = allocate(shape, dtype);
  if (!raw.empty()) std::memcpy(a.data<std::uint8_t>(), raw.data(), raw.size());
  return a;
}

mx::array to_dtype(mx::array a, mx::Dtype dtype) {
  if (a.dtype() == dtype) return a;
  auto b = mx::astype(a, dtype);
  mx::eval(b);
  return b;
}

}  // namespace

// --- Names --------------------------------------------------------------------------------------

const char* to_string(GgufType t) {
  switch (t) {
    case GgufType::uint8:
      return "uint8";
    case GgufType::int8:
      return "int8";
    case GgufType::uint16:
      return "uint16";
    case GgufType::int16:
      return "int16";
    case GgufType::uint32:
      return "uint32";
    case GgufType::int32:
      return "int32";
    case GgufType::float32:
      return "float32";
    case GgufType::boolean:
      return "bool";
    case GgufType::string:
      return "string";
    case GgufType::array:
      return "array";
    case GgufType::uint64:
      return "uint64";
    case GgufType::int64:
      return "int64";
    case GgufType::float64:
      return "float64";
  }
  return "unknown";
}

std::optional<GgmlTypeInfo> ggml_type_info(std::uint32_t type) {
  for (const auto& row : kGgmlTypes)
    if (static_cast<std::uint32_t>(row.type) == type) return row.info;
  return std::nullopt;
}

const char* to_string(GgmlType t) {
  auto info = ggml_type_info(static_cast<std::uint32_t>(t));
  return info ? info->name : "unknown";
}

bool ggml_type_supported(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::F64:
    case GgmlType::I8:
    case GgmlType::I16:
    case GgmlType::I32:
    case GgmlType::I64:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

// --- GgufValue, GgufMetadata --------------------------------------------------------------------

std::size_t GgufValue::size() const {
  if (!is_array()) return 1;
  return std::visit(
      [](const auto& d) -> std::size_t {
        if constexpr (is_vector<std::decay_t<decltype(d)>>::value)
          return d.size();
        else
          return 1;
      },
      data);
}

GgufMetadata::GgufMetadata(std::map<std::string, GgufValue> values, std::string where)
    : values_(std::move(values)), where_(std::move(where)) {}

const GgufValue* GgufMetadata::find(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

std::string GgufMetadata::field(const std::string& key) const {
  return where_ + ": " + key;
}

template <typename T>
std::optional<T> GgufMetadata::optional(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return convert<T>(*v, field(key));
}

template <typename T>
T GgufMetadata::required(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) fail<ConfigError>("{}: missing", field(key));
  return convert<T>(*v, field(key));
}

template <typename T>
T GgufMetadata::get(const std::string& key, T fallback) const {
  auto v = optional<T>(key);
  return v ? std::move(*v) : std::move(fallback);
}

#define OMINIX_GGUF_INSTANTIATE(T)                                \
  template T GgufMetadata::required<T>(const std::string&) const; \
  template T GgufMetadata::get<T>(const std::string&, T) const;   \
  template std::optional<T> GgufMetadata::optional<T>(const std::string&) const;
OMINIX_GGUF_INSTANTIATE(bool)
OMINIX_GGUF_INSTANTIATE(int)
OMINIX_GGUF_INSTANTIATE(std::int64_t)
OMINIX_GGUF_INSTANTIATE(std::uint32_t)
OMINIX_GGUF_INSTANTIATE(std::uint64_t)
OMINIX_GGUF_INSTANTIATE(float)
OMINIX_GGUF_INSTANTIATE(double)
OMINIX_GGUF_INSTANTIATE(std::string)
OMINIX_GGUF_INSTANTIATE(std::vector<int>)
OMINIX_GGUF_INSTANTIATE(std::vector<std::int64_t>)
OMINIX_GGUF_INSTANTIATE(std::vector<float>)
OMINIX_GGUF_INSTANTIATE(std::vector<double>)
OMINIX_GGUF_INSTANTIATE(std::vector<std::string>)
#undef OMINIX_GGUF_INSTANTIATE

// --- Tokenizer data -----------------------------------------------------------------------------

GgufTokenizerData GgufTokenizerData::parse(const GgufMetadata& m) {
  const std::string p = "tokenizer.ggml.";
  if (!m.has(p + "model")) fail<FormatError>("{}: no tokenizer (missing)", m.field(p + "model"));
  if (!m.has(p + "tokens")) fail<FormatError>("{}: missing", m.field(p + "tokens"));
  GgufTokenizerData t;
  t.model = m.required<std::string>(p + "model");
  t.pre = m.get<std::string>(p + "pre", "");
  t.tokens = m.required<std::vector<std::string>>(p + "tokens");
  t.scores = m.get<std::vector<float>>(p + "scores", {});
  for (int x : m.get<std::vector<int>>(p + "token_type", {})) t.token_type.push_back(x);
  t.merges = m.get<std::vector<std::string>>(p + "merges", {});
  const std::size_t n = t.tokens.size();
  if (!t.scores.empty() && t.scores.size() != n)
    fail<FormatError>("{}: {} scores for {} tokens", m.field(p + "scores"), t.scores.size(), n);
  if (!t.token_type.empty() && t.token_type.size() != n)
    fail<FormatError>("{}: {} token types for {} tokens", m.field(p + "token_type"),
                      t.token_type.size(), n);
  auto id = [&](const char* name) -> std::optional<std::int64_t> {
    const std::string key = p + name;
    auto v = m.optional<std::int64_t>(key);
    if (v && (*v < 0 || static_cast<std::uint64_t>(*v) >= n))
      fail<FormatError>("{}: {} is not a token id (vocabulary of {})", m.field(key), *v, n);
    return v;
  };
  t.bos_token_id = id("bos_token_id");
  t.eos_token_id = id("eos_token_id");
  t.eot_token_id = id("eot_token_id");
  t.eom_token_id = id("eom_token_id");
  t.unknown_token_id = id("unknown_token_id");
  t.separator_token_id = id("seperator_token_id");  // sic: llama.cpp's key
  if (!t.separator_token_id) t.separator_token_id = id("separator_token_id");
  t.padding_token_id = id("padding_token_id");
  t.mask_token_id = id("mask_token_id");
  t.add_bos_token = m.optional<bool>(p + "add_bos_token");
  t.add_eos_token = m.optional<bool>(p + "add_eos_token");
  t.add_space_prefix = m.optional<bool>(p + "add_space_prefix");
  t.chat_template = m.optional<std::string>("tokenizer.chat_template");
  return t;
}

// --- GgufFile -----------------------------------------------------------------------------------

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile f;
  f.name_ = path.string();
  f.owner_ = map_file(path, f.bytes_);
  f.parse();
  return f;
}

GgufFile GgufFile::from_bytes(std::vector<std::uint8_t> bytes, std::string name) {
  GgufFile f;
  f.name_ = std::move(name);
  auto owned = std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes));
  f.bytes_ = {owned->data(), owned->size()};
  f.owner_ = std::move(owned);
  f.parse();
  return f;
}

void GgufFile::parse() {
  const std::string& file = name_;
  Cursor c(bytes_, file);
  const auto magic = c.read<std::uint32_t>("the magic");
  if (magic != kMagic) {
    std::string got;
    for (int i = 0; i < 4; ++i) {
      const auto ch = static_cast<unsigned char>(magic >> (8 * i));
      got += (ch >= 32 && ch < 127) ? std::string(1, static_cast<char>(ch))
                                    : fmt::format("\\x{:02x}", ch);
    }
    fail<FormatError>("{}: not a GGUF file (magic '{}', expected 'GGUF')", file, got);
  }
  version_ = c.read<std::uint32_t>("the version");
  if (version_ == 0x02000000 || version_ == 0x03000000)
    fail<FormatError>("{}: big-endian GGUF (version bytes {:#010x}) is not supported", file,
                      version_);
  if (version_ != 2 && version_ != 3)
    fail<FormatError>("{}: GGUF version {} is not supported (2 or 3)", file, version_);
  const auto n_tensors = c.read<std::uint64_t>("the tensor count");
  const auto n_kv = c.read<std::uint64_t>("the metadata count");
  // Smallest possible entries: a key/value is 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8.
  if (n_kv > c.left() / 13)
    fail<FormatError>("{}: metadata count {} cannot fit in the {} bytes left", file, n_kv,
                      c.left());
  if (n_tensors > c.left() / 24)
    fail<FormatError>("{}: tensor count {} cannot fit in the {} bytes left", file, n_tensors,
                      c.left());

  std::map<std::string, GgufValue> values;
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = c.string(fmt::format("{}: the name of metadata entry {}", file, i));
    const std::string what = fmt::format("{}: metadata '{}'", file, key);
    if (values.count(key)) fail<FormatError>("{}: appears twice", what);
    const auto raw_type = c.read<std::uint32_t>(what + " (type)");
    if (!known_value_type(raw_type)) fail<FormatError>("{}: unknown value type {}", what, raw_type);
    values.emplace(key, read_value(c, static_cast<GgufType>(raw_type), what, 0));
  }
  metadata_ = GgufMetadata(std::move(values), file);

  if (const GgufValue* a = metadata_.find("general.alignment")) {
    const auto* v = std::get_if<std::uint64_t>(&a->data);
    if (a->type != GgufType::uint32 || !v)
      fail<FormatError>("{}: must be a uint32, found {}", metadata_.field("general.alignment"),
                        describe(*a));
    if (*v == 0 || (*v & (*v - 1)) != 0)
      fail<FormatError>("{} = {} is not a power of two", metadata_.field("general.alignment"), *v);
    alignment_ = *v;
  }

  tensors_.reserve(n_tensors);
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.string(fmt::format("{}: the name of tensor {}", file, i));
    const std::string what = fmt::format("{}: tensor '{}'", file, t.name);
    if (index_.count(t.name)) fail<FormatError>("{}: appears twice", what);
    const auto n_dims = c.read<std::uint32_t>(what + " (rank)");
    if (n_dims > kMaxDims)
      fail<FormatError>("{}: rank {} exceeds ggml's {}", what, n_dims, kMaxDims);
    std::uint64_t numel = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = c.read<std::uint64_t>(what + " (dimensions)");
      if (ne > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()))
        fail<FormatError>("{}: dimension {} is too large", what, ne);
      if (ne != 0 && numel > (std::uint64_t{1} << 62) / ne)
        fail<FormatError>("{}: element count overflows", what);
      numel *= ne;
      t.ne.push_back(ne);
    }
    const auto raw_type = c.read<std::uint32_t>(what + " (type)");
    const auto info = ggml_type_info(raw_type);
    if (!info) fail<FormatError>("{}: unknown ggml type {}", what, raw_type);
    t.type = static_cast<GgmlType>(raw_type);
    const std::uint64_t row = t.ne.empty() ? 1 : t.ne[0];
    if (row % static_cast<std::uint64_t>(info->block_size) != 0)
      fail<FormatError>("{}: row of {} values is not a whole number of {} blocks of {}", what, row,
                        info->name, info->block_size);
    t.nbytes = numel / static_cast<std::uint64_t>(info->block_size) *
               static_cast<std::uint64_t>(info->type_size);
    t.offset = c.read<std::uint64_t>(what + " (offset)");
    if (t.offset % alignment_ != 0)
      fail<FormatError>("{}: offset {} is not a multiple of the alignment {}", what, t.offset,
                        alignment_);
    for (auto it = t.ne.rbegin(); it != t.ne.rend(); ++it) t.shape.push_back(static_cast<int>(*it));
    index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const std::uint64_t end = c.pos();
  data_offset_ = end + (alignment_ - end % alignment_) % alignment_;
  const std::uint64_t size = bytes_.size();
  const std::uint64_t data_size = data_offset_ <= size ? size - data_offset_ : 0;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : tensors_) {
    if (t.nbytes == 0) continue;
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail<FormatError>(
          "{}: truncated: tensor '{}' ({} bytes at data offset {}) ends past the data section "
          "of {} bytes",
          file, t.name, t.nbytes, t.offset, data_size);
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->offset < by_offset[i - 1]->offset + by_offset[i - 1]->nbytes)
      fail<FormatError>("{}: tensors '{}' and '{}' overlap", file, by_offset[i - 1]->name,
                        by_offset[i]->name);
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::uint8_t> GgufFile::raw(const GgufTensorInfo& t) const {
  if (t.nbytes == 0) return {};
  if (data_offset_ + t.offset > bytes_.size() || t.nbytes > bytes_.size() - data_offset_ - t.offset)
    fail<InvalidArgument>("{}: tensor '{}' is not a tensor of this file", name_, t.name);
  return bytes_.subspan(data_offset_ + t.offset, t.nbytes);
}

GgufTensor GgufFile::load(const std::string& name, const GgufLoadOptions& options) const {
  const GgufTensorInfo* t = find(name);
  if (!t) fail<WeightError>("{}: no tensor '{}'", name_, name);
  return load(*t, options);
}

GgufTensor GgufFile::load(const GgufTensorInfo& t, const GgufLoadOptions& options) const {
  if (!is_float(options.dtype))
    fail<InvalidArgument>("{}: load dtype must be float32, float16 or bfloat16", name_);
  if (options.requantize) {
    validate(*options.requantize, "GgufLoadOptions::requantize");
    if (options.requantize->mode != QuantMode::affine)
      fail<InvalidArgument>("GgufLoadOptions::requantize: only affine mode is supported");
  }
  GgufTensor out{.name = t.name,
                 .source_type = t.type,
                 .shape = t.shape,
                 .dense = std::nullopt,
                 .quantized = std::nullopt};
  const auto raw = this->raw(t);
  switch (t.type) {
    case GgmlType::F32:
      out.dense = to_dtype(copy_raw(raw, t.shape, mx::float32), options.dtype);
      return out;
    case GgmlType::F16:
      out.dense = to_dtype(copy_raw(raw, t.shape, mx::float16), options.dtype);
      return out;
    case GgmlType::BF16:
      out.dense = to_dtype(copy_raw(raw, t.shape, mx::bfloat16), options.dtype);
      return out;
    case GgmlType::F64:
      out.dense = to_dtype(copy_raw(raw, t.shape, mx::float64), options.dtype);
      return out;
    case GgmlType::I8:
      out.dense = copy_raw(raw, t.shape, mx::int8);
      return out;
    case GgmlType::I16:
      out.dense = copy_raw(raw, t.shape, mx::int16);
      return out;
    case GgmlType::I32:
      out.dense = copy_raw(raw, t.shape, mx::int32);
      return out;
    case GgmlType::I64:
      out.dense = copy_raw(raw, t.shape, mx::int64);
      return out;
    default:
      break;
  }
  if (!ggml_type_supported(t.type))
    fail<UnsupportedError>("{}: tensor '{}' has type {}, which OminiX cannot load", name_, t.name,
                           to_string(t.type));
  // Only non-empty matrices (or stacks of them) are kept packed; MLX has no empty quantized arrays.
  const bool matrix = t.shape.size() >= 2 &&
                      std::none_of(t.shape.begin(), t.shape.end(), [](int d) { return d == 0; });
  const bool repack = options.quant == GgufQuantPolicy::repack && matrix;
  if (auto spec = ggml_affine_spec(t.type); spec && repack) {
    const int cols = t.shape.back();
    mx::Shape wshape = t.shape, gshape = t.shape;
    wshape.back() = cols / 32 * spec->bits;
    gshape.back() = cols / 32;
    auto weight = allocate(wshape, mx::uint32);
    auto scales = allocate(gshape, mx::float32);
    auto biases = allocate(gshape, mx::float32);
    detail::repack_affine(t.type, raw, {weight.data<std::uint32_t>(), weight.size()},
                          {scales.data<float>(), scales.size()},
                          {biases.data<float>(), biases.size()});
    out.quantized = QuantizedWeight{.weight = weight,
                                    .scales = to_dtype(scales, options.dtype),
                                    .biases = to_dtype(biases, options.dtype),
                                    .spec = *spec};
    return out;
  }
  auto values = allocate(t.shape, mx::float32);
  dequantize_ggml(t.type, raw, {values.data<float>(), values.size()});
  auto dense = to_dtype(values, options.dtype);
  const auto& rq = options.requantize;
  if (repack && rq && t.shape.back() % rq->group_size == 0) {
    auto parts = mx::quantize(dense, rq->group_size, rq->bits, to_string(rq->mode));
    mx::eval(parts);
    out.quantized =
        QuantizedWeight{.weight = parts[0], .scales = parts[1], .biases = parts[2], .spec = *rq};
    return out;
  }
  out.dense = dense;
  return out;
}

// --- Tensors, checkpoints -----------------------------------------------------------------------

mx::array QuantizedWeight::dequantize() const {
  return mx::dequantize(weight, scales, biases, spec.group_size, spec.bits, to_string(spec.mode));
}

mx::array GgufTensor::to_dense() const {
  if (dense) return *dense;
  if (quantized) return quantized->dequantize();
  fail<InvalidArgument>("tensor '{}' holds no data", name);
}

std::vector<int> GgufTokenizerData::end_token_ids() const {
  std::vector<int> ids;
  for (const auto& id : {eos_token_id, eot_token_id, eom_token_id})
    if (id && std::find(ids.begin(), ids.end(), int(*id)) == ids.end()) ids.push_back(int(*id));
  return ids;
}

std::string rename_gguf_tensor(const std::string& name, const GgufLayerNames& layer) {
  if (name.starts_with("token_embd.")) return "model.embed_tokens." + name.substr(11);
  if (name.starts_with("output_norm.")) return "model.norm." + name.substr(12);
  if (name.starts_with("output.")) return "lm_head." + name.substr(7);
  if (!name.starts_with("blk.")) return name;
  const auto dot = name.find('.', 4);
  if (dot == std::string::npos) return name;
  const auto rest = name.substr(dot + 1);
  for (const auto& [from, to] : layer)
    if (rest.starts_with(from))
      return "model.layers." + name.substr(4, dot - 4) + "." + to + rest.substr(from.size());
  return name;
}

GgufCheckpoint load_gguf_checkpoint(const std::filesystem::path& path,
                                    const GgufLoadOptions& options,
                                    const std::function<std::string(const std::string&)>& rename) {
  const GgufFile file = GgufFile::open(path);
  GgufCheckpoint ck;
  ck.metadata = file.metadata();
  auto put = [&](const std::string& key, mx::array a) {
    if (!ck.tensors.emplace(key, std::move(a)).second)
      fail<InvalidArgument>("{}: two tensors map to '{}'", file.name(), key);
  };
  // The load progress hook (ScopedLoadProgress): one file, reported as its tensors are read.
  const auto progress = scoped_load_progress();
  LoadProgress state{.files_total = 1, .file = path};
  for (const auto& info : file.tensors()) state.bytes_total += info.nbytes;
  std::uint64_t next_report = 0;
  static const std::string kWeight = ".weight";
  for (const auto& info : file.tensors()) {
    const std::string name = rename ? rename(info.name) : info.name;
    GgufTensor t = file.load(info, options);
    const bool weight_name = name.size() > kWeight.size() && name.ends_with(kWeight);
    if (t.quantized && weight_name) {
      const std::string module = name.substr(0, name.size() - kWeight.size());
      if (progress) mx::eval({t.quantized->weight, t.quantized->scales, t.quantized->biases});
      put(module + ".weight", t.quantized->weight);
      put(module + ".scales", t.quantized->scales);
      put(module + ".biases", t.quantized->biases);
      ck.quantization.overrides[module] = t.quantized->spec;
    } else {
      auto dense = t.to_dense();
      mx::eval(dense);
      put(name, dense);
    }
    if (!progress) continue;
    state.bytes_done += info.nbytes;
    if (state.bytes_done >= next_report && state.bytes_done < state.bytes_total) {
      progress(state);  // about every 1% of the data
      next_report = state.bytes_done + state.bytes_total / 100;
    }
  }
  if (progress) {
    state.files_done = 1;
    state.bytes_done = state.bytes_total;
    progress(state);
  }
  return ck;
}

}  // namespace ominix::io
