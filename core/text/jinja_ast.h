// The parsed form of a Jinja template: expression and statement nodes with source positions.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ominix/text/jinja.h"

namespace ominix::text::detail {

struct Pos {
  int line = 0;
  int col = 0;
};

enum class ExprKind {
  Literal,  // value
  Name,     // name
  List,     // children
  Tuple,    // children
  Dict,     // children: k0, v0, k1, v1, ...
  Attr,     // children[0] . name
  Item,     // children[0] [ children[1] ]
  Slice,    // children[0] [ children[1] : children[2] : children[3] ] (null = absent)
  Call,     // children[0] ( children[1..], kwargs )
  Filter,   // name, children[0] = input (null in filter blocks), args children[1..], kwargs
  Test,     // name, children[0] = input, args children[1..]; negated
  Unary,    // op in {"not", "-", "+"}, children[0]
  Binary,   // op in {"+","-","*","/","//","%","**","~"}, children[0..1]
  Compare,  // children[0] ops[i] children[i+1]
  And,      // children[0..1]
  Or,       // children[0..1]
  Cond,     // children: test, then, else (else may be null)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  Pos pos;
  Value value;                    // Literal
  std::string name;               // Name, Attr, Filter, Test; op of Unary/Binary
  std::vector<ExprPtr> children;  // see ExprKind
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // Call, Filter, Test
  std::vector<std::string> ops;                         // Compare
  bool negated = false;                                 // Test
};

enum class StmtKind {
  Output,       // text
  Print,        // expr
  If,           // conds[i] -> bodies[i]; else_body
  For,          // targets, expr = iterable, cond = filter, body, else_body
  Set,          // targets (or ns.attr in target_attr), expr
  SetBlock,     // targets, body, filter (Filter chain with null input, may be null)
  Macro,        // name, params, defaults, body
  CallBlock,    // expr = call, params/defaults = caller signature, body
  FilterBlock,  // filter chain, body
  With,         // targets, values, body
  Break,
  Continue,
  Generation,  // body
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind;
  Pos pos;
  std::string text;            // Output
  ExprPtr expr;                // Print, For iterable, Set value, CallBlock call
  ExprPtr cond;                // For filter
  ExprPtr filter;              // SetBlock / FilterBlock filter chain
  std::vector<ExprPtr> conds;  // If
  std::vector<Body> bodies;    // If branches
  Body body;
  Body else_body;
  std::vector<std::string> targets;  // For, Set, SetBlock, With
  std::string target_attr;           // Set: ns.attr form (targets[0] = ns)
  std::vector<ExprPtr> values;       // With
  std::string name;                  // Macro
  std::vector<std::string> params;   // Macro, CallBlock
  std::vector<ExprPtr> defaults;     // aligned with params; null = required
  bool recursive = false;            // For
};

/// A parsed template.
struct Program {
  Body body;
};

/// Lexes and parses source; throws TemplateError with the location of the first error.
std::shared_ptr<const Program> parse_template(std::string_view source);

}  // namespace ominix::text::detail
