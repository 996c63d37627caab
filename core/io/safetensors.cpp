#include "ominix/io/safetensors.h"

#include <algorithm>
#include <fstream>

#include <mlx/io.h>
#include <mlx/ops.h>
#include <mlx/transforms.h>
#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/io/config.h"

namespace ominix::io {

namespace {

// Caps that keep a hostile header from making us allocate or loop without bound.
constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr std::size_t kMaxRank = 16;

struct DtypeEntry {
  const char* name;
  mx::Dtype dtype;
};
constexpr DtypeEntry kDtypes[] = {
    {"BOOL", mx::bool_},  {"U8", mx::uint8},    {"I8", mx::int8},       {"U16", mx::uint16},
    {"I16", mx::int16},   {"U32", mx::uint32},  {"I32", mx::int32},     {"U64", mx::uint64},
    {"I64", mx::int64},   {"F16", mx::float16}, {"BF16", mx::bfloat16}, {"F32", mx::float32},
    {"F64", mx::float64},
};

}  // namespace

std::string safetensors_dtype_name(mx::Dtype dtype) {
  for (const auto& e : kDtypes)
    if (e.dtype == dtype) return e.name;
  fail<UnsupportedError>("safetensors: dtype of size {} cannot be written", dtype.size());
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<IoError>("{}: cannot open", file);
  std::error_code ec;
  SafetensorsHeader h;
  h.file_size = std::filesystem::file_size(path, ec);
  if (ec) fail<IoError>("{}: cannot read size: {}", file, ec.message());
  if (h.file_size < 8)
    fail<FormatError>("{}: truncated: {} bytes, shorter than the 8-byte header length", file,
                      h.file_size);

  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > kMaxHeaderBytes)
    fail<FormatError>("{}: header length {} is implausible (limit {})", file, header_len,
                      kMaxHeaderBytes);
  if (header_len > h.file_size - 8)
    fail<FormatError>("{}: truncated: header says {} bytes, file has {} after the length", file,
                      header_len, h.file_size - 8);
  h.data_offset = 8 + header_len;

  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (!in) fail<IoError>("{}: read error in header", file);

  const nlohmann::json j = parse_json(text, file, "header is not valid JSON");
  if (!j.is_object()) fail<FormatError>("{}: header is not a JSON object", file);

  const std::uint64_t data_size = h.file_size - h.data_offset;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (entry.is_null()) continue;  // written by some tools when there is none
      if (!entry.is_object()) fail<FormatError>("{}: __metadata__ is not an object", file);
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail<FormatError>("{}: __metadata__.{} is not a string", file, k);
        h.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string& tensor_name = name;  // structured bindings cannot be captured (clang 14)
    auto bad = [&](const std::string& why) -> void {
      fail<FormatError>("{}: tensor '{}': {}", file, tensor_name, why);
    };
    if (!entry.is_object()) bad("entry is not an object");
    TensorInfo t;
    t.name = name;
    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) bad("missing or non-string dtype");
    t.dtype_name = dt->get<std::string>();
    auto found = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                              [&](const DtypeEntry& e) { return t.dtype_name == e.name; });
    if (found == std::end(kDtypes)) bad("unsupported dtype '" + t.dtype_name + "'");
    t.dtype = found->dtype;

    auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) bad("missing shape");
    if (shape->size() > kMaxRank) bad("rank " + std::to_string(shape->size()) + " is too large");
    std::uint64_t numel = 1;
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned())
        bad("shape " + shape->dump() + " has a non-integer or negative dimension");
      auto v = d.get<std::uint64_t>();
      if (v > std::uint64_t(std::numeric_limits<int32_t>::max()))
        bad("dimension " + std::to_string(v) + " is too large");
      if (v != 0 && numel > std::numeric_limits<std::uint64_t>::max() / v) bad("shape overflows");
      numel *= v;
      t.shape.push_back(static_cast<int>(v));
    }
    auto offs = entry.find("data_offsets");
    if (offs == entry.end() || !offs->is_array() || offs->size() != 2 ||
        !(*offs)[0].is_number_unsigned() || !(*offs)[1].is_number_unsigned())
      bad("data_offsets must be two non-negative integers");
    t.begin = (*offs)[0].get<std::uint64_t>();
    t.end = (*offs)[1].get<std::uint64_t>();
    if (t.end < t.begin) bad("data_offsets end before they begin");
    if (numel > std::numeric_limits<std::uint64_t>::max() / t.dtype.size())
      bad("byte size overflows");
    if (t.end - t.begin != numel * t.dtype.size())
      bad(fmt::format("shape {} of {} needs {} bytes, data_offsets give {}", shape->dump(),
                      t.dtype_name, numel * t.dtype.size(), t.end - t.begin));
    if (t.end > data_size)
      fail<FormatError>("{}: truncated: tensor '{}' ends at byte {} of the data, which has {}",
                        file, name, t.end, data_size);
    h.tensors.push_back(std::move(t));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (std::size_t i = 1; i < h.tensors.size(); ++i) {
    const auto& a = h.tensors[i - 1];
    const auto& b = h.tensors[i];
    if (b.begin < a.end && b.begin != b.end && a.begin != a.end)
      fail<FormatError>("{}: tensors '{}' and '{}' overlap", file, a.name, b.name);
  }
  return h;
}

TensorMap load_safetensors(const std::filesystem::path& path) {
  read_safetensors_header(path);  // throws on anything MLX's loader would misread
  try {
    auto [tensors, metadata] = mx::load_safetensors(path.string());
    return TensorMap(tensors.begin(), tensors.end());
  } catch (const ominix::Error&) {
    throw;
  } catch (const std::exception& e) {
    fail<FormatError>("{}: {}", path.string(), e.what());
  }
}

void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::string> names;
  for (const auto& [name, _] : tensors) names.push_back(name);
  std::sort(names.begin(), names.end());

  std::vector<mx::array> arrays;
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& name : names) {
    mx::array a = mx::contiguous(tensors.at(name));
    arrays.push_back(a);
  }
  mx::eval(arrays);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto& a = arrays[i];
    std::vector<std::int64_t> shape(a.shape().begin(), a.shape().end());
    header[names[i]] = {{"dtype", safetensors_dtype_name(a.dtype())},
                        {"shape", shape},
                        {"data_offsets", {offset, offset + a.nbytes()}}};
    offset += a.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data section 8-byte aligned, as the spec advises

  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail<IoError>("{}: cannot create", tmp.string());
    std::uint64_t n = text.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& a : arrays)
      out.write(a.data<char>(), static_cast<std::streamsize>(a.nbytes()));
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp);
      fail<IoError>("{}: write failed", tmp.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    fail<IoError>("{}: cannot rename from {}: {}", path.string(), tmp.string(), ec.message());
  }
}

}  // namespace ominix::io
