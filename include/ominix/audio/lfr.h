// Low frame rate stacking (FunASR's LFR): each output frame is m consecutive input frames.
// ref: FunASR funasr/frontends/wav_frontend.py (apply_lfr).
#pragma once

#include <mlx/array.h>

namespace ominix::audio {

namespace mx = mlx::core;

struct LfrOptions {
  int m = 7;  ///< frames stacked into one
  int n = 6;  ///< shift between stacked frames
};

/// [T, D] -> [ceil(T / n), m * D]. Output frame i stacks input frames i*n - (m-1)/2 ... +m-1,
/// the first frame repeated before the start and the last after the end, as apply_lfr pads.
/// T = 0 gives [0, m * D]. InvalidArgument for m, n < 1 or a non-2-D input.
mx::array lfr(const mx::array& features, const LfrOptions& options = {});

}  // namespace ominix::audio
