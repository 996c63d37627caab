// Port of FunASR's Paraformer (modelscope/FunASR v1.x, funasr 1.4.16):
//   funasr/models/paraformer/model.py (inference), funasr/models/sanm/encoder.py (SANMEncoder,
//   EncoderLayerSANM), funasr/models/sanm/attention.py (MultiHeadedAttentionSANM,
//   MultiHeadedAttentionSANMDecoder, MultiHeadedAttentionCrossAtt),
//   funasr/models/paraformer/cif_predictor.py (CifPredictorV2, tail_process_fn, cif_v1),
//   funasr/models/paraformer/decoder.py (ParaformerSANMDecoder, DecoderLayerSANM),
//   funasr/utils/timestamp_tools.py (token times from CIF fire frames).
// The text post-processing is in postprocess.cpp.
#include "ominix/models/paraformer.h"

#include <chrono>
#include <cmath>

#include <mlx/ops.h>
#include <mlx/transforms.h>
#include <yaml-cpp/yaml.h>

#include "ominix/audio/cmvn.h"
#include "ominix/audio/fbank.h"
#include "ominix/audio/lfr.h"
#include "ominix/base/error.h"
#include "ominix/io/torch_zip.h"
#include "ominix/io/weights.h"
#include "ominix/nn/linear.h"
#include "ominix/nn/norm.h"
#include "ominix/nn/sanm.h"

namespace ominix::paraformer {

namespace {

// ---- Config (config.yaml names) ------------------------------------------------------------

struct EncoderConf {
  int output_size = 256, attention_heads = 4, linear_units = 2048, num_blocks = 6;
  int kernel_size = 11, sanm_shfit = 0;
};
struct DecoderConf {
  int attention_heads = 4, linear_units = 2048, num_blocks = 6, att_layer_num = 6;
  int kernel_size = 21, sanm_shfit = 0;
};
struct PredictorConf {
  int idim = 256, l_order = 1, r_order = 1;
  float threshold = 1.0f, smooth_factor = 1.0f, noise_threshold = 0.0f, tail_threshold = 0.0f;
};
struct FrontendConf {
  int fs = 16000, n_mels = 80, frame_length = 25, frame_shift = 10, lfr_m = 1, lfr_n = 1;
  audio::KaldiWindow window = audio::KaldiWindow::hamming;
};

// frontend_conf.window: the window types torchaudio's kaldi.fbank takes (WavFrontend passes it).
audio::KaldiWindow parse_window(const std::string& name, const std::string& where) {
  static const std::pair<const char*, audio::KaldiWindow> kWindows[] = {
      {"hamming", audio::KaldiWindow::hamming},
      {"hanning", audio::KaldiWindow::hanning},
      {"povey", audio::KaldiWindow::povey},
      {"rectangular", audio::KaldiWindow::rectangular},
      {"blackman", audio::KaldiWindow::blackman}};
  for (const auto& [n, w] : kWindows)
    if (name == n) return w;
  fail<ConfigError>(
      "{}: frontend_conf.window '{}' is not a window kaldi fbank knows (hamming, hanning, povey, "
      "rectangular, blackman)",
      where, name);
}
struct Config {
  EncoderConf encoder;
  DecoderConf decoder;
  PredictorConf predictor;
  FrontendConf frontend;
  int input_size = 560, vocab_size = 0, blank_id = 0, sos = 1, eos = 2;
};

template <typename T>
void read(const YAML::Node& n, const char* key, T& v, const std::string& where) {
  if (!n || !n[key] || n[key].IsNull()) return;
  try {
    v = n[key].as<T>();
  } catch (const YAML::Exception& e) {
    fail<ConfigError>("{}: {}: {}", where, key, e.what());
  }
}

// The fields of a loaded config.yaml; yaml-cpp throws when a field has another type.
Config read_fields(const YAML::Node& y, const std::string& where) {
  Config c;
  auto expect = [&](const char* key, const char* value) {
    if (y[key] && y[key].as<std::string>() != value)
      fail<UnsupportedError>("{}: {} '{}' is not supported (only {})", where, key,
                             y[key].as<std::string>(), value);
  };
  expect("encoder", "SANMEncoder");
  expect("decoder", "ParaformerSANMDecoder");
  expect("predictor", "CifPredictorV2");
  const auto e = y["encoder_conf"], d = y["decoder_conf"], p = y["predictor_conf"],
             f = y["frontend_conf"], m = y["model_conf"];
  read(e, "output_size", c.encoder.output_size, where);
  read(e, "attention_heads", c.encoder.attention_heads, where);
  read(e, "linear_units", c.encoder.linear_units, where);
  read(e, "num_blocks", c.encoder.num_blocks, where);
  read(e, "kernel_size", c.encoder.kernel_size, where);
  read(e, "sanm_shfit", c.encoder.sanm_shfit, where);
  if (e && e["input_layer"] && e["input_layer"].as<std::string>() != "pe")
    fail<UnsupportedError>("{}: encoder_conf.input_layer must be 'pe'", where);
  if (e && e["normalize_before"] && !e["normalize_before"].as<bool>())
    fail<UnsupportedError>("{}: encoder_conf.normalize_before false is not supported", where);
  read(d, "attention_heads", c.decoder.attention_heads, where);
  read(d, "linear_units", c.decoder.linear_units, where);
  read(d, "num_blocks", c.decoder.num_blocks, where);
  read(d, "att_layer_num", c.decoder.att_layer_num, where);
  read(d, "kernel_size", c.decoder.kernel_size, where);
  read(d, "sanm_shfit", c.decoder.sanm_shfit, where);
  read(p, "idim", c.predictor.idim, where);
  read(p, "l_order", c.predictor.l_order, where);
  read(p, "r_order", c.predictor.r_order, where);
  read(p, "threshold", c.predictor.threshold, where);
  read(p, "smooth_factor", c.predictor.smooth_factor, where);
  read(p, "noise_threshold", c.predictor.noise_threshold, where);
  read(p, "tail_threshold", c.predictor.tail_threshold, where);
  read(f, "fs", c.frontend.fs, where);
  read(f, "n_mels", c.frontend.n_mels, where);
  read(f, "frame_length", c.frontend.frame_length, where);
  read(f, "frame_shift", c.frontend.frame_shift, where);
  read(f, "lfr_m", c.frontend.lfr_m, where);
  read(f, "lfr_n", c.frontend.lfr_n, where);
  std::string window = "hamming";
  read(f, "window", window, where);
  c.frontend.window = parse_window(window, where);
  read(y, "input_size", c.input_size, where);
  read(y, "vocab_size", c.vocab_size, where);
  read(m, "blank_id", c.blank_id, where);
  read(m, "sos", c.sos, where);
  read(m, "eos", c.eos, where);
  return c;
}

// What funasr's modules would fail on (or misread) at the first call, here at load.
void validate(const Config& c, const std::string& where) {
  auto positive = [&](const char* name, double v) {
    if (!(v > 0)) fail<ConfigError>("{}: {} must be positive, got {}", where, name, v);
  };
  const auto& e = c.encoder;
  const auto& d = c.decoder;
  const auto& p = c.predictor;
  const auto& f = c.frontend;
  positive("encoder_conf.linear_units", e.linear_units);
  positive("encoder_conf.num_blocks", e.num_blocks);
  positive("encoder_conf.kernel_size", e.kernel_size);
  positive("decoder_conf.linear_units", d.linear_units);
  positive("decoder_conf.num_blocks", d.num_blocks);
  positive("decoder_conf.kernel_size", d.kernel_size);
  positive("frontend_conf.fs", f.fs);
  positive("frontend_conf.n_mels", f.n_mels);
  positive("frontend_conf.frame_length", f.frame_length);
  positive("frontend_conf.frame_shift", f.frame_shift);
  positive("frontend_conf.lfr_m", f.lfr_m);
  positive("frontend_conf.lfr_n", f.lfr_n);
  if (d.att_layer_num < 0 || p.l_order < 0 || p.r_order < 0 || p.tail_threshold < 0 ||
      c.vocab_size < 0)
    fail<ConfigError>(
        "{}: decoder_conf.att_layer_num, predictor_conf.l_order, r_order, tail_threshold and "
        "vocab_size must not be negative",
        where);
  // predict() fires at each whole unit of integrated weight: cif_v1 with threshold 1.
  if (p.threshold != 1.0f)
    fail<UnsupportedError>("{}: predictor_conf.threshold {} is not supported (only 1.0)", where,
                           p.threshold);
  if (static_cast<long long>(f.fs) * f.frame_length / 1000 < 2 ||
      static_cast<long long>(f.fs) * f.frame_shift / 1000 < 1)
    fail<ConfigError>(
        "{}: frontend_conf.frame_length {} ms and frame_shift {} ms at {} Hz must give a window "
        "of at least 2 samples and a shift of at least 1",
        where, f.frame_length, f.frame_shift, f.fs);
}

Config parse_config(const std::filesystem::path& path) {
  const std::string where = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail<IoError>("{}: no such file", where);
  if (!std::filesystem::is_regular_file(path, ec))
    fail<IoError>("{}: not a regular file (a directory?)", where);
  YAML::Node y;
  try {
    y = YAML::LoadFile(where);
  } catch (const YAML::BadFile&) {
    fail<IoError>("{}: cannot open", where);
  } catch (const YAML::Exception& e) {
    fail<FormatError>("{}: {}", where, e.what());
  }
  Config c;
  try {  // a field of another type than the code reads (a list for a string...) throws here
    c = read_fields(y, where);
  } catch (const YAML::Exception& e) {
    fail<ConfigError>("{}: {}", where, e.what());
  }
  if (c.encoder.output_size <= 0 || c.encoder.attention_heads <= 0 ||
      c.decoder.attention_heads <= 0)
    fail<ConfigError>("{}: output_size and attention_heads must be positive", where);
  validate(c, where);
  if (c.encoder.output_size % c.encoder.attention_heads ||
      c.decoder.att_layer_num > c.decoder.num_blocks || c.predictor.idim != c.encoder.output_size ||
      c.input_size != c.frontend.n_mels * c.frontend.lfr_m)
    fail<ConfigError>(
        "{}: inconsistent sizes (output_size/heads, att_layer_num, predictor idim, "
        "input_size = n_mels * lfr_m)",
        where);
  return c;
}

// ---- Leaf modules --------------------------------------------------------------------------

using nn::LayerNorm;
using nn::LinearLayer;
constexpr float kLnEps = 1e-12f;  // funasr's LayerNorm

LayerNorm load_norm(io::WeightMap& w, const std::string& p, int dim) {
  return LayerNorm::load(w, p, dim, kLnEps);
}
LinearLayer load_linear(io::WeightMap& w, const std::string& p, int in, int out, bool bias = true) {
  return LinearLayer::load(w, p, {.in = in, .out = out, .bias = bias}, std::nullopt);
}

struct DecoderFfn {  // PositionwiseFeedForwardDecoderSANM: w_2(norm(relu(w_1(x)))), w_2 no bias
  LinearLayer w_1, w_2;
  LayerNorm norm;
  mx::array operator()(const mx::array& x) const {
    return w_2(norm(mx::maximum(w_1(x), mx::array(0.0f))));
  }
};

struct CrossAttention {  // MultiHeadedAttentionCrossAtt
  LinearLayer linear_q, linear_k_v, linear_out;
  int h = 4, d = 0;
  mx::array operator()(const mx::array& x, const mx::array& memory,
                       const mx::array& key_mask) const {
    auto kv = mx::split(linear_k_v(memory), 2, -1);
    auto o = nn::masked_attention(nn::split_heads(linear_q(x), h), nn::split_heads(kv[0], h),
                                  nn::split_heads(kv[1], h), key_mask,
                                  1.0f / std::sqrt(static_cast<float>(d / h)));
    return linear_out(nn::merge_heads(o));
  }
};

struct DecoderLayer {  // DecoderLayerSANM, normalize_before
  LayerNorm norm1;
  DecoderFfn feed_forward;
  std::optional<LayerNorm> norm2, norm3;
  std::optional<nn::Fsmn> self_attn;
  std::optional<CrossAttention> src_attn;
  mx::array operator()(const mx::array& tgt, const mx::array& tgt_mask, const mx::array& memory,
                       const mx::array& memory_key_mask) const {
    auto t = feed_forward(norm1(tgt));
    auto x = t;  // ref: decoder.py DecoderLayerSANM.forward: no residual without self_attn
    if (self_attn) x = mx::add(tgt, (*self_attn)((*norm2)(t), tgt_mask));
    if (src_attn) x = mx::add(x, (*src_attn)((*norm3)(x), memory, memory_key_mask));
    return x;
  }
};

}  // namespace

struct Model {
  Config config;
  audio::Cmvn cmvn{mx::array(0.0f), mx::array(0.0f)};
  std::vector<nn::SanmEncoderLayer> encoders;  // encoders0 then encoders
  LayerNorm enc_after_norm;
  mx::array cif_conv_w = mx::array(0.0f), cif_conv_b = mx::array(0.0f);  // [D,K,D], [D]
  std::optional<LinearLayer> cif_output;
  std::vector<DecoderLayer> decoders;  // decoders, decoders2, decoders3
  LayerNorm dec_after_norm;
  std::optional<LinearLayer> output_layer;
};

void ModelDeleter::operator()(Model* m) const {
  std::default_delete<Model>()(m);
}

int sample_rate(const Model& model) {
  return model.config.frontend.fs;
}

int vocab_size(const Model& model) {
  return model.config.vocab_size;
}

ModelPtr load_model(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) fail<IoError>("{}: not a model directory", dir.string());
  auto model = ModelPtr(std::make_unique<Model>().release());
  Config& c = model->config;
  c = parse_config(dir / "config.yaml");
  model->cmvn = audio::load_cmvn(dir / "am.mvn");
  io::TensorMap t;
  std::string source;
  if (std::filesystem::exists(dir / "model.safetensors")) {
    source = (dir / "model.safetensors").string();
    t = io::load_safetensors(source);
  } else {
    source = (dir / "model.pt").string();
    t = io::load_torch_zip(source);
  }
  io::WeightMap w(std::move(t), source);
  for (auto it = w.tensors().begin(); it != w.tensors().end();) {  // training-only modules
    const auto& k = it->first;
    if (k.rfind("ctc.", 0) == 0 || k.rfind("decoder.embed.", 0) == 0 ||
        k.rfind("criterion", 0) == 0)
      it = w.tensors().erase(it);
    else
      ++it;
  }
  // Read now: lazily loaded, the first transcription ran through MLX's CPU matmul (nn::Linear's
  // kernel takes evaluated weights), 30 s for 10 s of speech on two cores against 1.6 s.
  w.evaluate();
  const auto& e = c.encoder;
  const int D = e.output_size;
  for (int i = 0; i < e.num_blocks; ++i) {
    const std::string p =
        i == 0 ? "encoder.encoders0.0" : fmt::format("encoder.encoders.{}", i - 1);
    model->encoders.push_back(nn::SanmEncoderLayer::load(w, p,
                                                         {.in = i == 0 ? c.input_size : D,
                                                          .size = D,
                                                          .heads = e.attention_heads,
                                                          .linear_units = e.linear_units,
                                                          .kernel = e.kernel_size,
                                                          .shift = e.sanm_shfit,
                                                          .eps = kLnEps}));
  }
  model->enc_after_norm = load_norm(w, "encoder.after_norm", D);
  const auto& pc = c.predictor;
  const int K = pc.l_order + pc.r_order + 1;
  model->cif_conv_w = mx::transpose(w.take("predictor.cif_conv1d.weight", {D, D, K}), {0, 2, 1});
  model->cif_conv_b = w.take("predictor.cif_conv1d.bias", {D});
  model->cif_output = load_linear(w, "predictor.cif_output", D, 1);
  const auto& d = c.decoder;
  auto ffn = [&](const std::string& p) {
    return DecoderFfn{load_linear(w, p + ".w_1", D, d.linear_units),
                      load_linear(w, p + ".w_2", d.linear_units, D, false),
                      load_norm(w, p + ".norm", d.linear_units)};
  };
  for (int i = 0; i < d.num_blocks; ++i) {
    const bool att = i < d.att_layer_num;
    const std::string p = att ? fmt::format("decoder.decoders.{}", i)
                              : fmt::format("decoder.decoders2.{}", i - d.att_layer_num);
    DecoderLayer l{.norm1 = load_norm(w, p + ".norm1", D),
                   .feed_forward = ffn(p + ".feed_forward")};
    l.norm2 = load_norm(w, p + ".norm2", D);
    l.self_attn =
        nn::Fsmn::load(w, p + ".self_attn.fsmn_block", D, d.kernel_size, att ? d.sanm_shfit : 0);
    if (att) {
      l.norm3 = load_norm(w, p + ".norm3", D);
      l.src_attn =
          CrossAttention{load_linear(w, p + ".src_attn.linear_q", D, D),
                         load_linear(w, p + ".src_attn.linear_k_v", D, 2 * D),
                         load_linear(w, p + ".src_attn.linear_out", D, D), d.attention_heads, D};
    }
    model->decoders.push_back(std::move(l));
  }
  model->decoders.push_back(DecoderLayer{.norm1 = load_norm(w, "decoder.decoders3.0.norm1", D),
                                         .feed_forward = ffn("decoder.decoders3.0.feed_forward")});
  model->dec_after_norm = load_norm(w, "decoder.after_norm", D);
  auto out_w = w.take("decoder.output_layer.weight");
  if (out_w.ndim() != 2) fail<WeightError>("{}: decoder.output_layer.weight is not 2-D", source);
  if (c.vocab_size == 0) c.vocab_size = out_w.shape(0);
  w.tensors().emplace("decoder.output_layer.weight", out_w);
  model->output_layer = load_linear(w, "decoder.output_layer", D, c.vocab_size);
  w.finish();
  return model;
}

mx::array features(const Model& model, const mx::array& samples) {
  const auto& f = model.config.frontend;
  audio::FbankOptions o;
  o.sample_rate = static_cast<float>(f.fs);
  o.frame_length_ms = static_cast<float>(f.frame_length);
  o.frame_shift_ms = static_cast<float>(f.frame_shift);
  o.num_mel_bins = f.n_mels;
  o.window_type = f.window;
  o.energy_floor = 0.0f;
  o.input_scale = 32768.0f;
  auto fb = audio::fbank(samples, o);
  auto x = audio::lfr(fb, {.m = f.lfr_m, .n = f.lfr_n});
  return audio::apply_cmvn(x, model.cmvn);
}

EncoderOutput encode(const Model& model, const mx::array& feats, const mx::array& lens) {
  const int T = feats.shape(1), in = feats.shape(2);
  const auto masks = nn::SanmMasks::make(lens, T);
  auto x = mx::add(
      mx::multiply(feats,
                   mx::array(std::sqrt(static_cast<float>(model.config.encoder.output_size)))),
      nn::sinusoidal_position_encoding(T, in));
  for (const auto& l : model.encoders) x = l(x, masks);
  return {model.enc_after_norm(x), mx::astype(lens, mx::int32)};
}

CifOutput predict(const Model& model, const EncoderOutput& enc) {
  const auto& pc = model.config.predictor;
  const int B = enc.out.shape(0), T = enc.out.shape(1), D = enc.out.shape(2);
  auto h = mx::pad(enc.out, {{0, 0}, {pc.l_order, pc.r_order}, {0, 0}});
  h = mx::maximum(mx::add(mx::conv1d(h, model.cif_conv_w), model.cif_conv_b), mx::array(0.0f));
  auto a = mx::sigmoid(mx::squeeze((*model.cif_output)(h), -1));  // [B, T]
  a = mx::maximum(
      mx::subtract(mx::multiply(a, mx::array(pc.smooth_factor)), mx::array(pc.noise_threshold)),
      mx::array(0.0f));
  auto valid = mx::astype(nn::sequence_mask(enc.lens, T), mx::float32);
  a = mx::multiply(a, valid);
  auto hidden = enc.out;
  int Tt = T;
  if (pc.tail_threshold > 0.0f) {  // ref: cif_predictor.py tail_process_fn (tail_mask=True)
    auto zeros = mx::zeros({B, 1}, mx::float32);
    auto tail = mx::subtract(mx::concatenate({mx::ones({B, 1}), valid}, 1),
                             mx::concatenate({valid, zeros}, 1));
    a = mx::add(mx::concatenate({a, zeros}, 1), mx::multiply(tail, mx::array(pc.tail_threshold)));
    hidden = mx::concatenate({hidden, mx::zeros({B, 1, D})}, 1);
    Tt = T + 1;
  }
  mx::eval({a, hidden});
  // ref: cif_predictor.py cif_wo_hidden_v1 / cif_v1: fire where floor(cumsum (in float64, cast to
  // float32)) increases; frames from the prefix sums of alpha * hidden.
  const auto ah = mx::contiguous(mx::astype(a, mx::float32));
  const auto hh = mx::contiguous(hidden);
  mx::eval({ah, hh});
  const float* A = ah.data<float>();
  const float* H = hh.data<float>();
  std::vector<float> peaks(static_cast<std::size_t>(B) * Tt);
  std::vector<int> token_num(B);
  std::vector<std::vector<float>> frames(B);
  int max_len = 0, max_floor = 0;
  for (int b = 0; b < B; ++b) {
    double s = 0;
    float prev_floor = 0, sum_f = 0;
    std::vector<float> P(D, 0.0f), last_P(D, 0.0f), last_rem(D, 0.0f);
    for (int t = 0; t < Tt; ++t) {
      const float at = A[b * Tt + t];
      s += at;
      sum_f += at;
      const float prefix = static_cast<float>(s), fl = std::floor(prefix);
      const bool fire = (t == 0 ? fl : fl - prev_floor) > 0;
      prev_floor = fl;
      peaks[b * Tt + t] = (fire ? 1.0f : 0.0f) + prefix - fl;
      for (int k = 0; k < D; ++k) P[k] += at * H[(static_cast<std::size_t>(b) * Tt + t) * D + k];
      if (fire) {
        const float fires = 1.0f + (prefix - fl), r = fires - std::floor(fires);
        for (int k = 0; k < D; ++k) {
          const float rem = r * H[(static_cast<std::size_t>(b) * Tt + t) * D + k];
          frames[b].push_back(P[k] - last_P[k] + last_rem[k] - rem);
          last_P[k] = P[k], last_rem[k] = rem;
        }
      }
    }
    token_num[b] = static_cast<int>(std::floor(sum_f));  // tail_process_fn floors; inference rounds
    if (pc.tail_threshold <= 0.0f) token_num[b] = static_cast<int>(std::nearbyint(sum_f));
    max_len = std::max(max_len, static_cast<int>(std::nearbyint(sum_f)));
    max_floor = std::max(max_floor, token_num[b]);
  }
  const int N = pc.tail_threshold > 0.0f ? std::min(max_len, max_floor) : max_len;
  std::vector<float> emb(static_cast<std::size_t>(B) * N * D, 0.0f);
  for (int b = 0; b < B; ++b) {
    const int n = std::min<int>(static_cast<int>(frames[b].size()) / D, N);
    std::copy(frames[b].begin(), frames[b].begin() + static_cast<std::ptrdiff_t>(n) * D,
              emb.begin() + static_cast<std::ptrdiff_t>(b) * N * D);
  }
  return {mx::array(emb.begin(), {B, N, D}, mx::float32),
          mx::array(token_num.begin(), {B}, mx::int32), ah,
          mx::array(peaks.begin(), {B, Tt}, mx::float32)};
}

mx::array decode(const Model& model, const EncoderOutput& enc, const CifOutput& cif) {
  const int B = enc.out.shape(0), T = enc.out.shape(1), N = cif.acoustic_embeds.shape(1);
  // No token fired in any input (a clip shorter than a token): nothing to decode. funasr's
  // inference returns no result there (model.py: `if torch.max(pre_token_length) < 1`); the
  // decoder's FSMN convolution cannot run on zero positions.
  if (N == 0) return mx::zeros({B, 0, model.config.vocab_size}, mx::float32);
  auto tgt_mask =
      mx::expand_dims(mx::astype(nn::sequence_mask(cif.token_num, N), mx::float32), 2);  // [B,N,1]
  auto mem_mask = mx::reshape(nn::sequence_mask(enc.lens, T), {B, 1, 1, T});
  auto x = cif.acoustic_embeds;
  for (const auto& l : model.decoders) x = l(x, tgt_mask, enc.out, mem_mask);
  auto logits = (*model.output_layer)(model.dec_after_norm(x));  // [B, N, V]
  return mx::subtract(logits, mx::logsumexp(logits, -1, true));
}

namespace {

// Tokens and their times (seconds from the piece's start) of pieces [T] run as one padded batch.
std::vector<std::vector<audio::TimedToken>> recognise(const Model& model,
                                                      const std::vector<mx::array>& pieces) {
  const auto& cf = model.config;
  std::vector<std::vector<audio::TimedToken>> out(pieces.size());
  // Pieces with no feature frame (shorter than one fbank window) hear nothing and stay out of the
  // batch: an all-padding row would only feed the encoder a fully masked attention.
  std::vector<mx::array> feats;
  std::vector<int> lens;
  std::vector<std::size_t> index;  // feats[b] is pieces[index[b]]
  int T = 0;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    auto f = features(model, pieces[i]);
    if (f.shape(0) == 0) continue;
    lens.push_back(f.shape(0));
    feats.push_back(std::move(f));
    index.push_back(i);
    T = std::max(T, lens.back());
  }
  const int B = static_cast<int>(feats.size());
  if (B == 0) return out;
  std::vector<mx::array> padded;
  for (auto& f : feats) padded.push_back(mx::pad(f, {{0, T - f.shape(0)}, {0, 0}}));
  auto enc = encode(model, mx::stack(padded, 0), mx::array(lens.begin(), {B}, mx::int32));
  // ref: cif_predictor.py tail_process_fn appends its zero frame after the longest input, so in
  // funasr's padded batch the tail weight of a shorter input lands on the encoder output of a
  // padding frame, and its last token can differ from a single run. Zero the padding: a batch
  // gives the tokens of single runs. [B, T, D] * [B, T, 1]
  enc.out = mx::multiply(
      enc.out, mx::expand_dims(mx::astype(nn::sequence_mask(enc.lens, T), enc.out.dtype()), 2));
  auto cif = predict(model, enc);
  if (cif.acoustic_embeds.shape(1) == 0) return out;  // no token fired: empty transcripts
  auto ids = mx::astype(mx::argmax(decode(model, enc, cif), -1), mx::int32);  // [B, N]
  mx::eval(ids);
  const int N = ids.shape(1), Tt = cif.peaks.shape(1);
  const float* peaks = cif.peaks.data<float>();
  // ref: funasr/utils/timestamp_tools.py: a token's time is its CIF fire frame (LFR frames of
  // lfr_n * frame_shift ms), without the shifts that model applies for its upsampled CIF.
  const double frame_s = cf.frontend.lfr_n * cf.frontend.frame_shift / 1000.0;
  for (int b = 0; b < B; ++b) {
    std::vector<double> fired;
    for (int t = 0; t < Tt; ++t)
      if (peaks[b * Tt + t] >= 1.0f) fired.push_back(t * frame_s);
    const int n = std::min(N, cif.token_num.data<int>()[b]);
    for (int i = 0; i < n; ++i) {
      const int id = ids.data<int>()[b * N + i];
      if (id == cf.blank_id || id == cf.sos || id == cf.eos) continue;
      out[index[b]].push_back({id, i < static_cast<int>(fired.size()) ? fired[i] : T * frame_s});
    }
  }
  return out;
}

}  // namespace

std::vector<Transcript> transcribe_batch(const Model& model, const std::vector<mx::array>& samples,
                                         const Vocabulary& vocab,
                                         const TranscribeOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const int fs = model.config.frontend.fs;
  // Every input's chunks, then the chunks in batches, longest first (less padding).
  struct Piece {
    std::size_t input;
    std::size_t index;
    audio::Chunk chunk;
  };
  std::vector<std::vector<audio::Chunk>> plans;
  std::vector<Piece> pieces;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].ndim() != 1)
      fail<InvalidArgument>("transcribe: input {} must be samples [T], got {} dimensions", i,
                            samples[i].ndim());
    plans.push_back(audio::plan_chunks(samples[i], fs, options.chunking));
    for (std::size_t k = 0; k < plans.back().size(); ++k) pieces.push_back({i, k, plans.back()[k]});
  }
  std::stable_sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) {
    return a.chunk.end - a.chunk.begin > b.chunk.end - b.chunk.begin;
  });
  std::vector<std::vector<std::vector<audio::TimedToken>>> heard(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) heard[i].resize(plans[i].size());
  const std::size_t step = options.batch_size > 0 ? static_cast<std::size_t>(options.batch_size)
                                                  : std::max<std::size_t>(1, pieces.size());
  for (std::size_t p = 0; p < pieces.size(); p += step) {
    std::vector<mx::array> batch;
    const std::size_t end = std::min(pieces.size(), p + step);
    for (std::size_t k = p; k < end; ++k) {
      const auto& c = pieces[k].chunk;
      const auto& x = samples[pieces[k].input];
      batch.push_back(c.begin == 0 && c.end == x.shape(0)
                          ? x
                          : mx::slice(x, {static_cast<int>(c.begin)}, {static_cast<int>(c.end)}));
    }
    auto tokens = recognise(model, batch);
    for (std::size_t k = p; k < end; ++k) {
      auto& t = tokens[k - p];
      const double offset = static_cast<double>(pieces[k].chunk.begin) / fs;
      for (auto& x : t) x.time += offset;
      heard[pieces[k].input][pieces[k].index] = std::move(t);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total_audio = 0;
  for (const auto& s : samples) total_audio += static_cast<double>(s.size()) / fs;
  std::vector<Transcript> out(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    for (const auto& t : audio::merge_chunks(plans[i], heard[i], fs, options.merging)) {
      out[i].tokens.push_back(t.id);
      out[i].token_times.push_back(t.time);
    }
    out[i].text = vocab.text(out[i].tokens);
    out[i].chunks = static_cast<int>(plans[i].size());
    out[i].audio_seconds = static_cast<double>(samples[i].size()) / fs;
    out[i].compute_seconds = total_audio > 0 ? secs * out[i].audio_seconds / total_audio : secs;
  }
  return out;
}

Transcript transcribe(const Model& model, const mx::array& samples, const Vocabulary& vocab,
                      const TranscribeOptions& options) {
  return transcribe_batch(model, {samples}, vocab, options).at(0);
}

}  // namespace ominix::paraformer
