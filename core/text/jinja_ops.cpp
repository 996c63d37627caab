// Python-semantics operations on Jinja values: attribute/item access and methods, slicing,
// operators, tests and the filters chat templates use (jinja2 3.1.6 + transformers' tojson).
#include "jinja_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "jinja_internal.h"

namespace ominix::text::detail {
namespace {

std::string object_desc(const Value& v) {
  if (v.is_none()) return "None";
  return v.type_name() + " object";
}

Value missing_attr(const Value& obj, const Value& name) {
  return Value::undefined(
      fmt::format("{} has no attribute {}", Value(object_desc(obj)).repr(), name.repr()));
}

[[noreturn]] void fail_undefined(const Value& v) {
  const auto& hint = v.as_undefined().hint;
  jfail(hint.empty() ? "value is undefined" : hint);
}

int64_t to_int_arg(const Value& v, const char* what) {
  if (v.is_int()) return v.as_int();
  if (v.is_bool()) return v.as_bool();
  jfail(fmt::format("{} must be an integer, not {}", what, v.type_name()));
}

const Value* get_arg(const ValueList& args, const KwArgs& kw, size_t idx, const char* name) {
  if (idx < args.size()) return &args[idx];
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

std::vector<std::string> chars_of(const std::string& s) {
  std::vector<std::string> out;
  for (char32_t c : utf8_decode(s)) {
    std::string ch;
    utf8_append(ch, c);
    out.push_back(std::move(ch));
  }
  return out;
}

// Python str.split / rsplit.
ValueList py_split(const std::string& s, const Value* sep, int64_t maxsplit, bool from_right) {
  ValueList out;
  if (!sep || sep->is_none()) {
    auto cps = utf8_decode(s);
    std::vector<std::pair<size_t, size_t>> words;
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && py_isspace(cps[i])) ++i;
      if (i >= cps.size()) break;
      size_t j = i;
      while (j < cps.size() && !py_isspace(cps[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    auto piece = [&](size_t b, size_t e) {
      return Value(utf8_encode(std::u32string_view(cps.data() + b, e - b)));
    };
    if (maxsplit < 0 || static_cast<size_t>(maxsplit) >= words.size()) {
      for (auto [b, e] : words) out.push_back(piece(b, e));
      return out;
    }
    if (!from_right) {
      for (int64_t k = 0; k < maxsplit; ++k) out.push_back(piece(words[k].first, words[k].second));
      size_t b = words[maxsplit].first;
      size_t e = cps.size();
      while (e > b && py_isspace(cps[e - 1])) --e;
      out.push_back(piece(b, e));
    } else {
      size_t nw = words.size();
      size_t first = nw - static_cast<size_t>(maxsplit);
      size_t e = words[first - 1].second;
      size_t b = 0;
      while (b < e && py_isspace(cps[b])) ++b;
      out.push_back(piece(b, e));
      for (size_t k = first; k < nw; ++k) out.push_back(piece(words[k].first, words[k].second));
    }
    return out;
  }
  if (!sep->is_string()) jfail("must be str or None, not " + sep->type_name());
  const std::string& d = sep->as_string();
  if (d.empty()) jfail("empty separator");
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    size_t f = s.find(d, pos);
    if (f == std::string::npos) break;
    parts.push_back(s.substr(pos, f - pos));
    pos = f + d.size();
  }
  parts.push_back(s.substr(pos));
  if (maxsplit >= 0 && parts.size() > static_cast<size_t>(maxsplit) + 1) {
    std::vector<std::string> merged;
    if (!from_right) {
      for (int64_t k = 0; k < maxsplit; ++k) merged.push_back(parts[k]);
      std::string rest = parts[maxsplit];
      for (size_t k = maxsplit + 1; k < parts.size(); ++k) rest += d + parts[k];
      merged.push_back(rest);
    } else {
      size_t keep = parts.size() - static_cast<size_t>(maxsplit);
      std::string head = parts[0];
      for (size_t k = 1; k < keep; ++k) head += d + parts[k];
      merged.push_back(head);
      for (size_t k = keep; k < parts.size(); ++k) merged.push_back(parts[k]);
    }
    parts = std::move(merged);
  }
  for (auto& p : parts) out.emplace_back(std::move(p));
  return out;
}

std::vector<std::string> py_splitlines(const std::string& s, bool keepends) {
  std::vector<std::string> out;
  auto cps = utf8_decode(s);
  size_t start = 0, i = 0;
  while (i < cps.size()) {
    char32_t c = cps[i];
    bool brk = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d ||
               c == 0x1e || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) {
      ++i;
      continue;
    }
    size_t eol = i + 1;
    if (c == '\r' && eol < cps.size() && cps[eol] == '\n') ++eol;
    size_t end = keepends ? eol : i;
    out.push_back(utf8_encode(std::u32string_view(cps.data() + start, end - start)));
    start = i = eol;
  }
  if (start < cps.size())
    out.push_back(utf8_encode(std::u32string_view(cps.data() + start, cps.size() - start)));
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& rep,
                       int64_t count, const TemplateLimits& limits) {
  std::string out;
  int64_t done = 0;
  if (old.empty()) {
    auto chars = chars_of(s);
    for (size_t i = 0; i <= chars.size(); ++i) {
      if (count < 0 || done < count) {
        out += rep;
        ++done;
      }
      if (i < chars.size()) out += chars[i];
      if (out.size() > limits.max_output_bytes) jfail("string too large");
    }
    return out;
  }
  size_t pos = 0;
  while (count < 0 || done < count) {
    size_t f = s.find(old, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += rep;
    if (out.size() > limits.max_output_bytes) jfail("string too large");
    pos = f + old.size();
    ++done;
  }
  out.append(s, pos);
  return out;
}

std::string py_title(const std::string& s) {
  std::string out;
  bool prev_cased = false;
  for (char32_t c : utf8_decode(s)) {
    bool cased = py_lower(c) != c || py_upper(c) != c;
    if (cased) {
      utf8_append(out, prev_cased ? py_lower(c) : py_upper(c));
    } else {
      utf8_append(out, c);
    }
    prev_cased = cased;
  }
  return out;
}

std::string py_capitalize(const std::string& s) {
  std::string out;
  bool first = true;
  for (char32_t c : utf8_decode(s)) {
    utf8_append(out, first ? py_upper(c) : py_lower(c));
    first = false;
  }
  return out;
}

int64_t py_find(const std::string& s, const std::string& sub, bool rev) {
  size_t f = rev ? s.rfind(sub) : s.find(sub);
  if (f == std::string::npos) return -1;
  return static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, f)));
}

int64_t py_count(const std::string& s, const std::string& sub) {
  if (sub.empty()) return static_cast<int64_t>(utf8_length(s)) + 1;
  int64_t n = 0;
  size_t pos = 0;
  while ((pos = s.find(sub, pos)) != std::string::npos) {
    ++n;
    pos += sub.size();
  }
  return n;
}

bool py_startswith(const std::string& s, const Value& prefix, bool ends) {
  auto test = [&](const Value& p) {
    if (!p.is_string())
      jfail(fmt::format("{} first arg must be str or a tuple of str, not {}",
                        ends ? "endswith" : "startswith", p.type_name()));
    const std::string& x = p.as_string();
    if (x.size() > s.size()) return false;
    return ends ? s.compare(s.size() - x.size(), x.size(), x) == 0 : s.compare(0, x.size(), x) == 0;
  };
  if (prefix.is_list() && prefix.as_seq().tuple) {
    for (const auto& p : prefix.as_list())
      if (test(p)) return true;
    return false;
  }
  return test(prefix);
}

std::string format_spec(const Value& v, const std::string& spec) {
  if (spec.empty()) return v.str();
  try {
    if (v.is_int()) return fmt::format(fmt::runtime("{:" + spec + "}"), v.as_int());
    if (v.is_float()) return fmt::format(fmt::runtime("{:" + spec + "}"), v.as_float());
    if (v.is_string()) return fmt::format(fmt::runtime("{:" + spec + "}"), v.as_string());
  } catch (const fmt::format_error&) {
  }
  jfail(fmt::format("unsupported format spec '{}' for {}", spec, v.type_name()));
}

// Python str.format with positional/keyword fields, !r/!s conversions and simple specs.
std::string py_format(const std::string& f, const ValueList& args, const KwArgs& kw) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    char c = f[i];
    if (c == '{') {
      if (i + 1 < f.size() && f[i + 1] == '{') {
        out += '{';
        ++i;
        continue;
      }
      size_t close = f.find('}', i);
      if (close == std::string::npos) jfail("Single '{' encountered in format string");
      std::string field = f.substr(i + 1, close - i - 1);
      std::string spec, conv;
      if (auto colon = field.find(':'); colon != std::string::npos) {
        spec = field.substr(colon + 1);
        field = field.substr(0, colon);
      }
      if (auto bang = field.find('!'); bang != std::string::npos) {
        conv = field.substr(bang + 1);
        field = field.substr(0, bang);
      }
      Value v;
      if (field.empty()) {
        if (auto_idx >= args.size()) jfail("Replacement index out of range for positional args");
        v = args[auto_idx++];
      } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
        size_t idx = std::stoul(field);
        if (idx >= args.size()) jfail("Replacement index out of range for positional args");
        v = args[idx];
      } else {
        bool found = false;
        for (const auto& [k, x] : kw)
          if (k == field) {
            v = x;
            found = true;
          }
        if (!found) jfail("KeyError: " + Value(field).repr());
      }
      if (conv == "r") v = Value(v.repr());
      out += format_spec(v, spec);
      i = close;
    } else if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') ++i;
      out += '}';
    } else {
      out += c;
    }
  }
  return out;
}

// printf-style "fmt % args".
std::string py_percent(const std::string& f, const Value& argv) {
  ValueList args;
  const ValueDict* mapping = nullptr;
  if (argv.is_list() && argv.as_seq().tuple) {
    args = argv.as_list();
  } else if (argv.is_dict()) {
    mapping = &argv.as_dict();
    args.push_back(argv);
  } else {
    args.push_back(argv);
  }
  size_t ai = 0;
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    if (++i >= f.size()) jfail("incomplete format");
    Value v;
    bool have_v = false;
    if (f[i] == '(') {
      size_t close = f.find(')', i);
      if (close == std::string::npos || !mapping) jfail("format requires a mapping");
      const Value* x = mapping->find(Value(f.substr(i + 1, close - i - 1)));
      if (!x) jfail("KeyError: " + Value(f.substr(i + 1, close - i - 1)).repr());
      v = *x;
      have_v = true;
      i = close + 1;
    }
    std::string flags;
    while (i < f.size() && std::strchr("-+ 0#", f[i])) flags += f[i++];
    std::string width, prec;
    while (i < f.size() && isdigit(static_cast<unsigned char>(f[i]))) width += f[i++];
    if (i < f.size() && f[i] == '.') {
      ++i;
      while (i < f.size() && isdigit(static_cast<unsigned char>(f[i]))) prec += f[i++];
      if (prec.empty()) prec = "0";
    }
    if (i >= f.size()) jfail("incomplete format");
    char t = f[i];
    if (t == '%') {
      out += '%';
      continue;
    }
    if (!have_v) {
      if (ai >= args.size()) jfail("not enough arguments for format string");
      v = args[ai++];
    }
    std::string spec;
    bool left = flags.find('-') != std::string::npos;
    if (left) spec += '<';
    if (flags.find('+') != std::string::npos)
      spec += '+';
    else if (flags.find(' ') != std::string::npos)
      spec += ' ';
    if (!left && flags.find('0') != std::string::npos && t != 's' && t != 'r') spec += '0';
    spec += width;
    std::string piece;
    switch (t) {
      case 's':
      case 'r': {
        std::string s = t == 's' ? v.str() : v.repr();
        if (!prec.empty())
          s = utf8_encode(std::u32string_view(
              utf8_decode(s).data(), std::min<size_t>(utf8_decode(s).size(), std::stoul(prec))));
        piece = fmt::format(fmt::runtime("{:" + std::string(left ? "<" : ">") + width + "}"), s);
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o': {
        if (!v.is_number())
          jfail(fmt::format("%{} format: a real number is required, not {}", t, v.type_name()));
        auto n = v.is_float() ? static_cast<int64_t>(std::trunc(v.as_float()))
                 : v.is_int() ? v.as_int()
                              : static_cast<int64_t>(v.as_bool());
        std::string ty = t == 'x' ? "x" : t == 'X' ? "X" : t == 'o' ? "o" : "";
        piece = fmt::format(fmt::runtime("{:" + spec + ty + "}"), n);
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!v.is_number()) jfail(fmt::format("must be real number, not {}", v.type_name()));
        piece = fmt::format(
            fmt::runtime("{:" + spec + "." + (prec.empty() ? "6" : prec) + std::string(1, t) + "}"),
            v.to_double());
        break;
      }
      default:
        jfail(fmt::format("unsupported format character '{}'", t));
    }
    out += piece;
  }
  if (!mapping && ai < args.size()) jfail("not all arguments converted during string formatting");
  return out;
}

Value bound(const std::string& name, NativeFn fn) {
  return Value::function(name, std::move(fn));
}

// The sandbox answers unsafe attributes with an undefined value that fails when used.
Value unsafe(const std::string& attr, const Value& obj) {
  return Value::undefined(
      fmt::format("access to attribute '{}' of '{}' object is unsafe.", attr, obj.type_name()));
}

Value str_method(const Value& obj, const std::string& name) {
  const std::string s = obj.as_string();
  auto strip = [s](bool l, bool r) {
    return [s, l, r](const ValueList& a, const KwArgs&) {
      std::optional<std::string> chars;
      if (!a.empty() && !a[0].is_none()) {
        if (!a[0].is_string()) jfail("strip arg must be None or str");
        chars = a[0].as_string();
      }
      return Value(py_strip(s, chars, l, r));
    };
  };
  if (name == "strip") return bound(name, strip(true, true));
  if (name == "lstrip") return bound(name, strip(true, false));
  if (name == "rstrip") return bound(name, strip(false, true));
  if (name == "startswith" || name == "endswith") {
    bool ends = name == "endswith";
    return bound(name, [s, ends](const ValueList& a, const KwArgs&) {
      if (a.empty()) jfail("startswith() takes at least 1 argument (0 given)");
      return Value(py_startswith(s, a[0], ends));
    });
  }
  if (name == "split" || name == "rsplit") {
    bool right = name == "rsplit";
    return bound(name, [s, right](const ValueList& a, const KwArgs& kw) {
      const Value* sep = get_arg(a, kw, 0, "sep");
      const Value* mx = get_arg(a, kw, 1, "maxsplit");
      return Value(py_split(s, sep, mx ? to_int_arg(*mx, "maxsplit") : -1, right));
    });
  }
  if (name == "splitlines")
    return bound(name, [s](const ValueList& a, const KwArgs& kw) {
      const Value* k = get_arg(a, kw, 0, "keepends");
      ValueList out;
      for (auto& l : py_splitlines(s, k && k->truthy())) out.emplace_back(l);
      return Value(std::move(out));
    });
  if (name == "upper")
    return bound(name, [s](const ValueList&, const KwArgs&) { return Value(py_upper_str(s)); });
  if (name == "lower")
    return bound(name, [s](const ValueList&, const KwArgs&) { return Value(py_lower_str(s)); });
  if (name == "title")
    return bound(name, [s](const ValueList&, const KwArgs&) { return Value(py_title(s)); });
  if (name == "capitalize")
    return bound(name, [s](const ValueList&, const KwArgs&) { return Value(py_capitalize(s)); });
  if (name == "replace")
    return bound(name, [s](const ValueList& a, const KwArgs& kw) {
      if (a.size() < 2 || !a[0].is_string() || !a[1].is_string())
        jfail("replace() expects two string arguments");
      const Value* c = get_arg(a, kw, 2, "count");
      TemplateLimits lim;
      return Value(
          py_replace(s, a[0].as_string(), a[1].as_string(), c ? to_int_arg(*c, "count") : -1, lim));
    });
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    return bound(name, [s, name](const ValueList& a, const KwArgs&) {
      if (a.empty() || !a[0].is_string()) jfail(fmt::format("{}() argument must be str", name));
      if (name == "count") return Value(py_count(s, a[0].as_string()));
      bool rev = name[0] == 'r';
      int64_t r = py_find(s, a[0].as_string(), rev);
      if (r < 0 && (name == "index" || name == "rindex")) jfail("substring not found");
      return Value(r);
    });
  }
  if (name == "join")
    return bound(name, [s](const ValueList& a, const KwArgs&) {
      if (a.empty()) jfail("join() takes exactly one argument (0 given)");
      std::string out;
      bool first = true;
      for (const auto& item : iterate(a[0])) {
        if (!item.is_string())
          jfail(fmt::format("sequence item: expected str instance, {} found", item.type_name()));
        if (!first) out += s;
        first = false;
        out += item.as_string();
      }
      return Value(std::move(out));
    });
  if (name == "format")
    return bound(name,
                 [s](const ValueList& a, const KwArgs& kw) { return Value(py_format(s, a, kw)); });
  auto pred = [&](auto fn) {
    return bound(name, [s, fn](const ValueList&, const KwArgs&) {
      auto cps = utf8_decode(s);
      if (cps.empty()) return Value(false);
      return Value(std::all_of(cps.begin(), cps.end(), fn));
    });
  };
  if (name == "isdigit") return pred([](char32_t c) { return c >= '0' && c <= '9'; });
  if (name == "isspace") return pred([](char32_t c) { return py_isspace(c); });
  if (name == "isalnum") return pred([](char32_t c) { return py_isalnum(c); });
  if (name == "isalpha")
    return pred([](char32_t c) { return py_isalnum(c) && !(c >= '0' && c <= '9'); });
  if (name == "islower" || name == "isupper") {
    bool lower = name == "islower";
    return bound(name, [s, lower](const ValueList&, const KwArgs&) {
      bool any = false;
      for (char32_t c : utf8_decode(s)) {
        bool is_l = py_upper(c) != c, is_u = py_lower(c) != c;
        if (lower ? is_u : is_l) return Value(false);
        if (lower ? is_l : is_u) any = true;
      }
      return Value(any);
    });
  }
  return missing_attr(obj, Value(name));
}

Value dict_method(const Value& obj, const std::string& name) {
  if (name == "items")
    return bound(name, [obj](const ValueList&, const KwArgs&) {
      ValueList out;
      for (const auto& [k, v] : obj.as_dict().items) out.push_back(Value(ValueList{k, v}, true));
      return Value(std::move(out));
    });
  if (name == "keys")
    return bound(name, [obj](const ValueList&, const KwArgs&) {
      ValueList out;
      for (const auto& kv : obj.as_dict().items) out.push_back(kv.first);
      return Value(std::move(out));
    });
  if (name == "values")
    return bound(name, [obj](const ValueList&, const KwArgs&) {
      ValueList out;
      for (const auto& kv : obj.as_dict().items) out.push_back(kv.second);
      return Value(std::move(out));
    });
  if (name == "get")
    return bound(name, [obj](const ValueList& a, const KwArgs&) {
      if (a.empty()) jfail("get expected at least 1 argument, got 0");
      const Value* v = obj.as_dict().find(a[0]);
      if (v) return *v;
      return a.size() > 1 ? a[1] : Value(nullptr);
    });
  if (name == "copy") return bound(name, [obj](const ValueList&, const KwArgs&) { return obj; });
  return Value();
}

bool is_unsafe_dict_method(const std::string& n) {
  return n == "clear" || n == "pop" || n == "popitem" || n == "setdefault" || n == "update";
}

bool is_unsafe_list_method(const std::string& n) {
  return n == "append" || n == "extend" || n == "insert" || n == "pop" || n == "remove" ||
         n == "reverse" || n == "sort" || n == "clear";
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (!name.empty() && name[0] == '_') return unsafe(name, obj);
  if (obj.is_dict()) {
    if (is_unsafe_dict_method(name)) return unsafe(name, obj);
    Value m = dict_method(obj, name);
    if (!m.is_undefined()) return m;
    if (const Value* v = obj.as_dict().find(Value(name))) return *v;
    return missing_attr(obj, Value(name));
  }
  if (obj.is_namespace()) {
    if (const Value* v = obj.as_namespace().attrs.find(Value(name))) return *v;
    return missing_attr(obj, Value(name));
  }
  if (obj.is_string()) return str_method(obj, name);
  if (obj.is_list()) {
    if (is_unsafe_list_method(name) && !obj.as_seq().tuple) return unsafe(name, obj);
    if (name == "index" || name == "count") {
      return bound(name, [obj, name](const ValueList& a, const KwArgs&) {
        if (a.empty()) jfail(fmt::format("{}() takes exactly one argument (0 given)", name));
        int64_t n = 0;
        const auto& items = obj.as_list();
        for (size_t i = 0; i < items.size(); ++i) {
          if (items[i] == a[0]) {
            if (name == "index") return Value(static_cast<int64_t>(i));
            ++n;
          }
        }
        if (name == "index") jfail(fmt::format("{} is not in list", a[0].repr()));
        return Value(n);
      });
    }
    if (name == "copy") return bound(name, [obj](const ValueList&, const KwArgs&) { return obj; });
  }
  return missing_attr(obj, Value(name));
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(key)) return *v;
  } else if (obj.is_list() || obj.is_string()) {
    if (key.is_int() || key.is_bool()) {
      int64_t i = key.is_int() ? key.as_int() : key.as_bool();
      if (obj.is_list()) {
        auto n = static_cast<int64_t>(obj.as_list().size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return obj.as_list()[static_cast<size_t>(i)];
      } else {
        const auto& s = obj.as_string();
        bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
        if (ascii) {
          auto n = static_cast<int64_t>(s.size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return Value(std::string(1, s[static_cast<size_t>(i)]));
        } else {
          auto cps = utf8_decode(s);
          auto n = static_cast<int64_t>(cps.size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) {
            std::string ch;
            utf8_append(ch, cps[static_cast<size_t>(i)]);
            return Value(ch);
          }
        }
      }
      return missing_attr(obj, key);
    }
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return missing_attr(obj, key);
}

namespace {

// CPython's PySlice_AdjustIndices.
void adjust_slice(int64_t len, const Value& a, const Value& b, const Value& c, int64_t& start,
                  int64_t& stop, int64_t& step) {
  auto idx = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (v.is_int()) return v.as_int();
    if (v.is_bool()) return static_cast<int64_t>(v.as_bool());
    jfail("slice indices must be integers or None or have an __index__ method");
  };
  auto st = idx(c);
  step = st ? *st : 1;
  if (step == 0) jfail("slice step cannot be zero");
  if (step == INT64_MIN) step = -INT64_MAX;
  auto s = idx(a), e = idx(b);
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v;
    if (x < 0) {
      x = x < -len ? (step < 0 ? -1 : 0) : x + len;
    } else if (x >= len) {
      x = step < 0 ? len - 1 : len;
    }
    return x;
  };
  start = clamp(s, step < 0 ? len - 1 : 0);
  stop = clamp(e, step < 0 ? -1 : len);
}

}  // namespace

Value slice(const Value& obj, const Value& a, const Value& b, const Value& c,
            const TemplateLimits&) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_list() || obj.is_string()) {
    std::vector<char32_t> cps;
    int64_t len;
    if (obj.is_list()) {
      len = static_cast<int64_t>(obj.as_list().size());
    } else {
      cps = utf8_decode(obj.as_string());
      len = static_cast<int64_t>(cps.size());
    }
    int64_t start, stop, step;
    adjust_slice(len, a, b, c, start, stop, step);
    ValueList items;
    std::u32string chars;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (obj.is_list()) {
        items.push_back(obj.as_list()[static_cast<size_t>(i)]);
      } else {
        chars.push_back(cps[static_cast<size_t>(i)]);
      }
      if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
    }
    if (obj.is_list()) return Value(std::move(items), obj.as_seq().tuple);
    return Value(utf8_encode(chars));
  }
  if (obj.is_dict()) jfail("unhashable type: 'slice'");
  return missing_attr(obj, Value("slice"));
}

ValueList iterate(const Value& v) {
  if (v.is_undefined()) return {};
  if (v.is_list()) return v.as_list();
  if (v.is_dict()) {
    ValueList keys;
    for (const auto& kv : v.as_dict().items) keys.push_back(kv.first);
    return keys;
  }
  if (v.is_string()) {
    ValueList out;
    for (auto& c : chars_of(v.as_string())) out.emplace_back(std::move(c));
    return out;
  }
  jfail(fmt::format("'{}' object is not iterable", v.type_name()));
}

namespace {

bool is_intlike(const Value& v) {
  return v.is_int() || v.is_bool();
}
int64_t intval(const Value& v) {
  return v.is_int() ? v.as_int() : v.as_bool();
}

[[noreturn]] void bad_operands(const std::string& op, const Value& l, const Value& r) {
  jfail(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, l.type_name(),
                    r.type_name()));
}

Value repeat(const Value& seq, int64_t n, const TemplateLimits& limits) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const auto& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(n) > limits.max_output_bytes / s.size())
      throw JinjaError("string repetition exceeds the template output limit", ErrorKind::Limit);
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value(std::move(out));
  }
  const auto& items = seq.as_list();
  if (!items.empty() && static_cast<uint64_t>(n) > limits.max_value_items / items.size())
    throw JinjaError("list repetition exceeds the template item limit", ErrorKind::Limit);
  ValueList out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value(std::move(out), seq.as_seq().tuple);
}

void py_float_divmod(double vx, double wx, double& floordiv, double& mod) {
  if (wx == 0.0) jfail("float divmod()");
  mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0) {
    if ((wx < 0) != (mod < 0)) {
      mod += wx;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, wx);
  }
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
}

}  // namespace

Value unary_op(const std::string& op, const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (is_intlike(v)) {
    int64_t x = intval(v);
    if (op == "+") return Value(x);
    if (x == INT64_MIN) jfail("integer overflow");
    return Value(-x);
  }
  if (v.is_float()) return Value(op == "-" ? -v.as_float() : v.as_float());
  jfail(fmt::format("bad operand type for unary {}: '{}'", op, v.type_name()));
}

Value binary_op(const std::string& op, const Value& l, const Value& r,
                const TemplateLimits& limits) {
  if (op == "~") {
    if (l.is_undefined() && false) fail_undefined(l);
    std::string s = l.str() + r.str();
    if (s.size() > limits.max_output_bytes)
      throw JinjaError("string exceeds the template output limit", ErrorKind::Limit);
    return Value(std::move(s));
  }
  if (l.is_undefined()) fail_undefined(l);
  if (r.is_undefined()) fail_undefined(r);
  bool ints = is_intlike(l) && is_intlike(r);
  bool nums = l.is_number() && r.is_number();
  if (op == "+") {
    if (ints) {
      int64_t out;
      if (__builtin_add_overflow(intval(l), intval(r), &out)) jfail("integer overflow");
      return Value(out);
    }
    if (nums) return Value(l.to_double() + r.to_double());
    if (l.is_string() && r.is_string()) {
      if (l.as_string().size() + r.as_string().size() > limits.max_output_bytes)
        throw JinjaError("string exceeds the template output limit", ErrorKind::Limit);
      return Value(l.as_string() + r.as_string());
    }
    if (l.is_list() && r.is_list() && l.as_seq().tuple == r.as_seq().tuple) {
      if (l.as_list().size() + r.as_list().size() > limits.max_value_items)
        throw JinjaError("list exceeds the template item limit", ErrorKind::Limit);
      ValueList out = l.as_list();
      out.insert(out.end(), r.as_list().begin(), r.as_list().end());
      return Value(std::move(out), l.as_seq().tuple);
    }
    if (l.is_string())
      jfail(fmt::format("can only concatenate str (not \"{}\") to str", r.type_name()));
    if (l.is_list() && !l.as_seq().tuple)
      jfail(fmt::format("can only concatenate list (not \"{}\") to list", r.type_name()));
    bad_operands(op, l, r);
  }
  if (op == "-") {
    if (ints) {
      int64_t out;
      if (__builtin_sub_overflow(intval(l), intval(r), &out)) jfail("integer overflow");
      return Value(out);
    }
    if (nums) return Value(l.to_double() - r.to_double());
    bad_operands(op, l, r);
  }
  if (op == "*") {
    if (ints) {
      int64_t out;
      if (__builtin_mul_overflow(intval(l), intval(r), &out)) jfail("integer overflow");
      return Value(out);
    }
    if (nums) return Value(l.to_double() * r.to_double());
    if ((l.is_string() || l.is_list()) && is_intlike(r)) return repeat(l, intval(r), limits);
    if ((r.is_string() || r.is_list()) && is_intlike(l)) return repeat(r, intval(l), limits);
    jfail(fmt::format("can't multiply sequence by non-int of type '{}'",
                      (l.is_string() || l.is_list()) ? r.type_name() : l.type_name()));
  }
  if (op == "/") {
    if (!nums) bad_operands(op, l, r);
    if (r.to_double() == 0.0) jfail(ints ? "division by zero" : "float division by zero");
    return Value(l.to_double() / r.to_double());
  }
  if (op == "//" || op == "%") {
    if (op == "%" && l.is_string()) return Value(py_percent(l.as_string(), r));
    if (!nums) bad_operands(op, l, r);
    if (ints) {
      int64_t a = intval(l), b = intval(r);
      if (b == 0) jfail("integer division or modulo by zero");
      if (a == INT64_MIN && b == -1) {
        if (op == "%") return Value(int64_t{0});
        jfail("integer overflow");
      }
      int64_t q = a / b, m = a % b;
      if (m != 0 && ((m < 0) != (b < 0))) {
        m += b;
        q -= 1;
      }
      return Value(op == "//" ? q : m);
    }
    double fd, md;
    if (r.to_double() == 0.0) jfail(op == "%" ? "float modulo" : "float floor division by zero");
    py_float_divmod(l.to_double(), r.to_double(), fd, md);
    return Value(op == "//" ? fd : md);
  }
  if (op == "**") {
    if (!nums) bad_operands("** or pow()", l, r);
    if (ints && intval(r) >= 0) {
      int64_t base = intval(l), e = intval(r), out = 1;
      while (e > 0) {
        if (e & 1)
          if (__builtin_mul_overflow(out, base, &out)) jfail("integer overflow");
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) jfail("integer overflow");
      }
      return Value(out);
    }
    double a = l.to_double(), b = r.to_double();
    if (a == 0.0 && b < 0) jfail("0.0 cannot be raised to a negative power");
    if (a < 0 && std::floor(b) != b) jfail("unsupported: complex result of ** on a negative base");
    double res = std::pow(a, b);
    if (std::isinf(res) && !std::isinf(a)) jfail("(34, 'Numerical result out of range')");
    return Value(res);
  }
  jfail("unknown operator " + op);
}

namespace {

// Python < ordering; returns <0, 0, >0.
int py_cmp(const Value& l, const Value& r, const std::string& op) {
  if (l.is_undefined()) fail_undefined(l);
  if (r.is_undefined()) fail_undefined(r);
  if (l.is_number() && r.is_number()) {
    if (is_intlike(l) && is_intlike(r)) {
      int64_t a = intval(l), b = intval(r);
      return a < b ? -1 : a > b ? 1 : 0;
    }
    double a = l.to_double(), b = r.to_double();
    if (std::isnan(a) || std::isnan(b)) return 2;  // unordered: every comparison false
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (l.is_string() && r.is_string()) {
    int c = l.as_string().compare(r.as_string());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (l.is_list() && r.is_list() && l.as_seq().tuple == r.as_seq().tuple) {
    const auto& a = l.as_list();
    const auto& b = r.as_list();
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (a[i] == b[i]) continue;
      return py_cmp(a[i], b[i], op);
    }
    return a.size() < b.size() ? -1 : a.size() > b.size() ? 1 : 0;
  }
  jfail(fmt::format("'{}' not supported between instances of '{}' and '{}'", op, l.type_name(),
                    r.type_name()));
}

bool contains(const Value& container, const Value& item) {
  if (container.is_undefined()) return false;
  if (container.is_string()) {
    if (item.is_undefined()) fail_undefined(item);
    if (!item.is_string())
      jfail(fmt::format("'in <string>' requires string as left operand, not {}", item.type_name()));
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_list()) {
    for (const auto& x : container.as_list())
      if (x == item) return true;
    return false;
  }
  if (container.is_dict()) return container.as_dict().find(item) != nullptr;
  jfail(fmt::format("argument of type '{}' is not iterable", container.type_name()));
}

}  // namespace

bool compare_op(const std::string& op, const Value& l, const Value& r) {
  if (op == "==") return l == r;
  if (op == "!=") return l != r;
  if (op == "in") return contains(r, l);
  if (op == "notin") return !contains(r, l);
  int c = py_cmp(l, r, op);
  if (c == 2) return false;
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

bool run_test(const std::string& name, const Value& v, const ValueList& args) {
  auto need = [&](size_t n) {
    if (args.size() < n)
      jfail(fmt::format("test '{}' needs {} argument(s), got {}", name, n, args.size()));
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "sequence") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "callable") return v.is_callable();
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    std::string s = v.str();
    bool any = false;
    for (char32_t c : utf8_decode(s)) {
      bool is_l = py_upper(c) != c, is_u = py_lower(c) != c;
      if (name == "lower" ? is_u : is_l) return false;
      if (name == "lower" ? is_l : is_u) any = true;
    }
    return any;
  }
  if (name == "odd" || name == "even") {
    Value m = binary_op("%", v, Value(int64_t{2}), TemplateLimits{});
    return name == "odd" ? m == Value(int64_t{1}) : m == Value(int64_t{0});
  }
  if (name == "divisibleby") {
    need(1);
    return binary_op("%", v, args[0], TemplateLimits{}) == Value(int64_t{0});
  }
  if (name == "eq" || name == "equalto" || name == "==") {
    need(1);
    return v == args[0];
  }
  if (name == "ne" || name == "!=") {
    need(1);
    return v != args[0];
  }
  if (name == "lt" || name == "lessthan" || name == "<") {
    need(1);
    return compare_op("<", v, args[0]);
  }
  if (name == "le" || name == "<=") {
    need(1);
    return compare_op("<=", v, args[0]);
  }
  if (name == "gt" || name == "greaterthan" || name == ">") {
    need(1);
    return compare_op(">", v, args[0]);
  }
  if (name == "ge" || name == ">=") {
    need(1);
    return compare_op(">=", v, args[0]);
  }
  if (name == "in") {
    need(1);
    return compare_op("in", v, args[0]);
  }
  if (name == "sameas") {
    need(1);
    if (v.is_none() || v.is_bool() || v.is_undefined())
      return v == args[0] && v.type_name() == args[0].type_name();
    return false;
  }
  jfail(fmt::format("no test named '{}'", name));
}

namespace {

Value attr_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (!part.empty() && std::all_of(part.begin(), part.end(), ::isdigit) && part.size() < 18) {
      cur = get_item(cur, Value(static_cast<int64_t>(std::stoll(part))));
    } else {
      cur = get_item(cur, Value(part));
    }
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(py_lower_str(v.as_string()));
  return v;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string ensure_ascii(const std::string& s) {
  std::string out;
  for (char32_t c : utf8_decode(s)) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x10000) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      char32_t v = c - 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
    }
  }
  return out;
}

double python_round(double x, int64_t ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits > 300) return x;
  if (ndigits < -308) return std::copysign(0.0, x);
  if (ndigits >= 0) {
    std::string s = fmt::format("{:.{}f}", x, static_cast<int>(ndigits));
    return std::strtod(s.c_str(), nullptr);
  }
  double p = std::pow(10.0, static_cast<double>(-ndigits));
  double y = x / p;
  double r = std::nearbyint(y);  // ties to even under the default rounding mode
  return r * p;
}

std::optional<int64_t> parse_py_int(std::string s, int base) {
  s = py_strip(s, std::nullopt, true, true);
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && isalnum(static_cast<unsigned char>(s[i - 1])) &&
        isalnum(static_cast<unsigned char>(s[i + 1])))
      continue;
    t += s[i];
  }
  if (t.empty()) return std::nullopt;
  size_t idx = 0;
  errno = 0;
  long long v;
  try {
    v = std::stoll(t, &idx, base);
  } catch (...) {
    return std::nullopt;
  }
  if (idx != t.size()) return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<double> parse_py_float(const std::string& raw) {
  std::string s = py_strip(raw, std::nullopt, true, true);
  if (s.empty()) return std::nullopt;
  std::string low = py_lower_str(s);
  std::string body = low;
  double sign = 1;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    sign = body[0] == '-' ? -1 : 1;
    body = body.substr(1);
  }
  if (body == "inf" || body == "infinity") return sign * HUGE_VAL;
  if (body == "nan") return std::nan("");
  for (char c : body)
    if (!(isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' || c == '-' ||
          c == '_'))
      return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return d;
}

}  // namespace

Value call_filter(const std::string& name, const Value& v, const ValueList& args, const KwArgs& kw,
                  const TemplateLimits& limits) {
  auto arg = [&](size_t i, const char* n) { return get_arg(args, kw, i, n); };
  auto str_in = [&]() { return v.str(); };

  if (name == "tojson") {
    const Value* ea = arg(0, "ensure_ascii");
    const Value* ind = arg(1, "indent");
    const Value* seps = arg(2, "separators");
    const Value* sk = arg(3, "sort_keys");
    std::optional<std::string> indent;
    if (ind && !ind->is_none()) {
      if (ind->is_string()) {
        indent = ind->as_string();
      } else if (is_intlike(*ind)) {
        int64_t n = intval(*ind);
        indent = std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 1024)), ' ');
      } else {
        jfail("indent must be an int, a string or None");
      }
    }
    std::string item_sep, key_sep;
    if (seps && !seps->is_none()) {
      ValueList sp = iterate(*seps);
      if (sp.size() != 2 || !sp[0].is_string() || !sp[1].is_string())
        jfail("separators must be a pair of strings");
      item_sep = sp[0].as_string();
      key_sep = sp[1].as_string();
      if (item_sep.empty()) item_sep = std::string(1, '\0');
    }
    std::string out = to_json_impl(v, indent, item_sep, key_sep, sk && sk->truthy());
    if (!item_sep.empty() && item_sep[0] == '\0') {
      // An empty item separator: remove the placeholder.
      std::string cleaned;
      for (char c : out)
        if (c != '\0') cleaned += c;
      out = cleaned;
    }
    if (ea && ea->truthy()) out = ensure_ascii(out);
    return Value(std::move(out));
  }
  if (name == "safe") return v.is_undefined() ? Value("") : Value(v.str());
  if (name == "string") return Value(v.str());
  if (name == "e" || name == "escape") return Value(html_escape(v.str()));
  if (name == "trim") {
    const Value* c = arg(0, "chars");
    std::optional<std::string> chars;
    if (c && !c->is_none()) chars = c->str();
    return Value(py_strip(str_in(), chars, true, true));
  }
  if (name == "upper") return Value(py_upper_str(str_in()));
  if (name == "lower") return Value(py_lower_str(str_in()));
  if (name == "capitalize") return Value(py_capitalize(str_in()));
  if (name == "title") {
    // jinja: split on ([-\s({\[<]+), capitalise each piece.
    auto cps = utf8_decode(str_in());
    std::string out;
    bool at_start = true;
    for (char32_t c : cps) {
      bool delim = c == '-' || py_isspace(c) || c == '(' || c == '{' || c == '[' || c == '<';
      if (delim) {
        utf8_append(out, c);
        at_start = true;
      } else {
        utf8_append(out, at_start ? py_upper(c) : py_lower(c));
        at_start = false;
      }
    }
    return Value(std::move(out));
  }
  if (name == "length" || name == "count") {
    if (v.is_undefined()) return Value(int64_t{0});
    if (v.is_string()) return Value(static_cast<int64_t>(utf8_length(v.as_string())));
    if (v.is_list()) return Value(static_cast<int64_t>(v.as_list().size()));
    if (v.is_dict()) return Value(static_cast<int64_t>(v.as_dict().items.size()));
    jfail(fmt::format("object of type '{}' has no len()", v.type_name()));
  }
  if (name == "d" || name == "default") {
    const Value* dv = arg(0, "default_value");
    const Value* b = arg(1, "boolean");
    if (v.is_undefined() || (b && b->truthy() && !v.truthy())) return dv ? *dv : Value("");
    return v;
  }
  if (name == "first" || name == "last") {
    ValueList items = iterate(v);
    if (items.empty()) return Value::undefined("No " + name + " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value(iterate(v));
  if (name == "items") {
    if (v.is_undefined()) return Value(ValueList{});
    if (!v.is_dict()) jfail("Can only get item pairs from a mapping.");
    ValueList out;
    for (const auto& [k, x] : v.as_dict().items) out.push_back(Value(ValueList{k, x}, true));
    return Value(std::move(out));
  }
  if (name == "join") {
    const Value* d = arg(0, "d");
    const Value* at = arg(1, "attribute");
    std::string sep = d ? d->str() : "";
    std::string out;
    bool first = true;
    for (const auto& item : iterate(v)) {
      if (!first) out += sep;
      first = false;
      out += (at && !at->is_none()) ? attr_path(item, at->str()).str() : item.str();
      if (out.size() > limits.max_output_bytes)
        throw JinjaError("string exceeds the template output limit", ErrorKind::Limit);
    }
    return Value(std::move(out));
  }
  if (name == "replace") {
    if (args.size() < 2) jfail("replace filter needs old and new");
    const Value* c = arg(2, "count");
    return Value(py_replace(str_in(), args[0].str(), args[1].str(),
                            c && !c->is_none() ? to_int_arg(*c, "count") : -1, limits));
  }
  if (name == "int") {
    const Value* dflt = arg(0, "default");
    const Value* base = arg(1, "base");
    Value fallback = dflt ? *dflt : Value(int64_t{0});
    if (v.is_int()) return v;
    if (v.is_bool()) return Value(static_cast<int64_t>(v.as_bool()));
    if (v.is_float()) {
      double d = v.as_float();
      if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
      return Value(static_cast<int64_t>(std::trunc(d)));
    }
    if (v.is_string()) {
      int b = base ? static_cast<int>(to_int_arg(*base, "base")) : 10;
      if (b < 2 || b > 36) b = 10;
      if (auto i = parse_py_int(v.as_string(), b)) return Value(*i);
      if (auto f = parse_py_float(v.as_string()); f && std::isfinite(*f) && std::fabs(*f) < 9.2e18)
        return Value(static_cast<int64_t>(std::trunc(*f)));
    }
    return fallback;
  }
  if (name == "float") {
    const Value* dflt = arg(0, "default");
    Value fallback = dflt ? *dflt : Value(0.0);
    if (v.is_number()) return Value(v.to_double());
    if (v.is_string())
      if (auto f = parse_py_float(v.as_string())) return Value(*f);
    return fallback;
  }
  if (name == "abs") {
    if (v.is_int()) {
      if (v.as_int() == INT64_MIN) jfail("integer overflow");
      return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    if (v.is_bool()) return Value(static_cast<int64_t>(v.as_bool()));
    if (v.is_float()) return Value(std::fabs(v.as_float()));
    jfail(fmt::format("bad operand type for abs(): '{}'", v.type_name()));
  }
  if (name == "round") {
    const Value* p = arg(0, "precision");
    const Value* m = arg(1, "method");
    int64_t prec = p ? to_int_arg(*p, "precision") : 0;
    std::string method = m ? m->str() : "common";
    if (method != "common" && method != "ceil" && method != "floor")
      jfail("method must be common, ceil or floor");
    if (!v.is_number())
      jfail(fmt::format("type {} doesn't define __round__ method", v.type_name()));
    if (method == "common") {
      if (is_intlike(v)) {
        if (prec >= 0) return Value(intval(v));
        return Value(static_cast<int64_t>(python_round(static_cast<double>(intval(v)), prec)));
      }
      return Value(python_round(v.as_float(), prec));
    }
    double scale = std::pow(10.0, static_cast<double>(prec));
    double x = v.to_double() * scale;
    return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
  }
  if (name == "center") {
    const Value* w = arg(0, "width");
    int64_t width = w ? to_int_arg(*w, "width") : 80;
    std::string s = str_in();
    auto len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value(s);
    if (width > static_cast<int64_t>(limits.max_output_bytes))
      throw JinjaError("center width exceeds the template output limit", ErrorKind::Limit);
    int64_t marg = width - len;
    int64_t left = marg / 2 + (marg & width & 1);
    return Value(std::string(static_cast<size_t>(left), ' ') + s +
                 std::string(static_cast<size_t>(marg - left), ' '));
  }
  if (name == "indent") {
    const Value* w = arg(0, "width");
    const Value* first = arg(1, "first");
    const Value* blank = arg(2, "blank");
    std::string ind;
    if (w && w->is_string()) {
      ind = w->as_string();
    } else {
      int64_t n = w ? to_int_arg(*w, "width") : 4;
      ind = std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 4096)), ' ');
    }
    std::string s = str_in() + "\n";
    auto lines = py_splitlines(s, false);
    std::string rv;
    if (blank && blank->truthy()) {
      for (size_t i = 0; i < lines.size(); ++i) {
        if (i) rv += "\n" + ind;
        rv += lines[i];
      }
    } else {
      rv = lines.empty() ? "" : lines[0];
      if (lines.size() > 1) {
        rv += "\n";
        for (size_t i = 1; i < lines.size(); ++i) {
          if (i > 1) rv += "\n";
          rv += lines[i].empty() ? lines[i] : ind + lines[i];
        }
      }
    }
    if (first && first->truthy()) rv = ind + rv;
    if (rv.size() > limits.max_output_bytes)
      throw JinjaError("string exceeds the template output limit", ErrorKind::Limit);
    return Value(std::move(rv));
  }
  if (name == "wordcount") {
    int64_t n = 0;
    bool in_word = false;
    for (char32_t c : utf8_decode(str_in())) {
      bool w = py_isalnum(c) || c == '_';
      if (w && !in_word) ++n;
      in_word = w;
    }
    return Value(n);
  }
  if (name == "reverse") {
    if (v.is_string()) {
      auto cps = utf8_decode(v.as_string());
      std::reverse(cps.begin(), cps.end());
      return Value(utf8_encode(std::u32string(cps.begin(), cps.end())));
    }
    ValueList items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "attr") {
    if (args.empty()) jfail("attr filter needs a name");
    // getattr without the item fallback: mapping keys are not attributes.
    std::string n = args[0].str();
    if (v.is_dict()) {
      Value m = get_attr(v, n);
      if (m.is_callable() || (m.is_undefined() && !v.as_dict().find(Value(n)))) return m;
      return missing_attr(v, Value(n));
    }
    return get_attr(v, n);
  }
  if (name == "sort" || name == "unique" || name == "max" || name == "min") {
    bool is_sort = name == "sort";
    const Value* rev = is_sort ? arg(0, "reverse") : nullptr;
    const Value* cs = arg(is_sort ? 1 : 0, "case_sensitive");
    const Value* at = arg(is_sort ? 2 : 1, "attribute");
    bool case_sensitive = cs && cs->truthy();
    ValueList items = iterate(v);
    auto key = [&](const Value& x) {
      Value k = (at && !at->is_none()) ? attr_path(x, at->str()) : x;
      return sort_key(k, case_sensitive);
    };
    if (name == "unique") {
      ValueList out, seen;
      for (const auto& x : items) {
        Value k = key(x);
        if (std::find(seen.begin(), seen.end(), k) != seen.end()) continue;
        seen.push_back(k);
        out.push_back(x);
      }
      return Value(std::move(out));
    }
    if (name == "max" || name == "min") {
      if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
      size_t best = 0;
      for (size_t i = 1; i < items.size(); ++i) {
        bool better = name == "max" ? compare_op(">", key(items[i]), key(items[best]))
                                    : compare_op("<", key(items[i]), key(items[best]));
        if (better) best = i;
      }
      return items[best];
    }
    std::vector<std::pair<Value, Value>> keyed;
    for (const auto& x : items) keyed.emplace_back(key(x), x);
    bool reverse = rev && rev->truthy();
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
      return reverse ? compare_op("<", b.first, a.first) : compare_op("<", a.first, b.first);
    });
    ValueList out;
    for (auto& kv : keyed) out.push_back(kv.second);
    return Value(std::move(out));
  }
  if (name == "dictsort") {
    if (!v.is_dict()) jfail("You can only sort by either \"key\" or \"value\"");
    const Value* cs = arg(0, "case_sensitive");
    const Value* by = arg(1, "by");
    const Value* rev = arg(2, "reverse");
    bool case_sensitive = cs && cs->truthy();
    std::string by_s = by ? by->str() : "key";
    if (by_s != "key" && by_s != "value") jfail("You can only sort by either \"key\" or \"value\"");
    std::vector<std::pair<Value, Value>> items(v.as_dict().items.begin(), v.as_dict().items.end());
    bool reverse = rev && rev->truthy();
    std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
      Value ka = sort_key(by_s == "key" ? a.first : a.second, case_sensitive);
      Value kb = sort_key(by_s == "key" ? b.first : b.second, case_sensitive);
      return reverse ? compare_op("<", kb, ka) : compare_op("<", ka, kb);
    });
    ValueList out;
    for (auto& [k, x] : items) out.push_back(Value(ValueList{k, x}, true));
    return Value(std::move(out));
  }
  if (name == "batch") {
    const Value* n = arg(0, "linecount");
    if (!n) jfail("batch filter needs a line count");
    int64_t count = to_int_arg(*n, "linecount");
    if (count <= 0) jfail("batch size must be positive");
    const Value* fill = arg(1, "fill_with");
    ValueList out, cur;
    for (const auto& x : iterate(v)) {
      cur.push_back(x);
      if (static_cast<int64_t>(cur.size()) == count) {
        out.push_back(Value(std::move(cur)));
        cur.clear();
      }
    }
    if (!cur.empty()) {
      if (fill && !fill->is_none())
        while (static_cast<int64_t>(cur.size()) < count) cur.push_back(*fill);
      out.push_back(Value(std::move(cur)));
    }
    return Value(std::move(out));
  }
  if (name == "sum") {
    const Value* at = arg(0, "attribute");
    const Value* start = arg(1, "start");
    Value acc = start ? *start : Value(int64_t{0});
    for (const auto& x : iterate(v))
      acc = binary_op("+", acc, (at && !at->is_none()) ? attr_path(x, at->str()) : x, limits);
    return acc;
  }
  if (name == "map") {
    ValueList out;
    const Value* at = nullptr;
    for (const auto& [k, x] : kw)
      if (k == "attribute") at = &x;
    if (at) {
      const Value* dflt = nullptr;
      for (const auto& [k, x] : kw)
        if (k == "default") dflt = &x;
      for (const auto& x : iterate(v)) {
        Value r = attr_path(x, at->str());
        if (r.is_undefined() && dflt) r = *dflt;
        out.push_back(r);
      }
      return Value(std::move(out));
    }
    if (args.empty()) jfail("map requires a filter argument");
    std::string fname = args[0].str();
    ValueList fargs(args.begin() + 1, args.end());
    for (const auto& x : iterate(v)) out.push_back(call_filter(fname, x, fargs, kw, limits));
    return Value(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    bool attr = name == "selectattr" || name == "rejectattr";
    bool keep_if = name == "select" || name == "selectattr";
    size_t off = 0;
    std::string attr_name;
    if (attr) {
      if (args.empty()) jfail("Missing parameter for attribute name");
      attr_name = args[0].str();
      off = 1;
    }
    std::string test;
    ValueList targs;
    if (args.size() > off) {
      test = args[off].str();
      targs.assign(args.begin() + static_cast<std::ptrdiff_t>(off) + 1, args.end());
    }
    ValueList out;
    for (const auto& x : iterate(v)) {
      Value subject = attr ? attr_path(x, attr_name) : x;
      bool r = test.empty() ? subject.truthy() : run_test(test, subject, targs);
      if (r == keep_if) out.push_back(x);
    }
    return Value(std::move(out));
  }
  if (name == "format") {
    if (!kw.empty()) {
      ValueDict d;
      for (const auto& [k, x] : kw) d.set(Value(k), x);
      return Value(py_percent(str_in(), Value(std::move(d))));
    }
    return Value(py_percent(str_in(), Value(args, true)));
  }
  jfail(fmt::format("no filter named '{}'", name));
}

}  // namespace ominix::text::detail
