// Global CMVN from a Kaldi nnet1 text file with <AddShift> and <Rescale> components, as FunASR
// ships it (am.mvn). ref: FunASR funasr/frontends/wav_frontend.py (load_cmvn, apply_cmvn).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <mlx/array.h>

namespace ominix::audio {

namespace mx = mlx::core;

struct Cmvn {
  mx::array shift;  ///< float32 [D], from <AddShift> (minus the means)
  mx::array scale;  ///< float32 [D], from <Rescale> (inverse standard deviations)
};

/// Parses am.mvn text; `where` names the source in errors (FormatError: missing component, bad
/// number, count not matching the declared dimension, shift and scale of different sizes).
Cmvn parse_cmvn(std::string_view text, const std::string& where);

/// Reads and parses an am.mvn file (IoError when it cannot be read).
Cmvn load_cmvn(const std::filesystem::path& path);

/// (features + shift) * scale over features [T, D]; InvalidArgument unless D matches.
mx::array apply_cmvn(const mx::array& features, const Cmvn& cmvn);

}  // namespace ominix::audio
