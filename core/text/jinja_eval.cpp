// The Jinja interpreter: statements, expressions, scoping and the builtins transformers exposes.
// Semantics follow jinja2 3.1.6 in an ImmutableSandboxedEnvironment with Python value rules.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <unordered_map>

#include <fmt/format.h>

#include "jinja_ast.h"
#include "jinja_internal.h"
#include "jinja_ops.h"

namespace ominix::text {

using detail::ErrorKind;
using detail::Expr;
using detail::ExprKind;
using detail::jfail;
using detail::JinjaError;
using detail::Stmt;
using detail::StmtKind;

namespace detail {
namespace {

struct Frame {
  std::unordered_map<std::string, Value> vars;
  Frame* parent = nullptr;

  const Value* lookup(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent) {
      auto it = f->vars.find(name);
      if (it != f->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

enum class Flow { Normal, Break, Continue };

class Interpreter {
 public:
  Interpreter(const TemplateLimits& limits, const ValueDict& vars) : limits_(limits) {
    install_builtins(builtins_);
    root_.parent = &builtins_;
    for (const auto& [k, v] : vars.items)
      if (k.is_string()) root_.vars[k.as_string()] = v;
  }

  std::string run(const Program& prog) {
    std::string out;
    exec_body(prog.body, root_, out);
    return out;
  }

 private:
  const TemplateLimits& limits_;
  Frame builtins_;
  Frame root_;
  uint64_t steps_ = 0;
  int depth_ = 0;

  struct DepthGuard {
    DepthGuard(Interpreter& in, Pos p) : in_(in) {
      if (++in_.depth_ > in_.limits_.max_depth)
        throw TemplateLimitError("template recursion limit exceeded", p.line, p.col);
    }
    ~DepthGuard() { --in_.depth_; }
    Interpreter& in_;
  };

  void step(Pos p) {
    if (++steps_ > limits_.max_steps)
      throw TemplateLimitError("template step limit exceeded", p.line, p.col);
  }

  void emit(std::string& out, std::string_view s, Pos p) {
    if (out.size() + s.size() > limits_.max_output_bytes)
      throw TemplateLimitError("template output limit exceeded", p.line, p.col);
    out += s;
  }

  [[noreturn]] static void relocate(const JinjaError& e, Pos p) {
    if (e.kind == ErrorKind::Raised) throw TemplateRaised(e.what(), p.line, p.col);
    if (e.kind == ErrorKind::Limit) throw TemplateLimitError(e.what(), p.line, p.col);
    throw TemplateError(e.what(), p.line, p.col);
  }

  // ---- statements ----

  Flow exec_body(const Body& body, Frame& frame, std::string& out) {
    for (const auto& s : body) {
      Flow f = exec(*s, frame, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, Frame& frame, std::string& out) {
    step(s.pos);
    DepthGuard g(*this, s.pos);
    try {
      return exec_inner(s, frame, out);
    } catch (const JinjaError& e) {
      relocate(e, s.pos);
    }
  }

  Flow exec_inner(const Stmt& s, Frame& frame, std::string& out) {
    switch (s.kind) {
      case StmtKind::Output:
        emit(out, s.text, s.pos);
        return Flow::Normal;
      case StmtKind::Print: {
        Value v = eval(*s.expr, frame);
        if (!v.is_undefined()) emit(out, v.str(), s.pos);
        return Flow::Normal;
      }
      case StmtKind::If:
        for (size_t i = 0; i < s.conds.size(); ++i)
          if (eval(*s.conds[i], frame).truthy()) return exec_body(s.bodies[i], frame, out);
        return exec_body(s.else_body, frame, out);
      case StmtKind::For:
        exec_for(s, frame, out);
        return Flow::Normal;
      case StmtKind::Set: {
        Value v = eval(*s.expr, frame);
        if (!s.target_attr.empty()) {
          const Value* ns = frame.lookup(s.targets[0]);
          if (!ns || !ns->is_namespace()) jfail("cannot assign attribute on non-namespace object");
          check_ns_name(s.target_attr);
          ns->as_namespace().attrs.set(Value(s.target_attr), std::move(v));
        } else {
          assign(frame, s.targets, v);
        }
        return Flow::Normal;
      }
      case StmtKind::SetBlock: {
        std::string buf;
        Frame inner{{}, &frame};
        exec_body(s.body, inner, buf);
        Value v(std::move(buf));
        if (s.filter) v = apply_filter_chain(*s.filter, v, frame);
        frame.vars[s.targets[0]] = std::move(v);
        return Flow::Normal;
      }
      case StmtKind::Macro:
        frame.vars[s.name] = make_macro(s, frame);
        return Flow::Normal;
      case StmtKind::CallBlock: {
        Value caller = make_caller(s, frame);
        const Expr& call = *s.expr;
        Value fn = eval(*call.children[0], frame);
        ValueList args;
        KwArgs kwargs;
        eval_args(call, frame, args, kwargs);
        kwargs.emplace_back("caller", caller);
        Value r = call_value(fn, args, kwargs);
        if (!r.is_undefined()) emit(out, r.str(), s.pos);
        return Flow::Normal;
      }
      case StmtKind::FilterBlock: {
        std::string buf;
        exec_body(s.body, frame, buf);
        Value v = apply_filter_chain(*s.filter, Value(std::move(buf)), frame);
        emit(out, v.str(), s.pos);
        return Flow::Normal;
      }
      case StmtKind::With: {
        Frame inner{{}, &frame};
        for (size_t i = 0; i < s.targets.size(); ++i)
          inner.vars[s.targets[i]] = eval(*s.values[i], frame);
        return exec_body(s.body, inner, out);
      }
      case StmtKind::Break:
        return Flow::Break;
      case StmtKind::Continue:
        return Flow::Continue;
      case StmtKind::Generation:
        return exec_body(s.body, frame, out);
    }
    return Flow::Normal;
  }

  static void check_ns_name(const std::string& name) {
    if (!name.empty() && name[0] == '_')
      jfail(fmt::format(
          "Chat templates cannot store underscore-prefixed attributes on a namespace, but got "
          "{}. Please rename the attribute.",
          Value(name).repr()));
  }

  void assign(Frame& frame, const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) {
      frame.vars[targets[0]] = v;
      return;
    }
    ValueList items = iterate(v);
    if (items.size() > targets.size())
      jfail(fmt::format("too many values to unpack (expected {})", targets.size()));
    if (items.size() < targets.size())
      jfail(fmt::format("not enough values to unpack (expected {}, got {})", targets.size(),
                        items.size()));
    for (size_t i = 0; i < targets.size(); ++i) frame.vars[targets[i]] = items[i];
  }

  void exec_for(const Stmt& s, Frame& frame, std::string& out) {
    if (s.recursive)
      throw TemplateError("unsupported template construct: recursive for loops", s.pos.line,
                          s.pos.col);
    Value seq = eval(*s.expr, frame);
    ValueList items = iterate(seq);
    if (s.cond) {
      ValueList kept;
      for (const auto& item : items) {
        step(s.pos);
        Frame f{{}, &frame};
        assign(f, s.targets, item);
        if (eval(*s.cond, f).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const size_t n = items.size();
    if (n == 0) {
      Frame f{{}, &frame};
      exec_body(s.else_body, f, out);
      return;
    }
    const int64_t depth = 1;  // loop.depth counts recursive-loop levels, not nesting
    auto last_changed = std::make_shared<std::optional<ValueList>>();
    for (size_t i = 0; i < n; ++i) {
      step(s.pos);
      Frame f{{}, &frame};
      ValueDict loop;
      auto ii = static_cast<int64_t>(i);
      auto nn = static_cast<int64_t>(n);
      loop.items.emplace_back(Value("index"), Value(ii + 1));
      loop.items.emplace_back(Value("index0"), Value(ii));
      loop.items.emplace_back(Value("revindex"), Value(nn - ii));
      loop.items.emplace_back(Value("revindex0"), Value(nn - ii - 1));
      loop.items.emplace_back(Value("first"), Value(i == 0));
      loop.items.emplace_back(Value("last"), Value(i + 1 == n));
      loop.items.emplace_back(Value("length"), Value(nn));
      loop.items.emplace_back(Value("depth"), Value(depth));
      loop.items.emplace_back(Value("depth0"), Value(depth - 1));
      loop.items.emplace_back(Value("previtem"),
                              i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
      loop.items.emplace_back(Value("nextitem"),
                              i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
      loop.items.emplace_back(Value("cycle"),
                              Value::function("cycle", [i](const ValueList& args, const KwArgs&) {
                                if (args.empty()) jfail("no items for cycling given");
                                return args[i % args.size()];
                              }));
      loop.items.emplace_back(
          Value("changed"),
          Value::function("changed", [last_changed](const ValueList& args, const KwArgs&) {
            if (*last_changed && **last_changed == args) return Value(false);
            *last_changed = args;
            return Value(true);
          }));
      f.vars["loop"] = Value(std::move(loop));
      assign(f, s.targets, items[i]);
      Flow fl = exec_body(s.body, f, out);
      if (fl == Flow::Break) break;
    }
  }

  // ---- macros ----

  Value make_macro(const Stmt& s, Frame& frame) {
    const Stmt* def = &s;
    Frame* scope = &frame;
    return Value::function(s.name, [this, def, scope](const ValueList& args, const KwArgs& kw) {
      return call_macro(*def, scope, args, kw, def->name);
    });
  }

  Value make_caller(const Stmt& s, Frame& frame) {
    const Stmt* def = &s;
    Frame* scope = &frame;
    return Value::function("caller", [this, def, scope](const ValueList& args, const KwArgs& kw) {
      return call_macro(*def, scope, args, kw, "caller");
    });
  }

  Value call_macro(const Stmt& def, Frame* scope, const ValueList& args, const KwArgs& kw,
                   const std::string& name) {
    DepthGuard g(*this, def.pos);
    Frame f{{}, scope};
    if (args.size() > def.params.size())
      jfail(fmt::format("macro '{}' takes not more than {} argument(s)", name, def.params.size()));
    std::vector<bool> bound(def.params.size(), false);
    for (size_t i = 0; i < args.size(); ++i) {
      f.vars[def.params[i]] = args[i];
      bound[i] = true;
    }
    for (const auto& [k, v] : kw) {
      auto it = std::find(def.params.begin(), def.params.end(), k);
      if (it == def.params.end()) {
        if (k == "caller") {
          f.vars["caller"] = v;
          continue;
        }
        jfail(fmt::format("macro '{}' takes no keyword argument '{}'", name, k));
      }
      auto idx = static_cast<size_t>(it - def.params.begin());
      if (bound[idx])
        jfail(fmt::format("macro '{}' got multiple values for argument '{}'", name, k));
      f.vars[k] = v;
      bound[idx] = true;
    }
    for (size_t i = 0; i < def.params.size(); ++i) {
      if (bound[i]) continue;
      if (i < def.defaults.size() && def.defaults[i]) {
        f.vars[def.params[i]] = eval(*def.defaults[i], f);
      } else {
        f.vars[def.params[i]] =
            Value::undefined(fmt::format("parameter '{}' was not provided", def.params[i]));
      }
    }
    std::string out;
    exec_body(def.body, f, out);
    return Value(std::move(out));
  }

  // ---- expressions ----

  Value eval(const Expr& e, Frame& frame) {
    step(e.pos);
    DepthGuard g(*this, e.pos);
    try {
      return eval_inner(e, frame);
    } catch (const JinjaError& err) {
      relocate(err, e.pos);
    }
  }

  void eval_args(const Expr& e, Frame& frame, ValueList& args, KwArgs& kwargs) {
    for (size_t i = 1; i < e.children.size(); ++i)
      args.push_back(e.children[i] ? eval(*e.children[i], frame) : Value());
    for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v, frame));
  }

  Value eval_inner(const Expr& e, Frame& frame) {
    switch (e.kind) {
      case ExprKind::Literal:
        return e.value;
      case ExprKind::Name: {
        const Value* v = frame.lookup(e.name);
        if (!v) return Value::undefined(fmt::format("'{}' is undefined", e.name));
        return *v;
      }
      case ExprKind::List:
      case ExprKind::Tuple: {
        ValueList items;
        for (const auto& c : e.children) items.push_back(eval(*c, frame));
        return Value(std::move(items), e.kind == ExprKind::Tuple);
      }
      case ExprKind::Dict: {
        ValueDict d;
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          Value k = eval(*e.children[i], frame);
          d.set(std::move(k), eval(*e.children[i + 1], frame));
        }
        return Value(std::move(d));
      }
      case ExprKind::Attr:
        return get_attr(eval(*e.children[0], frame), e.name);
      case ExprKind::Item:
        return get_item(eval(*e.children[0], frame), eval(*e.children[1], frame));
      case ExprKind::Slice: {
        Value obj = eval(*e.children[0], frame);
        Value parts[3];
        for (int i = 0; i < 3; ++i)
          parts[i] = e.children[i + 1] ? eval(*e.children[i + 1], frame) : Value(nullptr);
        return slice(obj, parts[0], parts[1], parts[2], limits_);
      }
      case ExprKind::Call: {
        Value fn = eval(*e.children[0], frame);
        ValueList args;
        KwArgs kwargs;
        eval_args(e, frame, args, kwargs);
        return call_value(fn, args, kwargs);
      }
      case ExprKind::Filter: {
        Value input = e.children[0] ? eval(*e.children[0], frame) : Value();
        return apply_filter(e, input, frame);
      }
      case ExprKind::Test: {
        Value input = eval(*e.children[0], frame);
        ValueList args;
        KwArgs kwargs;
        eval_args(e, frame, args, kwargs);
        bool r = run_test(e.name, input, args);
        return Value(e.negated ? !r : r);
      }
      case ExprKind::Unary: {
        Value v = eval(*e.children[0], frame);
        if (e.name == "not") return Value(!v.truthy());
        return unary_op(e.name, v);
      }
      case ExprKind::Binary: {
        Value l = eval(*e.children[0], frame);
        Value r = eval(*e.children[1], frame);
        return binary_op(e.name, l, r, limits_);
      }
      case ExprKind::Compare: {
        Value left = eval(*e.children[0], frame);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.children[i + 1], frame);
          if (!compare_op(e.ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case ExprKind::And: {
        Value l = eval(*e.children[0], frame);
        if (!l.truthy()) return l;
        return eval(*e.children[1], frame);
      }
      case ExprKind::Or: {
        Value l = eval(*e.children[0], frame);
        if (l.truthy()) return l;
        return eval(*e.children[1], frame);
      }
      case ExprKind::Cond: {
        if (eval(*e.children[0], frame).truthy()) return eval(*e.children[1], frame);
        if (e.children[2]) return eval(*e.children[2], frame);
        return Value::undefined(
            "the inline if-expression evaluated to false and no else "
            "section was defined.");
      }
    }
    return Value();
  }

  Value call_value(const Value& fn, const ValueList& args, const KwArgs& kwargs) {
    if (fn.is_undefined())
      jfail(fn.as_undefined().hint.empty() ? "undefined value is not callable"
                                           : fn.as_undefined().hint);
    if (!fn.is_callable()) jfail(fmt::format("'{}' object is not callable", fn.type_name()));
    return fn.as_callable().fn(args, kwargs);
  }

  Value apply_filter_chain(const Expr& chain, const Value& input, Frame& frame) {
    // chain is Filter(Filter(null, ...), ...): apply innermost first.
    if (chain.kind != ExprKind::Filter) return input;
    Value inner = chain.children[0] ? apply_filter_chain(*chain.children[0], input, frame) : input;
    return apply_filter(chain, inner, frame);
  }

  Value apply_filter(const Expr& e, const Value& input, Frame& frame) {
    ValueList args;
    KwArgs kwargs;
    eval_args(e, frame, args, kwargs);
    return call_filter(e.name, input, args, kwargs, limits_);
  }

  // ---- builtins ----

  void install_builtins(Frame& f) {
    f.vars["range"] = Value::function("range", [](const ValueList& a, const KwArgs&) {
      int64_t start = 0, stop = 0, stepv = 1;
      auto as_i = [](const Value& v) {
        if (v.is_int()) return v.as_int();
        if (v.is_bool()) return static_cast<int64_t>(v.as_bool());
        jfail(fmt::format("'{}' object cannot be interpreted as an integer", v.type_name()));
      };
      if (a.size() == 1) {
        stop = as_i(a[0]);
      } else if (a.size() == 2 || a.size() == 3) {
        start = as_i(a[0]);
        stop = as_i(a[1]);
        if (a.size() == 3) stepv = as_i(a[2]);
      } else {
        jfail(fmt::format("range expected at most 3 arguments, got {}", a.size()));
      }
      if (stepv == 0) jfail("range() arg 3 must not be zero");
      ValueList out;
      // Sandbox limit: MAX_RANGE = 100000.
      long double count = stepv > 0 ? std::ceil((static_cast<long double>(stop) - start) / stepv)
                                    : std::ceil((static_cast<long double>(start) - stop) / -stepv);
      if (count > 100000)
        jfail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      for (int64_t i = start; stepv > 0 ? i < stop : i > stop; i += stepv) out.emplace_back(i);
      return Value(std::move(out));
    });
    f.vars["namespace"] = Value::function("namespace", [](const ValueList& a, const KwArgs& kw) {
      auto ns = std::make_shared<Namespace>();
      for (const auto& arg : a) {
        if (!arg.is_dict()) jfail("namespace() positional argument must be a mapping");
        for (const auto& [k, v] : arg.as_dict().items) {
          if (k.is_string()) check_ns_name(k.as_string());
          ns->attrs.set(k, v);
        }
      }
      for (const auto& [k, v] : kw) {
        check_ns_name(k);
        ns->attrs.set(Value(k), v);
      }
      return Value(ns);
    });
    f.vars["dict"] = Value::function("dict", [](const ValueList& a, const KwArgs& kw) {
      ValueDict d;
      if (a.size() > 1) jfail(fmt::format("dict expected at most 1 argument, got {}", a.size()));
      if (a.size() == 1) {
        if (a[0].is_dict()) {
          d = a[0].as_dict();
        } else {
          for (const auto& item : iterate(a[0])) {
            ValueList kv = iterate(item);
            if (kv.size() != 2) jfail("dictionary update sequence element has wrong length");
            d.set(kv[0], kv[1]);
          }
        }
      }
      for (const auto& [k, v] : kw) d.set(Value(k), v);
      return Value(std::move(d));
    });
    f.vars["raise_exception"] =
        Value::function("raise_exception", [](const ValueList& a, const KwArgs&) -> Value {
          throw JinjaError(a.empty() ? std::string() : a[0].str(), ErrorKind::Raised);
        });
    f.vars["strftime_now"] = Value::function("strftime_now", [](const ValueList& a, const KwArgs&) {
      if (a.empty() || !a[0].is_string()) jfail("strftime_now() expects a format string");
      std::time_t t = std::time(nullptr);
      std::tm tm{};
      localtime_r(&t, &tm);
      char buf[512];
      size_t n = std::strftime(buf, sizeof(buf), a[0].as_string().c_str(), &tm);
      return Value(std::string(buf, n));
    });
  }
};

}  // namespace
}  // namespace detail

Template::Template(std::string_view source, TemplateLimits limits)
    : program_(detail::parse_template(source)), limits_(limits) {}
Template::~Template() = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const ValueDict& variables) const {
  detail::Interpreter in(limits_, variables);
  return in.run(*program_);
}

}  // namespace ominix::text
