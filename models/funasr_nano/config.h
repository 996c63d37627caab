// Fun-ASR-Nano's config.yaml, as FunASR releases it (names as in the file).
// ref: funasr 1.4.16 funasr/models/fun_asr_nano/model.py (FunASRNano.__init__, data_load_speech),
//      funasr/auto/auto_model.py (input_size = the frontend's output size).
#pragma once

#include <filesystem>
#include <string>

namespace ominix::funasr_nano {

struct EncoderConf {  // audio_encoder_conf (SenseVoiceEncoderSmall)
  int output_size = 256, attention_heads = 4, linear_units = 2048, num_blocks = 6, tp_blocks = 0;
  int kernel_size = 11, sanm_shfit = 0;
};
// encoder_dim and llm_dim are not read: FunASRNano sets them from the encoder and the LLM.
struct AdaptorConf {  // audio_adaptor_conf (the "Transformer" adaptor)
  int downsample_rate = 2, ffn_dim = 2048, n_layer = 2, attention_heads = 8;
  bool use_low_frame_rate = false;
};
struct FrontendConf {  // frontend_conf (WavFrontend)
  int fs = 16000, n_mels = 80, lfr_m = 1, lfr_n = 1;
  double frame_length = 25, frame_shift = 10;  ///< milliseconds
  std::string window = "hamming";
};

struct Config {
  EncoderConf encoder;
  AdaptorConf adaptor;
  FrontendConf frontend;
  std::filesystem::path llm_dir;            ///< llm_conf.init_param_path (config.json), resolved
  std::filesystem::path tokenizer_dir;      ///< tokenizer_conf.init_param_path, resolved
  bool do_think = true, sys_prompt = true;  ///< dataset_conf
  int input_size() const { return frontend.n_mels * frontend.lfr_m; }

  /// Parses `dir`/config.yaml; relative paths resolve against `dir` (the released layout names
  /// "Qwen3-0.6B"). IoError, FormatError, ConfigError/UnsupportedError naming the field.
  static Config load(const std::filesystem::path& dir);
};

}  // namespace ominix::funasr_nano
