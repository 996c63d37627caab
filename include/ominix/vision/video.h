// Video files decoded through FFmpeg's libraries and sampled as qwen-vl-utils' fetch_video does by
// default (2 frames a second, 4 to 768 frames, an even count, a per-frame pixel budget; see
// docs/vision.md). Frames are 8-bit RGB, equal to what its torchcodec reader decodes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "ominix/vision/image.h"

namespace ominix::vision {

/// fetch_video's keys of a video content part ({"video": ..., "fps": ..., ...}), with its defaults.
struct VideoSamplingOptions {
  double fps = 2.0;            ///< frames sampled per second of video (FPS)
  int min_frames = 4;          ///< FPS_MIN_FRAMES (rounded up to even)
  int max_frames = 768;        ///< FPS_MAX_FRAMES (rounded down to even; at most the frames)
  std::optional<int> nframes;  ///< a fixed frame count (rounded to even) instead of `fps`
  int patch_size = 14;         ///< 14: Qwen2/2.5-VL, 16: Qwen3-VL; factor = 2 * patch_size
  std::optional<std::int64_t> min_pixels;  ///< per frame; default 128 * factor^2
  std::optional<std::int64_t> max_pixels;  ///< per frame; default and cap 768 * factor^2
  std::optional<double> total_pixels;      ///< all frames; default model_seq_len * factor^2 * 0.9
  std::int64_t model_seq_len = 128000;     ///< qwen-vl-utils' MODEL_SEQ_LEN environment default
};

/// What a video's frame count, fps and frame size give.
struct VideoSamplingPlan {
  std::vector<std::int64_t> indices;  ///< frames taken: round(linspace(0, total - 1, n)), ascending
  double sample_fps = 0;              ///< n / total_frames * video_fps (the processor's fps)
  int resized_height = 0;             ///< frame size after smart_resize (multiples of factor)
  int resized_width = 0;
};

/// The video's properties that the plan depends on.
struct VideoStreamInfo {
  std::int64_t total_frames = 0;  ///< frames in the stream (its packets, as torchcodec counts)
  double fps = 0;                 ///< average fps: frames / (last pts + duration - first pts)
  int height = 0;                 ///< decoded frame size
  int width = 0;
};

/// The frames fetch_video samples and the size it resizes them to, for a stream. InvalidArgument
/// when the reference raises: fewer than 2 frames to take (a 1-frame video), min_pixels above the
/// per-frame maximum, or an aspect ratio above 200.
VideoSamplingPlan plan_video_sampling(const VideoStreamInfo& stream,
                                      const VideoSamplingOptions& options = {});

/// Limits that bound the work on a hostile file.
struct VideoLimits {
  std::int64_t max_packets = 10'000'000;       ///< packets scanned in the video stream
  std::int64_t max_frame_pixels = 1 << 26;     ///< width * height of a frame (64 Mpixel)
  std::int64_t max_sampled_bytes = 8LL << 30;  ///< RGB bytes of all sampled frames (8 GiB)
};

struct VideoLoadOptions {
  VideoSamplingOptions sampling;
  bool resize = true;  ///< resize frames to the plan's size (bicubic, antialiased, as fetch_video)
  VideoLimits limits;
};

/// A sampled video.
struct Video {
  std::vector<Image> frames;  ///< the sampled frames, RGB, in order (resized if asked)
  VideoStreamInfo stream;     ///< the stream's frame count, fps and decoded frame size
  VideoSamplingPlan plan;     ///< indices, sample fps, resized size
  /// Seconds of each sampled frame: indices[i] / stream.fps (what Qwen3-VL's processor puts in
  /// its per-frame text timestamps, before averaging each temporal pair).
  std::vector<double> timestamps;
};

/// Decodes a video file's best video stream (any container and codec this FFmpeg reads, from the
/// local file only) and samples it. IoError naming the file if it cannot be read; FormatError if
/// it is empty, not a video, has no video stream, or a sampled frame cannot be decoded (e.g. a
/// truncated file); InvalidArgument as plan_video_sampling (fewer than 2 frames...).
Video load_video(const std::filesystem::path& path, const VideoLoadOptions& options = {});

}  // namespace ominix::vision
