// Port of FunASR's Fun-ASR-Nano (funasr 1.4.16):
//   funasr/models/fun_asr_nano/model.py (FunASRNano: inference, inference_prepare,
//   data_load_speech, get_prompt, generate_chatml, inference_llm's text clean-up),
//   funasr/models/sense_voice/model.py (SenseVoiceEncoderSmall, on core's SAN-M layers),
//   funasr/models/llm_asr/adaptor.py (Transformer) with funasr/models/transformer/encoder.py
//   (EncoderLayer) and attention.py (MultiHeadedAttention), funasr/frontends/wav_frontend.py.
// The LLM is the qwen3 family fed input embeddings; decoding is greedy, as transformers'
// generate with the generation config FunASRNano builds from config.json.
#include "ominix/models/funasr_nano.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <mlx/ops.h>
#include <mlx/transforms.h>

#include "models/funasr_nano/config.h"
#include "ominix/audio/chunk.h"
#include "ominix/audio/cmvn.h"
#include "ominix/audio/fbank.h"
#include "ominix/audio/lfr.h"
#include "ominix/base/error.h"
#include "ominix/io/config.h"
#include "ominix/io/torch_zip.h"
#include "ominix/models/qwen3.h"
#include "ominix/nn/sanm.h"
#include "ominix/text/tokenizer.h"

namespace ominix::funasr_nano {

namespace {

constexpr float kSenseVoiceEps = 1e-5f;  // sense_voice/model.py LayerNorm: torch's default
constexpr float kAdaptorEps = 1e-12f;    // transformer/layer_norm.py LayerNorm

nn::LinearLayer load_linear(io::WeightMap& w, const std::string& p, int in, int out) {
  return nn::LinearLayer::load(w, p, {.in = in, .out = out, .bias = true}, std::nullopt);
}

mx::array relu(const mx::array& x) {
  return mx::maximum(x, mx::array(0.0f, x.dtype()));
}

/// transformer/encoder.py EncoderLayer (normalize_before) around MultiHeadedAttention (separate
/// q, k, v) and a ReLU feed-forward of width dim / 4.
struct AdaptorBlock {
  nn::LayerNorm norm1, norm2;
  nn::LinearLayer linear_q, linear_k, linear_v, linear_out, w_1, w_2;
  int heads;

  // x [B, T, E], key_mask bool [B, 1, 1, T]
  mx::array operator()(const mx::array& x, const mx::array& key_mask) const {
    auto n = norm1(x);
    const float scale = 1.0f / std::sqrt(static_cast<float>(x.shape(2) / heads));
    auto o = nn::masked_attention(nn::split_heads(linear_q(n), heads),
                                  nn::split_heads(linear_k(n), heads),
                                  nn::split_heads(linear_v(n), heads), key_mask, scale);
    auto h = mx::add(x, linear_out(nn::merge_heads(o)));
    return mx::add(h, w_2(relu(w_1(norm2(h)))));
  }

  static AdaptorBlock load(io::WeightMap& w, const std::string& p, int dim, int heads) {
    const auto a = p + ".self_attn.";
    return {nn::LayerNorm::load(w, p + ".norm1", dim, kAdaptorEps),
            nn::LayerNorm::load(w, p + ".norm2", dim, kAdaptorEps),
            load_linear(w, a + "linear_q", dim, dim),
            load_linear(w, a + "linear_k", dim, dim),
            load_linear(w, a + "linear_v", dim, dim),
            load_linear(w, a + "linear_out", dim, dim),
            load_linear(w, p + ".feed_forward.w_1", dim, dim / 4),
            load_linear(w, p + ".feed_forward.w_2", dim / 4, dim),
            heads};
  }
};

/// model.py get_prompt: the instruction before the speech.
std::string instruction(const TranscribeOptions& o) {
  std::string p;
  if (!o.hotwords.empty()) {
    p = "请结合上下文信息，更加准确地完成语音转写任务。如果没有相关信息，我们会留空。\n\n\n"
        "**上下文信息：**\n\n\n热词列表：[";
    for (std::size_t i = 0; i < o.hotwords.size(); ++i) p += (i ? ", " : "") + o.hotwords[i];
    p += "]\n";
  }
  p += o.language.empty() ? "语音转写" : "语音转写成" + o.language;
  if (!o.itn) p += "，不进行文本规整";
  return p + "：";
}

/// Python's str.isspace for one code point.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

/// inference_llm's clean-up: "/sil" -> " ", then re.sub(r"\s+", " ", text).
std::string clean_text(const std::string& s) {
  std::string out;
  bool in_space = false;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (std::size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
    if (s.compare(i, 4, "/sil") == 0) n = 4, cp = ' ';
    if (is_space(cp)) {
      if (!in_space) out += ' ';
      in_space = true;
    } else {
      out.append(s, i, n);
      in_space = false;
    }
    i += n;
  }
  return out;
}

}  // namespace

struct Model {
  Config config;
  std::optional<audio::Cmvn> cmvn;
  std::vector<nn::SanmEncoderLayer> encoders, tp_encoders;  // encoders0 + encoders; tp_encoders
  nn::LayerNorm after_norm, tp_norm;
  std::optional<nn::LinearLayer> linear1, linear2;
  std::vector<AdaptorBlock> blocks;
  std::unique_ptr<qwen3::EmbeddingsModel> llm;
  std::optional<text::Tokenizer> tokenizer;
  std::vector<int> eos_token_ids;  ///< config.json's, as generate() takes them there
};

void ModelDeleter::operator()(Model* m) const {
  std::default_delete<Model>()(m);
}

int sample_rate(const Model& model) {
  return model.config.frontend.fs;
}

ModelPtr load_model(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) fail<IoError>("{}: not a model directory", dir.string());
  auto model = ModelPtr(std::make_unique<Model>().release());
  auto& c = model->config;
  c = Config::load(dir);
  if (std::filesystem::exists(dir / "am.mvn")) model->cmvn = audio::load_cmvn(dir / "am.mvn");
  const bool safetensors = std::filesystem::exists(dir / "model.safetensors");
  const auto source = (dir / (safetensors ? "model.safetensors" : "model.pt")).string();
  auto tensors = safetensors ? io::load_safetensors(source) : io::load_torch_zip(source);
  // The LLM's tensors go to the qwen3 family without their "llm." prefix; inference runs in fp32.
  io::TensorMap llm_tensors, rest;
  for (auto& [saved_key, t] : tensors) {
    // A training checkpoint nests the weights under "state_dict" (FunASR loads that part).
    const auto key = saved_key.starts_with("state_dict.") ? saved_key.substr(11) : saved_key;
    auto v = mx::issubdtype(t.dtype(), mx::floating) ? mx::astype(t, mx::float32) : t;
    (key.starts_with("llm.") ? llm_tensors.emplace(key.substr(4), v) : rest.emplace(key, v));
  }
  tensors.clear();
  model->llm = qwen3::load_from_tensors(c.llm_dir, std::move(llm_tensors), source + " (llm.*)");
  const int E = model->llm->embed(mx::zeros({1, 1}, mx::int32)).shape(2);

  io::WeightMap w(std::move(rest), source);
  std::vector<std::string> unused;  // the CTC branch (timestamps) is not ported
  for (const auto& [key, _] : w.tensors())
    if (key.starts_with("ctc_decoder.") || key.starts_with("ctc.")) unused.push_back(key);
  for (const auto& key : unused) w.ignore(key);
  w.evaluate();  // read now, not at the first call (as Paraformer's)
  const auto& e = c.encoder;
  const int D = e.output_size;
  nn::SanmShape shape{.in = c.input_size(),
                      .size = D,
                      .heads = e.attention_heads,
                      .linear_units = e.linear_units,
                      .kernel = e.kernel_size,
                      .shift = e.sanm_shfit,
                      .eps = kSenseVoiceEps};
  model->encoders.push_back(nn::SanmEncoderLayer::load(w, "audio_encoder.encoders0.0", shape));
  shape.in = D;
  for (int i = 0; i + 1 < e.num_blocks; ++i)
    model->encoders.push_back(
        nn::SanmEncoderLayer::load(w, fmt::format("audio_encoder.encoders.{}", i), shape));
  for (int i = 0; i < e.tp_blocks; ++i)
    model->tp_encoders.push_back(
        nn::SanmEncoderLayer::load(w, fmt::format("audio_encoder.tp_encoders.{}", i), shape));
  model->after_norm = nn::LayerNorm::load(w, "audio_encoder.after_norm", D, kSenseVoiceEps);
  model->tp_norm = nn::LayerNorm::load(w, "audio_encoder.tp_norm", D, kSenseVoiceEps);
  const auto& a = c.adaptor;
  if (E % a.attention_heads || E < 4)
    fail<ConfigError>("{}: audio_adaptor_conf.attention_heads {} does not divide the LLM width {}",
                      (dir / "config.yaml").string(), a.attention_heads, E);
  model->linear1 = load_linear(w, "audio_adaptor.linear1", D * a.downsample_rate, a.ffn_dim);
  model->linear2 = load_linear(w, "audio_adaptor.linear2", a.ffn_dim, E);
  for (int i = 0; i < a.n_layer; ++i)
    model->blocks.push_back(
        AdaptorBlock::load(w, fmt::format("audio_adaptor.blocks.{}", i), E, a.attention_heads));
  w.finish();
  model->tokenizer = text::Tokenizer::from_dir(c.tokenizer_dir);
  model->eos_token_ids = io::ConfigReader::load(c.llm_dir / "config.json").int_list("eos_token_id");
  return model;
}

namespace {

// Audio the front end can take: [T] with at least the 2 samples of the shortest fbank window.
void check_samples(const mx::array& samples) {
  if (samples.ndim() != 1)
    fail<InvalidArgument>("funasr_nano: samples must be [T], got {} dimensions", samples.ndim());
  if (samples.size() < 2)
    fail<InvalidArgument>(
        "funasr_nano: audio of {} sample(s) is too short to transcribe (at least 2 samples)",
        samples.size());
}

}  // namespace

mx::array features(const Model& model, const mx::array& samples) {
  const auto& f = model.config.frontend;
  check_samples(samples);
  // ref: WavFrontend.forward: the frame no longer than the audio itself.
  const float audio_ms = static_cast<float>(samples.size()) / f.fs * 1000.0f;
  auto fb = audio::fbank(
      samples, {.sample_rate = static_cast<float>(f.fs),
                .frame_length_ms = std::min(static_cast<float>(f.frame_length), audio_ms),
                .frame_shift_ms = static_cast<float>(f.frame_shift),
                .window_type =
                    f.window == "hamming" ? audio::KaldiWindow::hamming : audio::KaldiWindow::povey,
                .num_mel_bins = f.n_mels,
                .energy_floor = 0.0f,
                .input_scale = 32768.0f});
  auto x = audio::lfr(fb, {.m = f.lfr_m, .n = f.lfr_n});
  return model.cmvn ? audio::apply_cmvn(x, *model.cmvn) : x;
}

mx::array encode(const Model& model, const mx::array& feats, const mx::array& lens) {
  if (feats.ndim() != 3 || feats.shape(2) != model.config.input_size())
    fail<InvalidArgument>("funasr_nano: features must be [B, T, {}]", model.config.input_size());
  const int T = feats.shape(1);
  const auto masks = nn::SanmMasks::make(lens, T);
  // ref: SenseVoiceEncoderSmall.forward: scaled by sqrt(output_size), positions over the features.
  const float scale = std::sqrt(static_cast<float>(model.config.encoder.output_size));
  auto x = mx::add(mx::multiply(feats, mx::array(scale)),
                   nn::sinusoidal_position_encoding(T, feats.shape(2)));
  for (const auto& l : model.encoders) x = l(x, masks);
  x = model.after_norm(x);
  for (const auto& l : model.tp_encoders) x = l(x, masks);
  return model.tp_norm(x);
}

mx::array adapt(const Model& model, const mx::array& encoder_out, const mx::array& lens) {
  const int k = model.config.adaptor.downsample_rate;
  const int B = encoder_out.shape(0), T = encoder_out.shape(1), D = encoder_out.shape(2);
  const int chunks = (T - 1) / k + 1;
  auto x = mx::pad(encoder_out, {{0, 0}, {0, chunks * k - T}, {0, 0}});
  x = mx::reshape(x, {B, chunks, k * D});  // [B, chunks*k, D] -> [B, chunks, k*D]
  x = (*model.linear2)(relu((*model.linear1)(x)));
  auto olens = mx::add(
      mx::floor_divide(mx::subtract(mx::astype(lens, mx::int32), mx::array(1)), mx::array(k)),
      mx::array(1));
  const auto key_mask = mx::reshape(nn::sequence_mask(olens, chunks), {B, 1, 1, chunks});
  for (const auto& b : model.blocks) x = b(x, key_mask);
  return x;
}

Prompt build_prompt(const Model& model, int feature_frames, const mx::array& adaptor_out,
                    const TranscribeOptions& options) {
  const auto& c = model.config;
  // ref: data_load_speech: ChatML around "<|startofspeech|>!!<|endofspeech|>", split there.
  std::string before =
      c.sys_prompt ? "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" : "";
  before += "<|im_start|>user\n" + instruction(options);
  std::string after = "<|im_end|>\n<|im_start|>assistant\n";
  if (!c.do_think) after += "<think>\n\n</think>\n\n";
  int slots = feature_frames;
  if (c.adaptor.use_low_frame_rate) {  // ref: data_load_speech, use_low_frame_rate
    int n = 1 + (feature_frames - 1) / 2;
    n = 1 + (n - 1) / 2;
    slots = (n - 1) / 2 + 1;
  }
  Prompt p{.ids = model.tokenizer->encode(before),
           .speech_begin = 0,
           .speech_length = slots,
           .embeddings = mx::array(0.0f)};
  p.speech_begin = static_cast<int>(p.ids.size());
  p.ids.insert(p.ids.end(), slots, 0);
  const auto tail = model.tokenizer->encode(after);
  p.ids.insert(p.ids.end(), tail.begin(), tail.end());
  const int L = static_cast<int>(p.ids.size());
  auto emb = model.llm->embed(mx::array(p.ids.data(), {1, L}, mx::int32));  // [1, L, E]
  // ref: inference_prepare: an adaptor output shorter than the slots fills only its frames.
  const int n = std::min(slots, adaptor_out.shape(1));
  const int b = p.speech_begin;
  p.embeddings = mx::concatenate({mx::slice(emb, {0, 0, 0}, {1, b, emb.shape(2)}),
                                  mx::slice(adaptor_out, {0, 0, 0}, {1, n, emb.shape(2)}),
                                  mx::slice(emb, {0, b + n, 0}, {1, L, emb.shape(2)})},
                                 1);
  return p;
}

mx::array prompt_logits(const Model& model, const Prompt& prompt) {
  auto cache = model.llm->make_cache();
  return model.llm->forward_embeddings(prompt.embeddings, cache);
}

namespace {

Transcript transcribe_one(const Model& model, const mx::array& samples,
                          const TranscribeOptions& options) {
  auto feats = features(model, samples);
  const int T = feats.shape(0);
  if (T == 0) fail<InvalidArgument>("funasr_nano: audio too short for one frame");
  const auto lens = mx::array({T}, {1}, mx::int32);
  auto enc = encode(model, mx::expand_dims(feats, 0), lens);
  auto prompt = build_prompt(model, T, adapt(model, enc, lens), options);
  auto cache = model.llm->make_cache();
  // Greedy, one step ahead: step n+1 is queued (async_eval) before token n is read.
  auto greedy = [](const mx::array& logits) {  // [1, L, V] -> int32 [1, 1], the last position
    const int L = logits.shape(1);
    return mx::astype(mx::argmax(mx::slice(logits, {0, L - 1, 0}, {1, L, logits.shape(2)}), -1),
                      mx::int32);
  };
  auto next = greedy(model.llm->forward_embeddings(prompt.embeddings, cache));
  mx::async_eval(next);
  Transcript out;
  const auto& eos = model.eos_token_ids;
  for (int step = 0; step < options.max_new_tokens; ++step) {
    auto current = next;
    if (step + 1 < options.max_new_tokens) {
      next = greedy((*model.llm)(current, cache));
      mx::async_eval(next);
    }
    const int id = current.item<int>();
    out.tokens.push_back(id);
    if (std::find(eos.begin(), eos.end(), id) != eos.end()) break;
  }
  mx::eval(next);  // the step queued past EOS must finish before the cache it writes goes
  out.text = clean_text(model.tokenizer->decode(out.tokens, /*skip_special_tokens=*/true));
  return out;
}

}  // namespace

Transcript transcribe(const Model& model, const mx::array& samples,
                      const TranscribeOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const int fs = model.config.frontend.fs;
  check_samples(samples);
  // Chunks cut at a pause are transcribed apart and their texts joined with a space, as funasr
  // joins its VAD segments; chunks that overlap (no pause to cut at) have their tokens joined by
  // aligning ids in the overlap (audio::merge_untimed), then decoded together.
  const auto chunks = audio::plan_chunks(samples, fs, options.chunking);
  const auto& eos = model.eos_token_ids;
  auto content = [&](std::vector<int> t) {  // without the closing EOS
    if (!t.empty() && std::find(eos.begin(), eos.end(), t.back()) != eos.end()) t.pop_back();
    return t;
  };
  std::vector<std::vector<int>> groups;  // token runs between cuts at pauses
  int closing = -1;                      // the last chunk's EOS id, -1 if it generated none
  Transcript out;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const auto& c = chunks[i];
    auto generated =
        transcribe_one(model,
                       mx::slice(samples, {static_cast<int>(c.begin)}, {static_cast<int>(c.end)}),
                       options)
            .tokens;
    auto tokens = content(generated);
    closing = tokens.size() < generated.size() ? generated.back() : -1;
    const bool overlaps = i > 0 && c.begin < chunks[i - 1].end;
    if (!overlaps) {
      groups.push_back(std::move(tokens));
      continue;
    }
    const auto& prev = chunks[i - 1];
    const double shared = double(prev.end - c.begin) / double(prev.end - prev.begin);
    auto& last = groups.back();
    last = audio::merge_untimed(last, tokens, static_cast<int>(std::lround(shared * last.size())));
  }
  for (const auto& g : groups) {
    out.tokens.insert(out.tokens.end(), g.begin(), g.end());
    auto text = clean_text(model.tokenizer->decode(g, /*skip_special_tokens=*/true));
    if (!out.text.empty() && !text.empty()) out.text += ' ';
    out.text += text;
  }
  if (closing >= 0) out.tokens.push_back(closing);
  out.chunks = static_cast<int>(chunks.size());
  out.audio_seconds = static_cast<double>(samples.size()) / fs;
  out.compute_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace ominix::funasr_nano
