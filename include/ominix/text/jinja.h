// A Jinja2 interpreter for the subset of the language that Hugging Face chat templates use.
// Behaviour follows jinja2 3.1 as transformers configures it: ImmutableSandboxedEnvironment,
// trim_blocks and lstrip_blocks on, the loopcontrols extension, the default (lenient) Undefined.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "ominix/base/error.h"

namespace ominix::text {

/// A template failed to parse or to render. what() ends with "(line L, column C)" when known.
class TemplateError : public FormatError {
 public:
  TemplateError(std::string message, int line, int column);
  /// The message without the location suffix.
  const std::string& message() const { return message_; }
  /// 1-based source line, 0 when unknown.
  int line() const { return line_; }
  /// 1-based source column, 0 when unknown.
  int column() const { return column_; }

 private:
  std::string message_;
  int line_;
  int column_;
};

/// The template called raise_exception(message).
class TemplateRaised : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

/// A template exceeded one of its resource limits (output, depth, steps).
class TemplateLimitError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

class Value;
using ValueList = std::vector<Value>;

/// An insertion-ordered mapping, like a Python dict.
struct ValueDict {
  std::vector<std::pair<Value, Value>> items;
  /// The value stored under key, or nullptr.
  const Value* find(const Value& key) const;
  /// Sets key to value, keeping the position of an existing key.
  void set(Value key, Value value);
};

/// A Python-like list (or tuple, which prints with parentheses).
struct ValueSeq {
  ValueList items;
  bool tuple = false;
};

/// Keyword arguments of a call, in call order.
using KwArgs = std::vector<std::pair<std::string, Value>>;
/// A function the template can call: builtins, macros, bound methods.
using NativeFn = std::function<Value(const ValueList& args, const KwArgs& kwargs)>;

/// A mutable attribute bag created by namespace().
struct Namespace {
  ValueDict attrs;
};

/// A Jinja value: undefined, none, bool, int, float, string, list, dict, callable or namespace.
/// Lists and dicts are immutable and shared; namespaces are shared and mutable.
class Value {
 public:
  struct Undefined {
    std::string hint;  // why it is undefined, e.g. "'x' is undefined"
  };
  struct Callable {
    std::string name;
    NativeFn fn;
  };
  using Storage = std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::string,
                               std::shared_ptr<const ValueSeq>, std::shared_ptr<const ValueDict>,
                               std::shared_ptr<const Callable>, std::shared_ptr<Namespace>>;

  Value() : v_(Undefined{}) {}
  Value(std::nullptr_t) : v_(nullptr) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(static_cast<int64_t>(i)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(ValueList items, bool tuple = false)
      : v_(std::make_shared<const ValueSeq>(ValueSeq{std::move(items), tuple})) {}
  Value(ValueDict d) : v_(std::make_shared<const ValueDict>(std::move(d))) {}
  Value(std::shared_ptr<Namespace> ns) : v_(std::move(ns)) {}

  /// An undefined value that remembers why (for error messages).
  static Value undefined(std::string hint) { return Value(Storage(Undefined{std::move(hint)})); }
  /// A callable value.
  static Value function(std::string name, NativeFn fn) {
    return Value(
        Storage(std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)})));
  }
  /// Converts JSON (objects keep their order) to a value.
  static Value from_json(const nlohmann::ordered_json& j);

  bool is_undefined() const { return std::holds_alternative<Undefined>(v_); }
  bool is_none() const { return std::holds_alternative<std::nullptr_t>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_float() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<const ValueSeq>>(v_); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<const ValueDict>>(v_); }
  bool is_callable() const { return std::holds_alternative<std::shared_ptr<const Callable>>(v_); }
  bool is_namespace() const { return std::holds_alternative<std::shared_ptr<Namespace>>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const ValueSeq& as_seq() const { return *std::get<std::shared_ptr<const ValueSeq>>(v_); }
  const ValueList& as_list() const { return as_seq().items; }
  const ValueDict& as_dict() const { return *std::get<std::shared_ptr<const ValueDict>>(v_); }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
  const Undefined& as_undefined() const { return std::get<Undefined>(v_); }
  /// Numeric value of an int, float or bool.
  double to_double() const;

  /// Python truthiness.
  bool truthy() const;
  /// Python str(); undefined prints as "".
  std::string str() const;
  /// Python repr().
  std::string repr() const;
  /// Python type name ("str", "int", "dict", ...), as used in error messages.
  std::string type_name() const;
  /// Python ==.
  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }

 private:
  explicit Value(Storage s) : v_(std::move(s)) {}
  Storage v_;
};

/// json.dumps(v, ensure_ascii=False, indent=indent, separators=..., sort_keys=sort_keys) as
/// transformers' tojson filter does. indent < 0 means None; item_sep/key_sep empty = defaults.
std::string to_json(const Value& v, int indent = -1, std::string_view item_sep = {},
                    std::string_view key_sep = {}, bool sort_keys = false);

/// Python repr() of a float ("0.1", "1e-05", "1e+16", "inf", "nan").
std::string float_repr(double d);

/// Resource limits that keep hostile templates from hanging or crashing the process.
struct TemplateLimits {
  size_t max_output_bytes = size_t{64} << 20;  // rendered text
  int max_depth = 128;                         // nested calls, expressions and blocks
  uint64_t max_steps = 20'000'000;             // evaluated nodes and loop iterations
  size_t max_value_items = 1'000'000;          // elements of a list or string built at once
};

namespace detail {
struct Program;
}

/// A parsed template, reusable and safe to render from several threads.
class Template {
 public:
  /// Parses source; throws TemplateError naming line and column on a syntax error.
  explicit Template(std::string_view source, TemplateLimits limits = {});
  ~Template();
  Template(const Template&);
  Template& operator=(const Template&);
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  /// Renders with the given top-level variables. Builtins (namespace, range, dict,
  /// raise_exception, strftime_now, ...) are available unless shadowed.
  std::string render(const ValueDict& variables) const;

 private:
  std::shared_ptr<const detail::Program> program_;
  TemplateLimits limits_;
};

}  // namespace ominix::text
