// ref: FunASR funasr/frontends/wav_frontend.py load_cmvn (the numbers between "[" and "]" on the
// <LearnRateCoef> line after <AddShift> and after <Rescale>) and apply_cmvn ((x + means) * vars).
#include "ominix/audio/cmvn.h"

#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include <mlx/ops.h>

#include "ominix/base/error.h"

namespace ominix::audio {

namespace {

struct Tokens {
  std::vector<std::string_view> items;
  std::size_t pos = 0;
  bool done() const { return pos >= items.size(); }
};

Tokens tokenize(std::string_view text) {
  Tokens t;
  std::size_t i = 0;
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  while (i < text.size()) {
    while (i < text.size() && space(text[i])) ++i;
    std::size_t j = i;
    while (j < text.size() && !space(text[j])) ++j;
    if (j > i) t.items.push_back(text.substr(i, j - i));
    i = j;
  }
  return t;
}

template <typename T>
std::optional<T> number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "<Component> out in  <LearnRateCoef> c  [ v1 ... vout ]" -> the values.
std::vector<float> component(Tokens& t, std::string_view name, const std::string& where) {
  auto next = [&](std::string_view what) {
    if (t.done()) fail<FormatError>("{}: {} ends before its {}", where, name, what);
    return t.items[t.pos++];
  };
  auto out_tok = next("dimensions"), in_tok = next("dimensions");
  auto out = number<int>(out_tok), in = number<int>(in_tok);
  if (!out || !in || *out < 1 || *out != *in) {
    fail<FormatError>("{}: {} must be followed by two equal positive dimensions, got '{}' '{}'",
                      where, name, out_tok, in_tok);
  }
  auto coef = next("<LearnRateCoef>");
  if (coef != "<LearnRateCoef>") {
    fail<FormatError>("{}: expected <LearnRateCoef> after {} {} {}, got '{}'", where, name, *out,
                      *in, coef);
  }
  auto rate = next("learning rate");
  if (!number<float>(rate)) {
    fail<FormatError>("{}: {} <LearnRateCoef> '{}' is not a number", where, name, rate);
  }
  auto open = next("'['");
  if (open != "[")
    fail<FormatError>("{}: expected '[' before the {} values, got '{}'", where, name, open);
  std::vector<float> values;
  values.reserve(*out);
  while (true) {
    auto tok = next("closing ']'");
    if (tok == "]") break;
    auto v = number<float>(tok);
    if (!v) {
      fail<FormatError>("{}: {} value {} '{}' is not a number", where, name, values.size() + 1,
                        tok);
    }
    values.push_back(*v);
  }
  if (static_cast<int>(values.size()) != *out) {
    fail<FormatError>("{}: {} declares {} values but lists {}", where, name, *out, values.size());
  }
  return values;
}

}  // namespace

Cmvn parse_cmvn(std::string_view text, const std::string& where) {
  auto t = tokenize(text);
  std::optional<std::vector<float>> shift, scale;
  while (!t.done()) {
    auto tok = t.items[t.pos++];
    if (tok == "<AddShift>") {
      if (shift) fail<FormatError>("{}: more than one <AddShift> component", where);
      shift = component(t, "<AddShift>", where);
    } else if (tok == "<Rescale>") {
      if (scale) fail<FormatError>("{}: more than one <Rescale> component", where);
      scale = component(t, "<Rescale>", where);
    }
  }
  if (!shift) fail<FormatError>("{}: no <AddShift> component (not a CMVN file?)", where);
  if (!scale) fail<FormatError>("{}: no <Rescale> component (not a CMVN file?)", where);
  if (shift->size() != scale->size()) {
    fail<FormatError>("{}: <AddShift> has {} values but <Rescale> {}", where, shift->size(),
                      scale->size());
  }
  const int D = static_cast<int>(shift->size());
  return {mx::array(shift->data(), {D}, mx::float32), mx::array(scale->data(), {D}, mx::float32)};
}

Cmvn load_cmvn(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail<IoError>("{}: cannot open CMVN file: is a directory", path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<IoError>("{}: cannot open CMVN file", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail<IoError>("{}: cannot read CMVN file", path.string());
  return parse_cmvn(text.str(), path.string());
}

mx::array apply_cmvn(const mx::array& features, const Cmvn& cmvn) {
  const int D = cmvn.shift.shape(0);
  if (features.ndim() != 2 || features.shape(1) != D) {
    fail<InvalidArgument>(
        "apply_cmvn: features must be [T, {}] for this CMVN, got {} dimensions "
        "with last {}",
        D, features.ndim(), features.ndim() ? features.shape(-1) : 0);
  }
  return (features + cmvn.shift) * cmvn.scale;
}

}  // namespace ominix::audio
