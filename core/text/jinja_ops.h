// Python-semantics operations on Jinja values: attribute and item access, slicing, iteration,
// operators, tests and filters.
#pragma once

#include <string>

#include "ominix/text/jinja.h"

namespace ominix::text::detail {

/// obj.name: mapping keys, str/list/dict methods, namespace attributes; Undefined when absent.
Value get_attr(const Value& obj, const std::string& name);
/// obj[key]: item first, then attribute for string keys; Undefined when absent.
Value get_item(const Value& obj, const Value& key);
/// obj[start:stop:step] on lists, tuples and strings (None = omitted).
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step,
            const TemplateLimits& limits);
/// The items a for loop visits: list items, dict keys, string characters; Undefined is empty.
ValueList iterate(const Value& v);
/// Unary "-" and "+".
Value unary_op(const std::string& op, const Value& v);
/// + - * / // % ** and ~.
Value binary_op(const std::string& op, const Value& l, const Value& r,
                const TemplateLimits& limits);
/// == != < <= > >= in notin.
bool compare_op(const std::string& op, const Value& l, const Value& r);
/// `v is name(args)`.
bool run_test(const std::string& name, const Value& v, const ValueList& args);
/// `v | name(args, kwargs)`.
Value call_filter(const std::string& name, const Value& v, const ValueList& args,
                  const KwArgs& kwargs, const TemplateLimits& limits);

}  // namespace ominix::text::detail
