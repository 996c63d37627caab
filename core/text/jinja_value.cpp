// Jinja values with Python semantics: str/repr, equality, truthiness, JSON in and out.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "jinja_internal.h"
#include "ominix/text/jinja.h"

namespace ominix::text {

using detail::JinjaError;

TemplateError::TemplateError(std::string message, int line, int column)
    : FormatError(line > 0 ? fmt::format("{} (line {}, column {})", message, line, column)
                           : message),
      message_(std::move(message)),
      line_(line),
      column_(column) {}

const Value* ValueDict::find(const Value& key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void ValueDict::set(Value key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value(nullptr);
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return Value(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      ValueDict d;
      d.items.reserve(j.size());
      for (const auto& [k, v] : j.items()) d.items.emplace_back(Value(k), from_json(v));
      return Value(std::move(d));
    }
    default:
      throw InvalidArgument("unsupported JSON value type for a template variable");
  }
}

double Value::to_double() const {
  if (is_int()) return static_cast<double>(as_int());
  if (is_float()) return as_float();
  if (is_bool()) return as_bool() ? 1.0 : 0.0;
  return 0.0;
}

bool Value::truthy() const {
  return std::visit(
      [](const auto& x) -> bool {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Undefined> || std::is_same_v<T, std::nullptr_t>) {
          return false;
        } else if constexpr (std::is_same_v<T, bool>) {
          return x;
        } else if constexpr (std::is_same_v<T, int64_t>) {
          return x != 0;
        } else if constexpr (std::is_same_v<T, double>) {
          return x != 0.0;
        } else if constexpr (std::is_same_v<T, std::string>) {
          return !x.empty();
        } else if constexpr (std::is_same_v<T, std::shared_ptr<const ValueSeq>>) {
          return !x->items.empty();
        } else if constexpr (std::is_same_v<T, std::shared_ptr<const ValueDict>>) {
          return !x->items.empty();
        } else {
          return true;
        }
      },
      v_);
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci looks like "-1.2345e+02": split sign, digits and exponent.
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  auto epos = sci.find('e');
  std::string mant = sci.substr(0, epos);
  int exp = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = neg ? "-" : "";
  if (exp >= -5 + 1 && exp < 16) {  // Python repr: fixed when -4 <= exp < 16
    int n = static_cast<int>(digits.size());
    if (exp >= 0) {
      if (n <= exp + 1) {
        out += digits + std::string(exp + 1 - n, '0') + ".0";
      } else {
        out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
      }
    } else {
      out += "0." + std::string(-exp - 1, '0') + digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
  }
  return out;
}

std::string Value::str() const {
  if (is_undefined()) return "";
  if (is_string()) return as_string();
  return repr();
}

std::string Value::repr() const {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Undefined>) {
          return "Undefined";
        } else if constexpr (std::is_same_v<T, std::nullptr_t>) {
          return "None";
        } else if constexpr (std::is_same_v<T, bool>) {
          return x ? "True" : "False";
        } else if constexpr (std::is_same_v<T, int64_t>) {
          return std::to_string(x);
        } else if constexpr (std::is_same_v<T, double>) {
          return float_repr(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return detail::py_repr_string(x);
        } else if constexpr (std::is_same_v<T, std::shared_ptr<const ValueSeq>>) {
          std::string out = x->tuple ? "(" : "[";
          for (size_t i = 0; i < x->items.size(); ++i) {
            if (i) out += ", ";
            out += x->items[i].repr();
          }
          if (x->tuple && x->items.size() == 1) out += ",";
          out += x->tuple ? ")" : "]";
          return out;
        } else if constexpr (std::is_same_v<T, std::shared_ptr<const ValueDict>>) {
          std::string out = "{";
          bool first = true;
          for (const auto& [k, v] : x->items) {
            if (!first) out += ", ";
            first = false;
            out += k.repr() + ": " + v.repr();
          }
          return out + "}";
        } else if constexpr (std::is_same_v<T, std::shared_ptr<const Callable>>) {
          return "<function " + x->name + ">";
        } else {
          std::string out = "<Namespace {";
          bool first = true;
          for (const auto& [k, v] : x->attrs.items) {
            if (!first) out += ", ";
            first = false;
            out += k.repr() + ": " + v.repr();
          }
          return out + "}>";
        }
      },
      v_);
}

std::string Value::type_name() const {
  switch (v_.index()) {
    case 0:
      return "Undefined";
    case 1:
      return "NoneType";
    case 2:
      return "bool";
    case 3:
      return "int";
    case 4:
      return "float";
    case 5:
      return "str";
    case 6:
      return as_seq().tuple ? "tuple" : "list";
    case 7:
      return "dict";
    case 8:
      return "function";
    default:
      return "Namespace";
  }
}

bool Value::operator==(const Value& o) const {
  if (is_number() && o.is_number()) {
    if ((is_int() || is_bool()) && (o.is_int() || o.is_bool())) {
      int64_t a = is_int() ? as_int() : as_bool();
      int64_t b = o.is_int() ? o.as_int() : o.as_bool();
      return a == b;
    }
    return to_double() == o.to_double();
  }
  if (v_.index() != o.v_.index()) return false;
  if (is_undefined() || is_none()) return true;
  if (is_string()) return as_string() == o.as_string();
  if (is_list()) {
    const auto& a = as_seq();
    const auto& b = o.as_seq();
    if (a.tuple != b.tuple || a.items.size() != b.items.size()) return false;
    for (size_t i = 0; i < a.items.size(); ++i)
      if (a.items[i] != b.items[i]) return false;
    return true;
  }
  if (is_dict()) {
    const auto& a = as_dict();
    const auto& b = o.as_dict();
    if (a.items.size() != b.items.size()) return false;
    for (const auto& [k, v] : a.items) {
      const Value* w = b.find(k);
      if (!w || *w != v) return false;
    }
    return true;
  }
  if (is_callable())
    return std::get<std::shared_ptr<const Callable>>(v_) ==
           std::get<std::shared_ptr<const Callable>>(o.v_);
  return std::get<std::shared_ptr<Namespace>>(v_) == std::get<std::shared_ptr<Namespace>>(o.v_);
}

namespace detail {

void json_escape(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

namespace {

std::string json_key(const Value& k) {
  if (k.is_string()) return k.as_string();
  if (k.is_bool()) return k.as_bool() ? "true" : "false";
  if (k.is_none()) return "null";
  if (k.is_int()) return std::to_string(k.as_int());
  if (k.is_float()) return float_repr(k.as_float());
  jfail("keys must be str, int, float, bool or None, not " + k.type_name());
}

void dump(std::string& out, const Value& v, const std::optional<std::string>& indent,
          std::string_view item_sep, std::string_view key_sep, bool sort_keys, int level) {
  if (level > 512) jfail("maximum recursion depth exceeded while encoding a JSON object");
  if (v.is_none()) {
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_float()) {
    double d = v.as_float();
    if (std::isnan(d)) {
      out += "NaN";
    } else if (std::isinf(d)) {
      out += d > 0 ? "Infinity" : "-Infinity";
    } else {
      out += float_repr(d);
    }
  } else if (v.is_string()) {
    json_escape(out, v.as_string());
  } else if (v.is_list() || v.is_dict()) {
    bool is_list = v.is_list();
    size_t n = is_list ? v.as_list().size() : v.as_dict().items.size();
    if (n == 0) {
      out += is_list ? "[]" : "{}";
      return;
    }
    out += is_list ? '[' : '{';
    std::string nl;
    if (indent) {
      nl = "\n";
      for (int i = 0; i <= level; ++i) nl += *indent;
      out += nl;
    }
    std::vector<std::pair<std::string, const Value*>> entries;
    if (!is_list) {
      for (const auto& [k, val] : v.as_dict().items) entries.emplace_back(json_key(k), &val);
      if (sort_keys)
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    for (size_t i = 0; i < n; ++i) {
      if (i) {
        out += item_sep;
        out += nl;
      }
      if (is_list) {
        dump(out, v.as_list()[i], indent, item_sep, key_sep, sort_keys, level + 1);
      } else {
        json_escape(out, entries[i].first);
        out += key_sep;
        dump(out, *entries[i].second, indent, item_sep, key_sep, sort_keys, level + 1);
      }
    }
    if (indent) {
      out += "\n";
      for (int i = 0; i < level; ++i) out += *indent;
    }
    out += is_list ? ']' : '}';
  } else {
    jfail("Object of type " + v.type_name() + " is not JSON serializable");
  }
}

}  // namespace

std::string to_json_impl(const Value& v, const std::optional<std::string>& indent,
                         std::string_view item_sep, std::string_view key_sep, bool sort_keys) {
  if (item_sep.empty()) item_sep = indent ? "," : ", ";
  if (key_sep.empty()) key_sep = ": ";
  std::string out;
  dump(out, v, indent, item_sep, key_sep, sort_keys, 0);
  return out;
}

}  // namespace detail

std::string to_json(const Value& v, int indent, std::string_view item_sep, std::string_view key_sep,
                    bool sort_keys) {
  std::optional<std::string> ind;
  if (indent >= 0) ind = std::string(static_cast<size_t>(indent), ' ');
  return detail::to_json_impl(v, ind, item_sep, key_sep, sort_keys);
}

}  // namespace ominix::text
