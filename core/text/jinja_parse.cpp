// Lexer and parser for Jinja templates, following jinja2 3.1's lexer rules with
// trim_blocks=True and lstrip_blocks=True, as transformers configures them.
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "jinja_ast.h"
#include "jinja_internal.h"

namespace ominix::text::detail {
namespace {

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type;
  std::string text;  // data, name, decoded string, operator
  Value num;         // Int / Float
  Pos pos;
};

constexpr int kMaxNesting = 256;  // parser recursion guard

[[noreturn]] void syntax_error(const std::string& msg, Pos p) {
  throw TemplateError("template syntax error: " + msg, p.line, p.col);
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) {
    // Normalise \r\n and \r to \n and drop one trailing newline (keep_trailing_newline=False).
    src_.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
      if (src[i] == '\r') {
        src_ += '\n';
        if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
      } else {
        src_ += src[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    const size_t n = src_.size();
    while (pos < n) {
      size_t start = find_open(pos);
      if (start == std::string::npos) {
        emit_data(src_.substr(pos), pos);
        break;
      }
      char kind = src_[start + 1];
      char sign = start + 2 < n ? src_[start + 2] : '\0';
      if (sign != '-' && sign != '+') sign = '\0';
      std::string text = src_.substr(pos, start - pos);
      if (sign == '-') {
        text = rstrip_ws(text);
      } else if (sign != '+' && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting) {
          std::string_view tail(text.data() + l_pos, text.size() - l_pos);
          if (!tail.empty() && all_ws(tail)) text.resize(l_pos);
        }
      }
      emit_data(text, pos);
      size_t body = start + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        pos = lex_comment(body, start, line_starting);
      } else if (kind == '%' && is_raw(body)) {
        pos = lex_raw(start, line_starting);
      } else {
        pos = lex_tag(body, start, kind == '%', line_starting);
      }
    }
    tokens_.push_back(Token{Tok::Eof, "", Value(), pos_of(n)});
    return std::move(tokens_);
  }

 private:
  std::string src_;
  std::vector<Token> tokens_;

  Pos pos_of(size_t off) const {
    Pos p{1, 1};
    // Linear scan is fine: called once per token on chat-template sized inputs, cached below.
    size_t from = 0;
    if (off >= cache_off_) {
      p = cache_pos_;
      from = cache_off_;
    }
    for (size_t i = from; i < off && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++p.line;
        p.col = 1;
      } else if ((static_cast<unsigned char>(src_[i]) & 0xc0) != 0x80) {
        ++p.col;
      }
    }
    cache_off_ = off;
    cache_pos_ = p;
    return p;
  }
  mutable size_t cache_off_ = 0;
  mutable Pos cache_pos_{1, 1};

  static bool ws_at(std::string_view s, size_t i, size_t* len) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      *len = 1;
      return py_isspace(c);
    }
    auto cps = utf8_decode(s.substr(i, std::min<size_t>(4, s.size() - i)));
    std::string first;
    utf8_append(first, cps[0]);
    *len = first.size();
    return py_isspace(cps[0]);
  }
  static bool all_ws(std::string_view s) {
    for (char32_t c : utf8_decode(s))
      if (!py_isspace(c)) return false;
    return true;
  }
  static std::string rstrip_ws(const std::string& s) {
    return py_strip(s, std::nullopt, false, true);
  }
  size_t skip_ws(size_t p) const {
    size_t len = 1;
    while (p < src_.size() && ws_at(src_, p, &len)) p += len;
    return p;
  }

  size_t find_open(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return std::string::npos;
  }

  void emit_data(std::string text, size_t off) {
    if (text.empty()) return;
    tokens_.push_back(Token{Tok::Data, std::move(text), Value(), pos_of(off)});
  }

  size_t lex_comment(size_t body, size_t start, bool& line_starting) {
    size_t end = src_.find("#}", body);
    if (end == std::string::npos) syntax_error("missing end of comment tag", pos_of(start));
    size_t after = end + 2;
    if (end > body && src_[end - 1] == '-') {
      size_t p = skip_ws(after);
      line_starting = p > after && src_[p - 1] == '\n';
      return p;
    }
    if (end > body && src_[end - 1] == '+') {
      line_starting = false;
      return after;
    }
    if (after < src_.size() && src_[after] == '\n') {
      line_starting = true;
      return after + 1;
    }
    line_starting = false;
    return after;
  }

  bool is_raw(size_t body) const {
    size_t p = skip_ws(body);
    if (src_.compare(p, 3, "raw") != 0) return false;
    size_t q = skip_ws(p + 3);
    return src_.compare(q, 2, "%}") == 0 || src_.compare(q, 3, "-%}") == 0;
  }

  size_t lex_raw(size_t start, bool& line_starting) {
    size_t p = skip_ws(src_.find("raw", start) + 3);
    if (src_[p] == '-') {
      p = skip_ws(p + 3);
    } else {
      p += 2;
      if (p < src_.size() && src_[p] == '\n') ++p;
    }
    // Find {% endraw %} with optional whitespace control.
    size_t search = p;
    while (true) {
      size_t open = src_.find("{%", search);
      if (open == std::string::npos) syntax_error("missing end of raw directive", pos_of(start));
      size_t q = open + 2;
      char sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : '\0';
      if (sign) ++q;
      q = skip_ws(q);
      if (src_.compare(q, 6, "endraw") == 0) {
        size_t r = skip_ws(q + 6);
        size_t end;
        bool ls = false;
        if (src_.compare(r, 3, "-%}") == 0) {
          end = skip_ws(r + 3);
          ls = end > r + 3 && src_[end - 1] == '\n';
        } else if (src_.compare(r, 3, "+%}") == 0) {
          end = r + 3;
        } else if (src_.compare(r, 2, "%}") == 0) {
          end = r + 2;
          if (end < src_.size() && src_[end] == '\n') {
            ++end;
            ls = true;
          }
        } else {
          search = open + 2;
          continue;
        }
        std::string text = src_.substr(p, open - p);
        if (sign == '-') {
          text = rstrip_ws(text);
        } else if (sign != '+') {
          size_t l_pos = text.rfind('\n');
          l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
          if (l_pos > 0) {
            std::string_view tail(text.data() + l_pos, text.size() - l_pos);
            if (!tail.empty() && all_ws(tail)) text.resize(l_pos);
          }
        }
        emit_data(text, p);
        line_starting = ls;
        return end;
      }
      search = open + 2;
    }
  }

  size_t lex_tag(size_t p, size_t start, bool block, bool& line_starting) {
    tokens_.push_back(Token{block ? Tok::BlockBegin : Tok::VarBegin, "", Value(), pos_of(start)});
    std::vector<char> stack;
    const size_t n = src_.size();
    while (true) {
      p = skip_ws(p);
      if (p >= n)
        syntax_error(block ? "unexpected end of template, expected '%}'"
                           : "unexpected end of template, expected '}}'",
                     pos_of(start));
      if (stack.empty()) {
        if (block) {
          if (src_.compare(p, 3, "-%}") == 0) {
            tokens_.push_back(Token{Tok::BlockEnd, "", Value(), pos_of(p)});
            size_t q = skip_ws(p + 3);
            line_starting = q > p + 3 && src_[q - 1] == '\n';
            return q;
          }
          if (src_.compare(p, 3, "+%}") == 0) {
            tokens_.push_back(Token{Tok::BlockEnd, "", Value(), pos_of(p)});
            line_starting = false;
            return p + 3;
          }
          if (src_.compare(p, 2, "%}") == 0) {
            tokens_.push_back(Token{Tok::BlockEnd, "", Value(), pos_of(p)});
            if (p + 2 < n && src_[p + 2] == '\n') {
              line_starting = true;
              return p + 3;
            }
            line_starting = false;
            return p + 2;
          }
        } else {
          if (src_.compare(p, 3, "-}}") == 0) {
            tokens_.push_back(Token{Tok::VarEnd, "", Value(), pos_of(p)});
            size_t q = skip_ws(p + 3);
            line_starting = q > p + 3 && src_[q - 1] == '\n';
            return q;
          }
          if (src_.compare(p, 2, "}}") == 0) {
            tokens_.push_back(Token{Tok::VarEnd, "", Value(), pos_of(p)});
            line_starting = false;
            return p + 2;
          }
        }
      }
      p = lex_token(p, stack);
    }
  }

  size_t lex_token(size_t p, std::vector<char>& stack) {
    const size_t n = src_.size();
    Pos at = pos_of(p);
    char c = src_[p];
    auto isdig = [&](size_t i) { return i < n && src_[i] >= '0' && src_[i] <= '9'; };
    if (isdig(p)) {
      // digits with optional '_' separators, then optional fraction / exponent.
      auto digits = [&](size_t i) {
        size_t j = i;
        while (isdig(j) || (src_[j] == '_' && j > i && isdig(j + 1))) ++j;
        return j;
      };
      size_t q = digits(p);
      bool is_float = false;
      if (q < n && src_[q] == '.' && isdig(q + 1)) {
        q = digits(q + 1);
        is_float = true;
      }
      if (q < n && (src_[q] == 'e' || src_[q] == 'E')) {
        size_t r = q + 1;
        if (r < n && (src_[r] == '+' || src_[r] == '-')) ++r;
        if (isdig(r)) {
          q = digits(r);
          is_float = true;
        }
      }
      std::string lit;
      for (size_t i = p; i < q; ++i)
        if (src_[i] != '_') lit += src_[i];
      Token t{is_float ? Tok::Float : Tok::Int, lit, Value(), at};
      if (is_float) {
        t.num = Value(std::strtod(lit.c_str(), nullptr));
      } else {
        int64_t v = 0;
        auto r = std::from_chars(lit.data(), lit.data() + lit.size(), v);
        if (r.ec != std::errc()) syntax_error("integer literal too large", at);
        t.num = Value(v);
      }
      tokens_.push_back(std::move(t));
      return q;
    }
    if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      size_t q = p;
      while (q < n && (src_[q] == '_' || (src_[q] >= 'a' && src_[q] <= 'z') ||
                       (src_[q] >= 'A' && src_[q] <= 'Z') || (src_[q] >= '0' && src_[q] <= '9')))
        ++q;
      tokens_.push_back(Token{Tok::Name, src_.substr(p, q - p), Value(), at});
      return q;
    }
    if (c == '\'' || c == '"') return lex_string(p, at);
    static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                "/",  "%",  "~",  "<",  ">",  "=",  ".", ",", ":",
                                "|",  "(",  ")",  "[",  "]",  "{",  "}"};
    for (const char* op : ops) {
      size_t len = std::strlen(op);
      if (src_.compare(p, len, op) == 0) {
        if (len == 1 && (c == '(' || c == '[' || c == '{')) {
          stack.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
          if (stack.size() > static_cast<size_t>(kMaxNesting))
            syntax_error("brackets nested too deeply", at);
        } else if (len == 1 && (c == ')' || c == ']' || c == '}')) {
          if (stack.empty()) syntax_error(fmt::format("unexpected '{}'", c), at);
          if (stack.back() != c)
            syntax_error(fmt::format("unexpected '{}', expected '{}'", c, stack.back()), at);
          stack.pop_back();
        }
        tokens_.push_back(Token{Tok::Op, op, Value(), at});
        return p + len;
      }
    }
    syntax_error(fmt::format("unexpected char '{}'", c), at);
  }

  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // String literal, decoded like Python's unicode-escape codec.
  size_t lex_string(size_t p, Pos at) {
    char q = src_[p];
    size_t i = p + 1;
    std::string out;
    const size_t n = src_.size();
    while (true) {
      if (i >= n) syntax_error("unexpected end of string", at);
      char c = src_[i];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= n) syntax_error("unexpected end of string", at);
      char e = src_[i + 1];
      i += 2;
      switch (e) {
        case '\n':
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          int len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (int k = 0; k < len; ++k) {
            int h = i + k < n ? hexval(src_[i + k]) : -1;
            if (h < 0) syntax_error(fmt::format("truncated \\{} escape in string", e), at);
            cp = cp * 16 + static_cast<char32_t>(h);
          }
          if (cp > 0x10ffff) syntax_error("illegal Unicode character in string", at);
          i += len;
          utf8_append(out, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i < n && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i)
              cp = cp * 8 + static_cast<char32_t>(src_[i] - '0');
            utf8_append(out, cp);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    tokens_.push_back(Token{Tok::String, std::move(out), Value(), at});
    return i + 1;
  }
};

// ---------------------------------------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  std::shared_ptr<const Program> run() {
    auto prog = std::make_shared<Program>();
    prog->body = parse_body({});
    if (cur().type != Tok::Eof) syntax_error("unexpected tag", cur().pos);
    return prog;
  }

 private:
  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxNesting) syntax_error("template nested too deeply", p_.cur().pos);
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  Token next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == Tok::Name && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Eof:
        return "end of template";
      case Tok::BlockEnd:
        return "end of statement block";
      case Tok::VarEnd:
        return "end of print statement";
      case Tok::Data:
        return "template data";
      case Tok::String:
        return "string";
      default:
        return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op))
      syntax_error(fmt::format("expected '{}', got {}", op, describe(cur())), cur().pos);
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) syntax_error("expected name, got " + describe(cur()), cur().pos);
    return next().text;
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd)
      syntax_error("expected end of statement block, got " + describe(cur()), cur().pos);
    next();
  }

  // Parses statements until a block tag whose name is in `ends` (left unconsumed: the cursor
  // stays on the tag name, after the BlockBegin).
  Body parse_body(const std::vector<std::string>& ends) {
    DepthGuard g(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::Eof) {
        if (!ends.empty())
          syntax_error(fmt::format("unexpected end of template, expected '{}'", ends.front()),
                       t.pos);
        return body;
      }
      if (t.type == Tok::Data) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Output;
        s->pos = t.pos;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == Tok::VarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Print;
        s->pos = t.pos;
        next();
        s->expr = parse_tuple(true);
        if (cur().type != Tok::VarEnd)
          syntax_error("expected end of print statement, got " + describe(cur()), cur().pos);
        next();
        body.push_back(std::move(s));
      } else if (t.type == Tok::BlockBegin) {
        const Token& name = peek();
        if (name.type != Tok::Name) syntax_error("tag name expected", name.pos);
        for (const auto& e : ends) {
          if (name.text == e) {
            next();
            return body;
          }
        }
        next();
        body.push_back(parse_statement());
      } else {
        syntax_error("unexpected " + describe(t), t.pos);
      }
    }
  }

  StmtPtr parse_statement() {
    Token tag = next();
    const std::string& n = tag.text;
    auto s = std::make_unique<Stmt>();
    s->pos = tag.pos;
    if (n == "if") {
      s->kind = StmtKind::If;
      s->conds.push_back(parse_tuple(false));
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}));
        std::string which = next().text;
        if (which == "elif") {
          s->conds.push_back(parse_tuple(false));
          expect_block_end();
        } else if (which == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"});
          next();
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (n == "for") {
      s->kind = StmtKind::For;
      s->targets = parse_targets();
      if (!skip_name("in")) syntax_error("expected 'in', got " + describe(cur()), cur().pos);
      s->expr = parse_tuple(false);
      if (skip_name("if")) s->cond = parse_expression(true);
      if (skip_name("recursive")) s->recursive = true;
      expect_block_end();
      s->body = parse_body({"endfor", "else"});
      if (next().text == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"});
        next();
      }
      expect_block_end();
    } else if (n == "set") {
      Pos p = cur().pos;
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "." &&
          peek(2).type == Tok::Name) {
        s->targets.push_back(next().text);
        next();
        s->target_attr = next().text;
      } else {
        s->targets = parse_targets();
      }
      if (skip_op("=")) {
        s->kind = StmtKind::Set;
        s->expr = parse_tuple(true);
        expect_block_end();
      } else {
        if (!s->target_attr.empty() || s->targets.size() != 1)
          syntax_error("block set needs a single name target", p);
        s->kind = StmtKind::SetBlock;
        if (is_op("|")) s->filter = parse_filter_chain(nullptr);
        expect_block_end();
        s->body = parse_body({"endset"});
        next();
        expect_block_end();
      }
    } else if (n == "macro") {
      s->kind = StmtKind::Macro;
      s->name = expect_name();
      parse_signature(*s);
      expect_block_end();
      s->body = parse_body({"endmacro"});
      next();
      if (cur().type == Tok::Name) next();
      expect_block_end();
    } else if (n == "call") {
      s->kind = StmtKind::CallBlock;
      if (is_op("(")) parse_signature(*s);
      s->expr = parse_expression(true);
      if (s->expr->kind != ExprKind::Call) syntax_error("expected call", s->pos);
      expect_block_end();
      s->body = parse_body({"endcall"});
      next();
      expect_block_end();
    } else if (n == "filter") {
      s->kind = StmtKind::FilterBlock;
      s->filter = parse_filter_chain(nullptr, /*leading_pipe=*/false);
      expect_block_end();
      s->body = parse_body({"endfilter"});
      next();
      expect_block_end();
    } else if (n == "with") {
      s->kind = StmtKind::With;
      while (cur().type != Tok::BlockEnd) {
        if (!s->targets.empty()) expect_op(",");
        s->targets.push_back(expect_name());
        expect_op("=");
        s->values.push_back(parse_expression(true));
      }
      expect_block_end();
      s->body = parse_body({"endwith"});
      next();
      expect_block_end();
    } else if (n == "generation") {
      s->kind = StmtKind::Generation;
      expect_block_end();
      s->body = parse_body({"endgeneration"});
      next();
      expect_block_end();
    } else if (n == "break" || n == "continue") {
      s->kind = n == "break" ? StmtKind::Break : StmtKind::Continue;
      expect_block_end();
    } else if (n == "include" || n == "extends" || n == "import" || n == "from" || n == "block" ||
               n == "autoescape" || n == "trans") {
      throw TemplateError(fmt::format("unsupported template construct: '{}' tag", n), tag.pos.line,
                          tag.pos.col);
    } else {
      syntax_error(fmt::format("encountered unknown tag '{}'", n), tag.pos);
    }
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      if (is_op(")")) break;
      s.params.push_back(expect_name());
      if (skip_op("=")) {
        s.defaults.push_back(parse_expression(true));
      } else {
        if (!s.defaults.empty() && s.defaults.back())
          syntax_error("non-default argument follows default argument", cur().pos);
        s.defaults.push_back(nullptr);
      }
    }
    next();
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    while (true) {
      names.push_back(expect_name());
      if (!skip_op(",")) break;
      if (cur().type != Tok::Name) break;
    }
    if (paren) expect_op(")");
    return names;
  }

  // ---- expressions ----

  ExprPtr make(ExprKind k, Pos p) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = p;
    return e;
  }

  // A comma-separated expression list becomes a tuple, as jinja's parse_tuple does.
  ExprPtr parse_tuple(bool with_condexpr) {
    Pos p = cur().pos;
    auto first = with_condexpr ? parse_expression(true) : parse_or();
    if (!is_op(",")) return first;
    auto t = make(ExprKind::Tuple, p);
    t->children.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) break;
      if (is_name("if") || is_name("recursive")) break;
      t->children.push_back(with_condexpr ? parse_expression(true) : parse_or());
    }
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard g(*this);
    if (!with_condexpr) return parse_or();
    Pos p = cur().pos;
    auto expr = parse_or();
    while (is_name("if")) {
      next();
      auto cond = make(ExprKind::Cond, p);
      auto test = parse_or();
      ExprPtr other;
      if (skip_name("else")) other = parse_expression(true);
      cond->children.push_back(std::move(test));
      cond->children.push_back(std::move(expr));
      cond->children.push_back(std::move(other));
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr parse_or() {
    auto left = parse_and();
    while (is_name("or")) {
      Pos p = next().pos;
      auto e = make(ExprKind::Or, p);
      e->children.push_back(std::move(left));
      e->children.push_back(parse_and());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_and() {
    auto left = parse_not();
    while (is_name("and")) {
      Pos p = next().pos;
      auto e = make(ExprKind::And, p);
      e->children.push_back(std::move(left));
      e->children.push_back(parse_not());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard g(*this);
      Pos p = next().pos;
      auto e = make(ExprKind::Unary, p);
      e->name = "not";
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    Pos p = cur().pos;
    auto expr = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == Tok::Op &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" ||
           cur().text == "<=" || cur().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(ExprKind::Compare, p);
        cmp->children.push_back(std::move(expr));
      }
      cmp->ops.push_back(op);
      cmp->children.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(expr);
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, Pos p) {
    auto e = make(ExprKind::Binary, p);
    e->name = op;
    e->children.push_back(std::move(l));
    e->children.push_back(std::move(r));
    return e;
  }

  ExprPtr parse_math1() {
    auto left = parse_concat();
    while (is_op("+") || is_op("-")) {
      Token op = next();
      left = binary(op.text, std::move(left), parse_concat(), op.pos);
    }
    return left;
  }

  ExprPtr parse_concat() {
    auto left = parse_math2();
    while (is_op("~")) {
      Token op = next();
      left = binary("~", std::move(left), parse_math2(), op.pos);
    }
    return left;
  }

  ExprPtr parse_math2() {
    auto left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      Token op = next();
      left = binary(op.text, std::move(left), parse_pow(), op.pos);
    }
    return left;
  }

  ExprPtr parse_pow() {
    auto left = parse_unary(true);
    while (is_op("**")) {
      Token op = next();
      left = binary("**", std::move(left), parse_unary(true), op.pos);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard g(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      Token op = next();
      node = make(ExprKind::Unary, op.pos);
      node->name = op.text;
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    Pos p = t.pos;
    if (t.type == Tok::Name) {
      std::string n = next().text;
      if (n == "true" || n == "True" || n == "false" || n == "False") {
        auto e = make(ExprKind::Literal, p);
        e->value = Value(n == "true" || n == "True");
        return e;
      }
      if (n == "none" || n == "None") {
        auto e = make(ExprKind::Literal, p);
        e->value = Value(nullptr);
        return e;
      }
      auto e = make(ExprKind::Name, p);
      e->name = n;
      return e;
    }
    if (t.type == Tok::String) {
      std::string s;
      while (cur().type == Tok::String) s += next().text;
      auto e = make(ExprKind::Literal, p);
      e->value = Value(std::move(s));
      return e;
    }
    if (t.type == Tok::Int || t.type == Tok::Float) {
      auto e = make(ExprKind::Literal, p);
      e->value = next().num;
      return e;
    }
    if (is_op("(")) {
      next();
      if (is_op(")")) {
        next();
        auto e = make(ExprKind::Tuple, p);
        return e;
      }
      auto first = parse_expression(true);
      if (is_op(",")) {
        auto tup = make(ExprKind::Tuple, p);
        tup->children.push_back(std::move(first));
        while (skip_op(",")) {
          if (is_op(")")) break;
          tup->children.push_back(parse_expression(true));
        }
        expect_op(")");
        return tup;
      }
      expect_op(")");
      return first;
    }
    if (is_op("[")) {
      next();
      auto e = make(ExprKind::List, p);
      while (!is_op("]")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("]")) break;
        e->children.push_back(parse_expression(true));
      }
      next();
      return e;
    }
    if (is_op("{")) {
      next();
      auto e = make(ExprKind::Dict, p);
      while (!is_op("}")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("}")) break;
        e->children.push_back(parse_expression(true));
        expect_op(":");
        e->children.push_back(parse_expression(true));
      }
      next();
      return e;
    }
    syntax_error("unexpected " + describe(t), p);
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        Pos p = next().pos;
        if (cur().type == Tok::Name) {
          auto e = make(ExprKind::Attr, p);
          e->name = next().text;
          e->children.push_back(std::move(node));
          node = std::move(e);
        } else if (cur().type == Tok::Int) {
          auto e = make(ExprKind::Item, p);
          e->children.push_back(std::move(node));
          auto lit = make(ExprKind::Literal, cur().pos);
          lit->value = next().num;
          e->children.push_back(std::move(lit));
          node = std::move(e);
        } else {
          syntax_error("expected name or number after '.'", cur().pos);
        }
      } else if (is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    Pos p = next().pos;
    ExprPtr parts[3];
    int idx = 0;
    bool is_slice = false;
    while (!is_op("]")) {
      if (is_op(":")) {
        next();
        is_slice = true;
        if (++idx > 2) syntax_error("too many ':' in slice", cur().pos);
        continue;
      }
      if (parts[idx]) syntax_error("expected ']' in subscript", cur().pos);
      parts[idx] = parse_expression(true);
      if (is_op(",")) syntax_error("tuple subscripts are not supported", cur().pos);
    }
    next();
    if (!is_slice) {
      if (!parts[0]) syntax_error("expected subscript expression", p);
      auto e = make(ExprKind::Item, p);
      e->children.push_back(std::move(node));
      e->children.push_back(std::move(parts[0]));
      return e;
    }
    auto e = make(ExprKind::Slice, p);
    e->children.push_back(std::move(node));
    for (auto& part : parts) e->children.push_back(std::move(part));
    return e;
  }

  void parse_args(Expr& e) {
    expect_op("(");
    bool kw_seen = false;
    while (!is_op(")")) {
      if (e.children.size() > 1 || !e.kwargs.empty()) expect_op(",");
      if (is_op(")")) break;
      if (is_op("*") || is_op("**"))
        throw TemplateError("unsupported template construct: *args/**kwargs in calls",
                            cur().pos.line, cur().pos.col);
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string k = next().text;
        next();
        e.kwargs.emplace_back(k, parse_expression(true));
        kw_seen = true;
      } else {
        if (kw_seen) syntax_error("positional argument follows keyword argument", cur().pos);
        e.children.push_back(parse_expression(true));
      }
    }
    next();
  }

  ExprPtr parse_call(ExprPtr node) {
    auto e = make(ExprKind::Call, cur().pos);
    e->children.push_back(std::move(node));
    parse_args(*e);
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter_chain(std::move(node));
      } else if (is_name("is")) {
        Pos p = next().pos;
        auto e = make(ExprKind::Test, p);
        if (skip_name("not")) e->negated = true;
        e->name = expect_name();
        while (is_op(".")) {
          next();
          e->name += '.';
          e->name += expect_name();
        }
        e->children.push_back(std::move(node));
        if (is_op("(")) {
          parse_args(*e);
        } else if ((cur().type == Tok::Name || cur().type == Tok::String ||
                    cur().type == Tok::Int || cur().type == Tok::Float || is_op("[") ||
                    is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) syntax_error("you cannot chain multiple tests with is", cur().pos);
          auto arg = parse_postfix(parse_primary());
          e->children.push_back(std::move(arg));
        }
        node = std::move(e);
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  // Parses "| name(args) | name ..." (leading pipe optional for {% filter %}).
  ExprPtr parse_filter_chain(ExprPtr node, bool leading_pipe = true) {
    bool first = true;
    while (first ? (!leading_pipe || is_op("|")) : is_op("|")) {
      if (!first || leading_pipe) next();
      first = false;
      Pos p = cur().pos;
      auto e = make(ExprKind::Filter, p);
      e->name = expect_name();
      while (is_op(".")) {
        next();
        e->name += '.';
        e->name += expect_name();
      }
      e->children.push_back(std::move(node));
      if (is_op("(")) parse_args(*e);
      node = std::move(e);
    }
    return node;
  }
};

}  // namespace

std::shared_ptr<const Program> parse_template(std::string_view source) {
  Lexer lexer(source);
  Parser parser(lexer.run());
  return parser.run();
}

}  // namespace ominix::text::detail
