// ref: funasr 1.4.16 funasr/models/fun_asr_nano/model.py, funasr/models/sense_voice/model.py
//      (SenseVoiceEncoderSmall's arguments), funasr/models/llm_asr/adaptor.py (Transformer).
#include "models/funasr_nano/config.h"

#include <yaml-cpp/yaml.h>

#include "ominix/base/error.h"

namespace ominix::funasr_nano {

namespace {

// Reads config.yaml fields, naming the file and the dotted field in every error.
class Fields {
 public:
  Fields(YAML::Node root, std::string file) : root_(std::move(root)), file_(std::move(file)) {}

  template <typename T>
  void get(const char* section, const char* key, T& value) const {
    const YAML::Node parent = section ? root_[section] : root_;
    if (!parent || !parent.IsMap()) return;
    const YAML::Node node = parent[key];
    if (!node || node.IsNull()) return;
    try {
      value = node.as<T>();
    } catch (const YAML::Exception&) {
      fail<ConfigError>("{}: {}: not a valid value", file_, name(section, key));
    }
  }
  void expect(const char* key, const std::string& supported) const {
    std::string value;
    get(nullptr, key, value);
    if (value != supported)
      fail<UnsupportedError>("{}: {} '{}' is not supported (only {})", file_, key, value,
                             supported);
  }
  void positive(const char* section, const char* key, int value) const {
    if (value <= 0) fail<ConfigError>("{}: {} must be positive", file_, name(section, key));
  }
  std::filesystem::path path(const std::filesystem::path& dir, const char* section) const {
    std::string p;
    get(section, "init_param_path", p);
    if (p.empty()) fail<ConfigError>("{}: {}.init_param_path is missing", file_, section);
    std::filesystem::path path = dir / p;  // an absolute p replaces dir
    // A training machine's absolute path: the release keeps the directory beside config.yaml.
    std::error_code ec;  // a name the system rejects (too long...) is "not a directory" too
    if (!std::filesystem::exists(path, ec)) path = dir / std::filesystem::path(p).filename();
    if (!std::filesystem::is_directory(path, ec))
      fail<IoError>("{}: {}.init_param_path '{}' is not a directory", file_, section, p);
    return path;
  }

 private:
  static std::string name(const char* section, const char* key) {
    return section ? std::string(section) + "." + key : key;
  }
  YAML::Node root_;
  std::string file_;
};

}  // namespace

Config Config::load(const std::filesystem::path& dir) {
  const auto file = (dir / "config.yaml").string();
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    fail<IoError>("{}: cannot open", file);
  } catch (const YAML::Exception& e) {
    fail<FormatError>("{}: {}", file, e.what());
  }
  if (!root.IsMap()) fail<FormatError>("{}: not a YAML mapping", file);
  const Fields f(root, file);
  f.expect("model", "FunASRNano");
  f.expect("audio_encoder", "SenseVoiceEncoderSmall");
  f.expect("audio_adaptor", "Transformer");
  Config c;
  auto& e = c.encoder;
  const char* enc = "audio_encoder_conf";
  f.get(enc, "output_size", e.output_size);
  f.get(enc, "attention_heads", e.attention_heads);
  f.get(enc, "linear_units", e.linear_units);
  f.get(enc, "num_blocks", e.num_blocks);
  f.get(enc, "tp_blocks", e.tp_blocks);
  f.get(enc, "kernel_size", e.kernel_size);
  f.get(enc, "sanm_shfit", e.sanm_shfit);
  std::string hub;
  f.get(enc, "hub", hub);
  if (!hub.empty()) fail<UnsupportedError>("{}: {}.hub (a separate encoder model)", file, enc);
  bool normalize_before = true;
  f.get(enc, "normalize_before", normalize_before);
  if (!normalize_before)
    fail<UnsupportedError>("{}: {}.normalize_before false is not supported", file, enc);
  auto& a = c.adaptor;
  const char* ada = "audio_adaptor_conf";
  f.get(ada, "downsample_rate", a.downsample_rate);
  f.get(ada, "ffn_dim", a.ffn_dim);
  f.get(ada, "n_layer", a.n_layer);
  f.get(ada, "attention_heads", a.attention_heads);
  f.get(ada, "use_low_frame_rate", a.use_low_frame_rate);
  auto& fr = c.frontend;
  const char* fe = "frontend_conf";
  f.get(fe, "fs", fr.fs);
  f.get(fe, "n_mels", fr.n_mels);
  f.get(fe, "frame_length", fr.frame_length);
  f.get(fe, "frame_shift", fr.frame_shift);
  f.get(fe, "lfr_m", fr.lfr_m);
  f.get(fe, "lfr_n", fr.lfr_n);
  f.get(fe, "window", fr.window);
  if (fr.window != "hamming" && fr.window != "povey")
    fail<UnsupportedError>("{}: {}.window '{}' (hamming or povey)", file, fe, fr.window);
  f.get("dataset_conf", "do_think", c.do_think);
  f.get("dataset_conf", "sys_prompt", c.sys_prompt);
  for (auto [sec, key, v] : {std::tuple{enc, "output_size", e.output_size},
                             {enc, "attention_heads", e.attention_heads},
                             {enc, "linear_units", e.linear_units},
                             {enc, "num_blocks", e.num_blocks},
                             {enc, "kernel_size", e.kernel_size},
                             {ada, "downsample_rate", a.downsample_rate},
                             {ada, "ffn_dim", a.ffn_dim},
                             {ada, "attention_heads", a.attention_heads},
                             {fe, "fs", fr.fs},
                             {fe, "n_mels", fr.n_mels},
                             {fe, "lfr_m", fr.lfr_m},
                             {fe, "lfr_n", fr.lfr_n}})
    f.positive(sec, key, v);
  if (fr.frame_length <= 0 || fr.frame_shift <= 0)
    fail<ConfigError>("{}: {}.frame_length and frame_shift must be positive", file, fe);
  if (e.output_size % e.attention_heads)
    fail<ConfigError>("{}: {}.output_size is not a multiple of attention_heads", file, enc);
  if (e.tp_blocks < 0 || a.n_layer < 0)
    fail<ConfigError>("{}: tp_blocks and n_layer must not be negative", file);
  c.llm_dir = f.path(dir, "llm_conf");
  c.tokenizer_dir = f.path(dir, "tokenizer_conf");
  return c;
}

}  // namespace ominix::funasr_nano
