// Typed access to tokenizer.json fields with errors that name the file and the field.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ominix/base/error.h"

namespace ominix::text::detail {

using nlohmann::json;

/// Where a JSON value sits: the file and the dotted field path, for error messages.
struct JsonPath {
  std::string file;
  std::string field;
  JsonPath operator/(std::string_view key) const {
    return {file, field.empty() ? std::string(key) : field + "." + std::string(key)};
  }
  JsonPath operator[](std::size_t i) const { return {file, field + "[" + std::to_string(i) + "]"}; }
  std::string str() const { return file + ": " + (field.empty() ? "<root>" : field); }
};

[[noreturn]] inline void bad_field(const JsonPath& p, std::string_view what) {
  fail<FormatError>("{}: {}", p.str(), what);
}

inline const json& require(const json& obj, std::string_view key, const JsonPath& p) {
  if (!obj.is_object()) bad_field(p, "expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) bad_field(p / key, "missing");
  return *it;
}

inline std::string get_string(const json& v, const JsonPath& p) {
  if (!v.is_string()) bad_field(p, "expected a string");
  return v.get<std::string>();
}

inline bool get_bool(const json& v, const JsonPath& p) {
  if (!v.is_boolean()) bad_field(p, "expected a boolean");
  return v.get<bool>();
}

inline std::int64_t get_int(const json& v, const JsonPath& p) {
  if (!v.is_number_integer()) bad_field(p, "expected an integer");
  return v.get<std::int64_t>();
}

/// obj[key] as a bool, `def` when absent or null.
inline bool opt_bool(const json& obj, std::string_view key, bool def, const JsonPath& p) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  return get_bool(*it, p / key);
}

/// obj[key] as a string, `def` when absent or null.
inline std::string opt_string(const json& obj, std::string_view key, std::string def,
                              const JsonPath& p) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  return get_string(*it, p / key);
}

/// The "type" tag of a component.
inline std::string type_of(const json& v, const JsonPath& p) {
  return get_string(require(v, "type", p), p / "type");
}

}  // namespace ominix::text::detail
