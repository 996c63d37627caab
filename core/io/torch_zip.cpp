// PyTorch zip checkpoint reader: the zip central directory (stored entries), a restricted
// unpickler for data.pkl, and tensors rebuilt from data/<key> storages.
// ref: pytorch v2.5 torch/serialization.py (_save: persistent_id tuples
//      ('storage', storage_type, key, location, numel)), torch/_utils.py (_rebuild_tensor_v2).
#include "ominix/io/torch_zip.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <mlx/ops.h>

#include "ominix/base/error.h"

namespace ominix::io {

namespace {

constexpr std::size_t kMaxRank = 16;
constexpr int kMaxDepth = 64;                    // nesting of dicts walked for tensors
constexpr std::size_t kMaxNesting = 1000;        // of any pickled values (destroyed recursively)
constexpr std::uint64_t kMaxVisits = 1u << 20;   // dict entries walked (shared dicts repeat)
constexpr std::uint64_t kMaxEntries = 1u << 22;  // zip entries
constexpr std::uint64_t kMaxPickleBytes = 1ull << 30;

std::uint64_t le(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// ---- zip -----------------------------------------------------------------------------------

struct ZipEntry {
  std::uint64_t data_offset = 0;  // of the entry's bytes in the file
  std::uint64_t size = 0;
};

class ZipFile {
 public:
  explicit ZipFile(const std::filesystem::path& path)
      : file_(path.string()), in_(path, std::ios::binary) {
    if (!in_) fail<IoError>("{}: cannot open", file_);
    std::error_code ec;
    size_ = std::filesystem::file_size(path, ec);
    if (ec) fail<IoError>("{}: cannot read size: {}", file_, ec.message());
    read_directory();
  }

  const std::string& file() const { return file_; }
  const std::map<std::string, ZipEntry>& entries() const { return entries_; }

  // Reads `n` bytes at `offset`, which must lie inside the file.
  std::vector<unsigned char> read(std::uint64_t offset, std::uint64_t n, const char* what) {
    if (offset > size_ || n > size_ - offset)
      fail<FormatError>("{}: truncated zip: {} at byte {} (+{}) past the end ({} bytes)", file_,
                        what, offset, n, size_);
    std::vector<unsigned char> buf(n);
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    if (n > 0) in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
    if (!in_) fail<IoError>("{}: read error at byte {}", file_, offset);
    return buf;
  }

  // Reads an entry's bytes into `dst` (which has room for entry.size bytes).
  void read_into(const ZipEntry& e, char* dst) {
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(e.data_offset));
    if (e.size > 0) in_.read(dst, static_cast<std::streamsize>(e.size));
    if (!in_) fail<IoError>("{}: read error at byte {}", file_, e.data_offset);
  }

 private:
  void read_directory() {
    if (size_ < 22) fail<FormatError>("{}: not a zip file ({} bytes, no end record)", file_, size_);
    // End of central directory: 22 bytes plus a comment of up to 65535 bytes.
    const std::uint64_t tail_len = std::min<std::uint64_t>(size_, 22 + 65535);
    const auto tail = read(size_ - tail_len, tail_len, "end record");
    std::optional<std::uint64_t> eocd;
    for (std::uint64_t i = tail_len - 22 + 1; i-- > 0;) {
      if (le(&tail[i], 4) == 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (!eocd) fail<FormatError>("{}: not a zip file (no end of central directory record)", file_);
    const unsigned char* e = &tail[*eocd];
    std::uint64_t count = le(e + 10, 2), cd_size = le(e + 12, 4), cd_offset = le(e + 16, 4);
    const std::uint64_t eocd_pos = size_ - tail_len + *eocd;
    if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
      if (eocd_pos < 20) fail<FormatError>("{}: zip64 locator missing", file_);
      const auto loc = read(eocd_pos - 20, 20, "zip64 locator");
      if (le(loc.data(), 4) != 0x07064b50) fail<FormatError>("{}: zip64 locator missing", file_);
      const auto z = read(le(loc.data() + 8, 8), 56, "zip64 end record");
      if (le(z.data(), 4) != 0x06064b50) fail<FormatError>("{}: bad zip64 end record", file_);
      count = le(z.data() + 32, 8), cd_size = le(z.data() + 40, 8),
      cd_offset = le(z.data() + 48, 8);
    }
    if (count > kMaxEntries) fail<FormatError>("{}: implausible zip entry count {}", file_, count);
    const auto cd = read(cd_offset, cd_size, "central directory");
    std::uint64_t pos = 0;
    for (std::uint64_t k = 0; k < count; ++k) {
      if (cd_size - pos < 46 || le(&cd[pos], 4) != 0x02014b50)
        fail<FormatError>("{}: corrupt zip central directory at entry {}", file_, k);
      const unsigned char* h = &cd[pos];
      const std::uint64_t method = le(h + 10, 2), name_len = le(h + 28, 2),
                          extra_len = le(h + 30, 2), comment_len = le(h + 32, 2);
      std::uint64_t csize = le(h + 20, 4), usize = le(h + 24, 4), local = le(h + 42, 4);
      if (cd_size - pos - 46 < name_len + extra_len + comment_len)
        fail<FormatError>("{}: corrupt zip central directory at entry {}", file_, k);
      std::string name(reinterpret_cast<const char*>(h + 46), name_len);
      // Zip64 extended information: the 64-bit values of the fields set to 0xFFFFFFFF, in order.
      const unsigned char* x = h + 46 + name_len;
      for (std::uint64_t xp = 0; xp + 4 <= extra_len;) {
        const std::uint64_t id = le(x + xp, 2), len = le(x + xp + 2, 2);
        if (xp + 4 + len > extra_len) break;
        if (id == 0x0001) {
          std::uint64_t q = xp + 4;
          auto take = [&](std::uint64_t& v) {
            if (v != 0xFFFFFFFF) return;
            if (q + 8 > xp + 4 + len)
              fail<FormatError>("{}: bad zip64 field for '{}'", file_, name);
            v = le(x + q, 8), q += 8;
          };
          take(usize), take(csize), take(local);
        }
        xp += 4 + len;
      }
      pos += 46 + name_len + extra_len + comment_len;
      if (method != 0)
        fail<FormatError>(
            "{}: zip entry '{}' is compressed (method {}); only stored entries are read", file_,
            name, method);
      if (csize != usize)
        fail<FormatError>("{}: zip entry '{}' is stored but its sizes differ", file_, name);
      const auto lh = read(local, 30, "local header");
      if (le(lh.data(), 4) != 0x04034b50)
        fail<FormatError>("{}: bad local header for zip entry '{}'", file_, name);
      const std::uint64_t data = local + 30 + le(lh.data() + 26, 2) + le(lh.data() + 28, 2);
      if (data > size_ || usize > size_ - data)
        fail<FormatError>("{}: truncated zip: entry '{}' ends past the end of the file", file_,
                          name);
      entries_[name] = ZipEntry{data, usize};
    }
  }

  std::string file_;
  std::ifstream in_;
  std::uint64_t size_ = 0;
  std::map<std::string, ZipEntry> entries_;
};

// ---- pickle --------------------------------------------------------------------------------

enum class Kind {
  none,
  boolean,
  integer,
  real,
  string,
  tuple,
  list,
  dict,
  global,
  storage,
  tensor
};

struct Value;
using Ref = std::shared_ptr<Value>;

struct Value {
  Kind kind = Kind::none;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;                          // string, bytes, global "module.name"
  std::vector<Ref> items;                    // tuple, list
  std::vector<std::pair<Ref, Ref>> entries;  // dict
  std::optional<mx::array> array;            // storage ([numel]) or tensor
  std::size_t depth = 1;                     // containers nested in this one, itself included
};

Ref make(Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

struct StorageType {
  const char* name;
  mx::Dtype dtype;
};
constexpr StorageType kStorages[] = {
    {"FloatStorage", mx::float32},     {"DoubleStorage", mx::float64}, {"HalfStorage", mx::float16},
    {"BFloat16Storage", mx::bfloat16}, {"LongStorage", mx::int64},     {"IntStorage", mx::int32},
    {"ShortStorage", mx::int16},       {"CharStorage", mx::int8},      {"ByteStorage", mx::uint8},
    {"BoolStorage", mx::bool_},
};

std::optional<mx::Dtype> storage_dtype(const std::string& global) {
  for (const auto& s : kStorages)
    if (global == std::string("torch.") + s.name) return s.dtype;
  return std::nullopt;
}

bool allowed_global(const std::string& g) {
  return g == "collections.OrderedDict" || g == "torch._utils._rebuild_tensor_v2" ||
         g == "torch._utils._rebuild_parameter" || storage_dtype(g).has_value();
}

class Unpickler {
 public:
  Unpickler(ZipFile& zip, std::string prefix, std::vector<unsigned char> bytes)
      : zip_(zip), prefix_(std::move(prefix)), p_(std::move(bytes)) {}

  Ref run() {
    for (;;) {
      if (pos_ >= p_.size()) bad("truncated: no STOP opcode");
      const std::size_t at = pos_;
      const unsigned char op = p_[pos_++];
      switch (op) {
        case 0x80:
          need(1), pos_ += 1;
          break;  // PROTO
        case 0x95:
          need(8), pos_ += 8;
          break;   // FRAME
        case '.':  // STOP
          if (stack_.size() != 1) bad("STOP with {} values on the stack", stack_.size());
          return stack_.back();
        case '(':
          marks_.push_back(stack_.size());
          break;
        case '}':
          push(make(Kind::dict));
          break;
        case ']':
          push(make(Kind::list));
          break;
        case ')':
          push(make(Kind::tuple));
          break;
        case 'N':
          push(make(Kind::none));
          break;
        case 0x88:
        case 0x89: {  // NEWTRUE, NEWFALSE
          auto v = make(Kind::boolean);
          v->integer = op == 0x88;
          push(v);
          break;
        }
        case 'K':
          push_int(static_cast<std::int64_t>(le(take(1), 1)));
          break;
        case 'M':
          push_int(static_cast<std::int64_t>(le(take(2), 2)));
          break;
        case 'J':
          push_int(static_cast<std::int32_t>(le(take(4), 4)));
          break;
        case 0x8a: {  // LONG1
          const std::size_t n = le(take(1), 1);
          if (n > 8) bad("LONG1 of {} bytes is out of range", n);
          const unsigned char* b = take(n);
          std::uint64_t u = le(b, static_cast<int>(n));
          if (n > 0 && n < 8 && (b[n - 1] & 0x80)) u |= ~std::uint64_t{0} << (8 * n);
          push_int(static_cast<std::int64_t>(u));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          const unsigned char* b = take(8);
          std::uint64_t u = 0;
          for (int i = 0; i < 8; ++i) u = (u << 8) | b[i];
          auto v = make(Kind::real);
          std::memcpy(&v->real, &u, 8);
          push(v);
          break;
        }
        case 'X':
          push_string(le(take(4), 4));
          break;  // BINUNICODE
        case 0x8c:
          push_string(le(take(1), 1));
          break;  // SHORT_BINUNICODE
        case 0x8d:
          push_string(le(take(8), 8));
          break;  // BINUNICODE8
        case 'T':
          push_string(le(take(4), 4));
          break;  // BINSTRING
        case 'U':
          push_string(le(take(1), 1));
          break;  // SHORT_BINSTRING
        case 'B':
          push_string(le(take(4), 4));
          break;  // BINBYTES
        case 'C':
          push_string(le(take(1), 1));
          break;  // SHORT_BINBYTES
        case 'q':
          memo_[le(take(1), 1)] = top();
          break;  // BINPUT
        case 'r':
          memo_[le(take(4), 4)] = top();
          break;  // LONG_BINPUT
        case 0x94:
          memo_[memo_.size()] = top();
          break;  // MEMOIZE
        case 'h':
          push(get(le(take(1), 1)));
          break;  // BINGET
        case 'j':
          push(get(le(take(4), 4)));
          break;     // LONG_BINGET
        case 't': {  // TUPLE
          auto v = make(Kind::tuple);
          v->items = pop_mark();
          for (const auto& x : v->items) nest(*v, x);
          push(v);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          auto v = make(Kind::tuple);
          v->items.resize(op - 0x84);
          for (auto it = v->items.rbegin(); it != v->items.rend(); ++it) nest(*v, *it = pop());
          push(v);
          break;
        }
        case 'a': {  // APPEND
          auto x = pop();
          auto l = list_at_top();
          nest(*l, x);
          l->items.push_back(x);
          break;
        }
        case 'e': {  // APPENDS
          auto xs = pop_mark();
          auto l = list_at_top();
          for (const auto& x : xs) nest(*l, x);
          l->items.insert(l->items.end(), xs.begin(), xs.end());
          break;
        }
        case 's': {  // SETITEM
          auto v = pop();
          auto k = pop();
          auto d = dict_at_top();
          nest(*d, k), nest(*d, v);
          d->entries.emplace_back(k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto xs = pop_mark();
          if (xs.size() % 2) bad("SETITEMS with an odd number of values");
          auto d = dict_at_top();
          for (std::size_t i = 0; i < xs.size(); i += 2) {
            nest(*d, xs[i]), nest(*d, xs[i + 1]);
            d->entries.emplace_back(xs[i], xs[i + 1]);
          }
          break;
        }
        case 'c': {  // GLOBAL module\nname\n
          std::string module = line(), name = line();
          global(module + "." + name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), module = pop();
          if (name->kind != Kind::string || module->kind != Kind::string)
            bad("STACK_GLOBAL needs two strings");
          global(module->text + "." + name->text);
          break;
        }
        case 'Q':
          push(persistent_load(pop()));
          break;     // BINPERSID
        case 'R': {  // REDUCE
          auto args = pop();
          auto fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 'b': {  // BUILD: state of an OrderedDict (its _metadata attribute) is dropped
          pop();
          if (top()->kind != Kind::dict && top()->kind != Kind::tensor)
            bad("BUILD on something other than a dict or tensor");
          break;
        }
        default:
          fail<FormatError>(
              "{}: data.pkl: pickle opcode 0x{:02x} ('{}') at byte {} is not allowed in a "
              "state dict",
              zip_.file(), op, (op >= 32 && op < 127) ? static_cast<char>(op) : '?', at);
      }
    }
  }

 private:
  template <typename... Args>
  [[noreturn]] void bad(fmt::format_string<Args...> f, Args&&... args) {
    throw FormatError(
        fmt::format("{}: data.pkl: {}", zip_.file(), fmt::format(f, std::forward<Args>(args)...)));
  }

  void need(std::size_t n) {
    if (n > p_.size() - pos_) bad("truncated at byte {}", pos_);
  }
  const unsigned char* take(std::size_t n) {
    need(n);
    const unsigned char* b = p_.data() + pos_;
    pos_ += n;
    return b;
  }
  std::string line() {
    const std::size_t start = pos_;
    while (pos_ < p_.size() && p_[pos_] != '\n') ++pos_;
    if (pos_ >= p_.size()) bad("truncated GLOBAL");
    return std::string(reinterpret_cast<const char*>(p_.data() + start), pos_++ - start);
  }

  void push(Ref v) { stack_.push_back(std::move(v)); }
  // `child` goes into `parent`: a bound on nesting keeps the values' (recursive) destruction
  // within the stack. A container put into itself only deepens by one level each time.
  void nest(Value& parent, const Ref& child) {
    parent.depth = std::max(parent.depth, child->depth + 1);
    if (parent.depth > kMaxNesting) bad("values nested deeper than {} levels", kMaxNesting);
  }
  void push_int(std::int64_t i) {
    auto v = make(Kind::integer);
    v->integer = i;
    push(v);
  }
  void push_string(std::uint64_t n) {
    auto v = make(Kind::string);
    const unsigned char* b = take(n);
    v->text.assign(reinterpret_cast<const char*>(b), n);
    push(v);
  }
  Ref top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) bad("stack underflow");
    return stack_.back();
  }
  Ref pop() {
    auto v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) bad("no MARK");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> xs(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return xs;
  }
  Ref get(std::uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) bad("memo key {} not set", k);
    return it->second;
  }
  Ref list_at_top() {
    auto l = top();
    if (l->kind != Kind::list) bad("APPEND to a non-list");
    return l;
  }
  Ref dict_at_top() {
    auto d = top();
    if (d->kind != Kind::dict) bad("SETITEM on a non-dict");
    return d;
  }

  void global(const std::string& name) {
    if (!allowed_global(name))
      fail<FormatError>("{}: data.pkl: global '{}' is not allowed (only state dicts are read)",
                        zip_.file(), name);
    auto v = make(Kind::global);
    v->text = name;
    push(v);
  }

  // ('storage', torch.XStorage, key, location, numel) -> a flat array of the storage's data.
  Ref persistent_load(const Ref& pid) {
    if (pid->kind != Kind::tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::string ||
        pid->items[0]->text != "storage" || pid->items[1]->kind != Kind::global ||
        pid->items[2]->kind != Kind::string || pid->items[4]->kind != Kind::integer)
      bad("unsupported persistent id (expected ('storage', type, key, location, numel))");
    const auto dtype = storage_dtype(pid->items[1]->text);
    if (!dtype) bad("'{}' is not a storage type", pid->items[1]->text);
    const std::string& key = pid->items[2]->text;
    const std::int64_t numel = pid->items[4]->integer;
    if (auto it = storages_.find(key); it != storages_.end()) return it->second;
    auto e = zip_.entries().find(prefix_ + "data/" + key);
    if (e == zip_.entries().end()) bad("storage '{}' has no entry {}data/{}", key, prefix_, key);
    const std::uint64_t item = dtype->size();
    if (numel < 0 || static_cast<std::uint64_t>(numel) > e->second.size / item)
      bad("storage '{}' declares {} elements of {} bytes but its entry has {} bytes", key, numel,
          item, e->second.size);
    if (numel > std::numeric_limits<std::int32_t>::max())
      bad("storage '{}' of {} elements is too large", key, numel);
    const std::uint64_t bytes = static_cast<std::uint64_t>(numel) * item;
    auto buf = std::make_shared<std::vector<char>>(std::max<std::uint64_t>(bytes, 1));
    zip_.read_into(ZipEntry{e->second.data_offset, bytes}, buf->data());
    auto v = make(Kind::storage);
    v->array = mx::array(buf->data(), mx::Shape{static_cast<int>(numel)}, *dtype,
                         [buf](void*) mutable { buf.reset(); });
    storages_[key] = v;
    return v;
  }

  static std::optional<std::vector<std::int64_t>> ints(const Ref& t) {
    if (t->kind != Kind::tuple) return std::nullopt;
    std::vector<std::int64_t> out;
    for (const auto& x : t->items) {
      if (x->kind != Kind::integer) return std::nullopt;
      out.push_back(x->integer);
    }
    return out;
  }

  Ref reduce(const Ref& fn, const Ref& args) {
    if (fn->kind != Kind::global || args->kind != Kind::tuple) bad("REDUCE of a non-global");
    const auto& a = args->items;
    if (fn->text == "collections.OrderedDict") {
      if (!a.empty()) bad("OrderedDict with arguments");
      return make(Kind::dict);
    }
    if (fn->text == "torch._utils._rebuild_parameter") {
      if (a.size() < 1 || a[0]->kind != Kind::tensor) bad("_rebuild_parameter without a tensor");
      return a[0];
    }
    if (fn->text == "torch._utils._rebuild_tensor_v2") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() < 4 || a[0]->kind != Kind::storage || a[1]->kind != Kind::integer)
        bad("malformed _rebuild_tensor_v2 arguments");
      const auto size = ints(a[2]), stride = ints(a[3]);
      if (!size || !stride || size->size() != stride->size() || size->size() > kMaxRank)
        bad("malformed tensor size/stride");
      return rebuild(*a[0]->array, a[1]->integer, *size, *stride);
    }
    bad("'{}' cannot be called", fn->text);
  }

  Ref rebuild(const mx::array& storage, std::int64_t offset, const std::vector<std::int64_t>& size,
              const std::vector<std::int64_t>& stride) {
    const std::int64_t numel_storage = storage.size();
    mx::Shape shape;
    mx::Strides strides;
    constexpr std::int64_t kMaxDim = std::numeric_limits<std::int32_t>::max();
    std::int64_t numel = 1;
    for (std::size_t i = 0; i < size.size(); ++i) {
      if (size[i] < 0 || size[i] > kMaxDim || stride[i] < 0)
        bad("tensor size {} / stride {} out of range", size[i], stride[i]);
      shape.push_back(static_cast<int>(size[i]));
      strides.push_back(stride[i]);
      if (size[i] == 0) numel = 0;
    }
    auto v = make(Kind::tensor);
    if (numel == 0) {
      v->array = mx::zeros(shape, storage.dtype());
      return v;
    }
    if (offset < 0 || offset >= numel_storage)
      bad("tensor offset {} outside its storage of {} elements", offset, numel_storage);
    // Every size >= 1 here; the last element must lie inside the storage, checked term by term
    // (each term < 2^62 and `last` < 2^31 before adding, so nothing overflows).
    std::int64_t last = offset, expect = 1;
    bool contiguous = true;
    for (std::size_t i = size.size(); i-- > 0;) {
      if (stride[i] > numel_storage) bad("tensor stride {} outside its storage", stride[i]);
      last += (size[i] - 1) * stride[i];
      if (last >= numel_storage)
        bad("tensor view (offset {}) reaches past its storage of {} elements", offset,
            numel_storage);
      if (size[i] != 1 && stride[i] != expect) contiguous = false;
      expect *= size[i];  // <= last + 1 while contiguous, else unused
      numel *= size[i];
      if (numel > kMaxDim) bad("tensor of too many elements");
    }
    if (contiguous && offset == 0 && numel == numel_storage)
      v->array = mx::reshape(storage, shape);
    else if (contiguous)
      v->array = mx::reshape(
          mx::slice(storage, {static_cast<int>(offset)}, {static_cast<int>(offset + numel)}),
          shape);
    else
      v->array =
          mx::copy(mx::as_strided(storage, shape, strides, static_cast<std::size_t>(offset)));
    return v;
  }

  ZipFile& zip_;
  std::string prefix_;
  std::vector<unsigned char> p_;
  std::size_t pos_ = 0;
  std::vector<Ref> stack_;
  std::vector<std::size_t> marks_;
  std::map<std::uint64_t, Ref> memo_;
  std::map<std::string, Ref> storages_;
};

void collect(const Ref& v, const std::string& prefix, int depth, const std::string& file,
             TensorMap& out, std::uint64_t& visits) {
  if (depth > kMaxDepth) fail<FormatError>("{}: data.pkl: dicts nested too deeply", file);
  for (const auto& [k, x] : v->entries) {
    // A dict referenced twice (memo) is walked twice: a chain of them would take 2^depth steps.
    if (++visits > kMaxVisits)
      fail<FormatError>("{}: data.pkl: more than {} dict entries to walk", file, kMaxVisits);
    std::string key;
    if (k->kind == Kind::string)
      key = k->text;
    else if (k->kind == Kind::integer)
      key = std::to_string(k->integer);
    else
      continue;
    key = prefix.empty() ? key : prefix + "." + key;
    if (x->kind == Kind::tensor) {
      if (!out.emplace(key, *x->array).second)
        fail<FormatError>("{}: data.pkl: duplicate tensor '{}'", file, key);
    } else if (x->kind == Kind::dict) {
      collect(x, key, depth + 1, file, out, visits);
    }
  }
}

}  // namespace

bool is_zip_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char sig[4] = {};
  in.read(reinterpret_cast<char*>(sig), 4);
  return in && le(sig, 4) == 0x04034b50;
}

TensorMap load_torch_zip(const std::filesystem::path& path) {
  ZipFile zip(path);
  // The archive's top folder is free ("archive/", or the file's stem in older versions).
  std::optional<std::string> prefix;
  for (const auto& [name, e] : zip.entries()) {
    const std::string tail = "data.pkl";
    if (name.size() >= tail.size() &&
        name.compare(name.size() - tail.size(), tail.size(), tail) == 0) {
      const std::string p = name.substr(0, name.size() - tail.size());
      if (p.empty() || (p.back() == '/' && p.find('/') == p.size() - 1)) {
        prefix = p;
        break;
      }
    }
  }
  if (!prefix)
    fail<FormatError>("{}: no data.pkl in the zip (not a torch.save checkpoint)", zip.file());
  if (auto b = zip.entries().find(*prefix + "byteorder"); b != zip.entries().end()) {
    const auto bytes =
        zip.read(b->second.data_offset, std::min<std::uint64_t>(b->second.size, 16), "byteorder");
    if (std::string(bytes.begin(), bytes.end()) != "little")
      fail<UnsupportedError>("{}: big-endian checkpoint", zip.file());
  }
  const ZipEntry pkl = zip.entries().at(*prefix + "data.pkl");
  if (pkl.size > kMaxPickleBytes)
    fail<FormatError>("{}: data.pkl of {} bytes is implausible", zip.file(), pkl.size);
  auto bytes = zip.read(pkl.data_offset, pkl.size, "data.pkl");
  Unpickler u(zip, *prefix, std::move(bytes));
  const Ref root = u.run();
  if (root->kind != Kind::dict) fail<FormatError>("{}: data.pkl does not hold a dict", zip.file());
  TensorMap out;
  std::uint64_t visits = 0;
  collect(root, "", 0, zip.file(), out, visits);
  return out;
}

}  // namespace ominix::io
