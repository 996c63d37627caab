// Video decoding through libavformat/libavcodec/libswscale and qwen-vl-utils' frame sampling.
// ref: qwen-vl-utils 0.0.14 qwen_vl_utils/vision_process.py (fetch_video, smart_nframes,
// smart_resize, _read_video_torchcodec); torchcodec 0.17 src/torchcodec/_core (the reader it picks
// first: SingleStreamDecoder::scan_file_and_update_metadata_and_index, Metadata.cpp
// get_average_fps, CpuDeviceInterface/SwScale colour conversion).
#include "ominix/vision/video.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <system_error>

#include "ominix/base/error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/dict.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

namespace ominix::vision {

namespace {

// ---------------------------------------------------------------------------------------------
// Sampling (qwen-vl-utils)

constexpr int kFrameFactor = 2;    // FRAME_FACTOR
constexpr int kMinTokens = 128;    // VIDEO_MIN_TOKEN_NUM
constexpr int kMaxTokens = 768;    // VIDEO_MAX_TOKEN_NUM
constexpr double kMaxRatio = 200;  // MAX_RATIO

// Python's round(x / f) * f (round half to even), floor and ceil by factor.
double round_by(double x, int f) {
  return std::nearbyint(x / f) * f;
}
double floor_by(double x, int f) {
  return std::floor(x / f) * f;
}
double ceil_by(double x, int f) {
  return std::ceil(x / f) * f;
}

// smart_nframes: the number of frames taken (even, in [2, total]).
int smart_nframes(const VideoSamplingOptions& o, std::int64_t total, double video_fps) {
  double n = 0;
  if (o.nframes) {
    n = round_by(*o.nframes, kFrameFactor);
  } else {
    const double min_frames = ceil_by(o.min_frames, kFrameFactor);
    const double max_frames =
        floor_by(static_cast<double>(std::min<std::int64_t>(o.max_frames, total)), kFrameFactor);
    n = static_cast<double>(total) / video_fps * o.fps;
    n = std::min(std::min(std::max(n, min_frames), max_frames), static_cast<double>(total));
    n = floor_by(n, kFrameFactor);
  }
  if (!(kFrameFactor <= n && n <= static_cast<double>(total)))
    fail<InvalidArgument>(
        "video sampling: {} frame(s) to take from a video of {} frame(s); it must be in [{}, {}] "
        "(qwen-vl-utils takes an even number of frames, at least {})",
        n, total, kFrameFactor, total, kFrameFactor);
  return static_cast<int>(n);
}

// torch.linspace(0, end, n) in float32 on the CPU (ATen's linspace kernel: the first half
// start + step * i, the second half end - step * (n - 1 - i), each a fused multiply-add as x86-64
// builds contract it), then round half to even. Equal to torch 2.15 on x86-64 for every count
// tested (tools/fixtures/gen_video.py); plain double arithmetic differs for long videos.
std::vector<std::int64_t> linspace_round(std::int64_t end_index, int n) {
  const float start = 0.0f;
  const float end = static_cast<float>(end_index);
  const float step = n > 1 ? (end - start) / static_cast<float>(n - 1) : 0.0f;
  const int half = n / 2;
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const float v = i < half ? std::fma(step, static_cast<float>(i), start)
                             : std::fma(-step, static_cast<float>(n - 1 - i), end);
    out[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(std::nearbyint(v));
  }
  return out;
}

// qwen-vl-utils' smart_resize (not transformers': no lower bound of `factor` on the shrinking
// branch). max_pixels is a float there.
std::array<int, 2> smart_resize_qwen_vl_utils(int height, int width, int factor, double min_pixels,
                                              double max_pixels) {
  if (!(max_pixels >= min_pixels))
    fail<InvalidArgument>(
        "video sampling: min_pixels {} is above the frame's max_pixels {} (qwen-vl-utils: 'The "
        "max_pixels of image must be greater than or equal to min_pixels.')",
        min_pixels, max_pixels);
  const double ratio = static_cast<double>(std::max(height, width)) / std::min(height, width);
  if (ratio > kMaxRatio)
    fail<InvalidArgument>("video frames of {}x{}: aspect ratio {} is above {}", width, height,
                          ratio, kMaxRatio);
  const double h = height, w = width;
  double h_bar = std::max<double>(factor, round_by(h, factor));
  double w_bar = std::max<double>(factor, round_by(w, factor));
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt((h * w) / max_pixels);
    h_bar = floor_by(h / beta, factor);
    w_bar = floor_by(w / beta, factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(min_pixels / (h * w));
    h_bar = ceil_by(h * beta, factor);
    w_bar = ceil_by(w * beta, factor);
  }
  return {static_cast<int>(h_bar), static_cast<int>(w_bar)};
}

// torchvision's (v1) transforms.functional.resize(uint8 video, BICUBIC, antialias=True), which
// fetch_video calls: the uint8 frames are cast to float32, ATen's separable antialiased bicubic
// (a = -0.5, support scaled by the downscale factor, weights normalised to sum 1) runs along the
// width and then the height (a dimension whose size does not change is skipped), and the result
// is clamped to [0, 255] and rounded half to even; the filter and the sums use fused
// multiply-adds as ATen's x86-64 build does. ref: aten/src/ATen/native/cpu/UpSampleKernel.cpp
// HelperInterpBase::_compute_indices_min_size_weights_aa, HelperInterpCubic::aa_filter. (Not
// resize_bicubic's 8-bit fixed point, the uint8 kernel, which differs from this by 1 at a few
// pixels of the test videos.)
struct AxisWeights {
  std::vector<std::int64_t> start;
  std::vector<std::vector<float>> weights;
};

float cubic_aa_filter(float x) {
  constexpr float a = -0.5f;
  x = std::abs(x);
  // Fused multiply-adds where x86-64 builds of ATen contract them (checked against torch 2.15).
  if (x < 1.0f) return std::fma(std::fma(a + 2, x, -(a + 3)) * x, x, 1.0f);
  if (x < 2.0f) return std::fma(std::fma(std::fma(a, x, -5 * a), x, 8 * a), x, -4 * a);
  return 0.0f;
}

AxisWeights aa_weights(std::int64_t in, std::int64_t out) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const float support = scale >= 1.0f ? static_cast<float>(2.0 * scale) : 2.0f;
  const std::int64_t max_size = static_cast<std::int64_t>(std::ceil(support)) * 2 + 1;
  const float invscale = scale >= 1.0f ? static_cast<float>(1.0 / scale) : 1.0f;
  AxisWeights w;
  for (std::int64_t i = 0; i < out; ++i) {
    const float center = static_cast<float>(scale * (i + 0.5));
    const std::int64_t xmin =
        std::max<std::int64_t>(static_cast<std::int64_t>((center - support) + 0.5), 0);
    std::int64_t xsize =
        std::min<std::int64_t>(static_cast<std::int64_t>((center + support) + 0.5), in) - xmin;
    xsize = std::clamp<std::int64_t>(xsize, 0, max_size);
    std::vector<float> ws(static_cast<std::size_t>(xsize));
    float total = 0.0f;
    for (std::int64_t j = 0; j < xsize; ++j) {
      const double arg = (static_cast<double>(static_cast<float>(j + xmin) - center) + 0.5) *
                         static_cast<double>(invscale);
      ws[static_cast<std::size_t>(j)] = cubic_aa_filter(static_cast<float>(arg));
      total += ws[static_cast<std::size_t>(j)];
    }
    if (total != 0.0f)
      for (float& x : ws) x /= total;
    w.start.push_back(xmin);
    w.weights.push_back(std::move(ws));
  }
  return w;
}

// One pass over [outer, n, inner] float data along the middle axis, n -> m.
std::vector<float> aa_pass(const std::vector<float>& src, std::int64_t outer, std::int64_t n,
                           std::int64_t inner, std::int64_t m) {
  const AxisWeights w = aa_weights(n, m);
  std::vector<float> dst(static_cast<std::size_t>(outer * m * inner));
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t k = 0; k < m; ++k) {
      const auto& ws = w.weights[static_cast<std::size_t>(k)];
      const float* base = src.data() + (o * n + w.start[static_cast<std::size_t>(k)]) * inner;
      float* out = dst.data() + (o * m + k) * inner;
      for (std::int64_t c = 0; c < inner; ++c) {
        float t = ws.empty() ? 0.0f : base[c] * ws[0];
        for (std::size_t j = 1; j < ws.size(); ++j)
          t = std::fma(base[static_cast<std::int64_t>(j) * inner + c], ws[j], t);
        out[c] = t;
      }
    }
  return dst;
}

Image resize_like_fetch_video(const Image& image, int height, int width) {
  std::int64_t h = image.height, w = image.width;
  std::vector<float> x(image.data.begin(), image.data.end());  // [h, w, 3]
  if (width != w) x = aa_pass(x, h, w, 3, width), w = width;
  if (height != h) x = aa_pass(x, 1, h, w * 3, height), h = height;
  Image out;
  out.height = height;
  out.width = width;
  out.data.resize(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out.data[i] = static_cast<std::uint8_t>(std::nearbyint(std::clamp(x[i], 0.0f, 255.0f)));
  return out;
}

}  // namespace

VideoSamplingPlan plan_video_sampling(const VideoStreamInfo& stream,
                                      const VideoSamplingOptions& o) {
  if (!(stream.fps > 0) || !std::isfinite(stream.fps))
    fail<InvalidArgument>("video sampling: the video's fps {} is not a positive number",
                          stream.fps);
  if (stream.total_frames <= 0) fail<InvalidArgument>("video sampling: the video has no frames");
  if (stream.height <= 0 || stream.width <= 0)
    fail<InvalidArgument>("video sampling: empty frame size {}x{}", stream.width, stream.height);
  if (o.patch_size <= 0) fail<InvalidArgument>("video sampling: patch_size {} <= 0", o.patch_size);
  if (!o.nframes && !(o.fps > 0))
    fail<InvalidArgument>("video sampling: fps {} is not positive", o.fps);

  VideoSamplingPlan plan;
  const int n = smart_nframes(o, stream.total_frames, stream.fps);
  plan.indices = linspace_round(stream.total_frames - 1, n);
  plan.sample_fps = n / std::max(static_cast<double>(stream.total_frames), 1e-6) * stream.fps;

  // fetch_video's per-frame pixel budget.
  const double factor = 2.0 * o.patch_size;  // image_patch_size * SPATIAL_MERGE_SIZE
  const double frame_min = kMinTokens * factor * factor;
  const double frame_max = kMaxTokens * factor * factor;
  const double min_pixels = o.min_pixels ? static_cast<double>(*o.min_pixels) : frame_min;
  const double total_pixels = o.total_pixels
                                  ? *o.total_pixels
                                  : static_cast<double>(o.model_seq_len) * factor * factor * 0.9;
  double max_pixels =
      std::max(std::min(frame_max, total_pixels / n * kFrameFactor), std::trunc(min_pixels * 1.05));
  if (o.max_pixels) max_pixels = std::min(static_cast<double>(*o.max_pixels), max_pixels);
  const auto size = smart_resize_qwen_vl_utils(stream.height, stream.width,
                                               static_cast<int>(factor), min_pixels, max_pixels);
  plan.resized_height = size[0];
  plan.resized_width = size[1];
  if (plan.resized_height <= 0 || plan.resized_width <= 0)
    fail<InvalidArgument>("video sampling: frames of {}x{} resize to an empty {}x{}", stream.width,
                          stream.height, plan.resized_width, plan.resized_height);
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Decoding

namespace {

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct DictFreer {
  void operator()(AVDictionary* d) const { av_dict_free(&d); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using SwsPtr = std::unique_ptr<SwsContext, SwsFreer>;

// Containers a video file comes in. Others (playlists, concat lists, image sequences, raw
// streams, text) are refused: they can name other files or have no timestamps.
constexpr const char* kFormats =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg,nut,gif";

FormatPtr open_input(const std::filesystem::path& path, const std::string& name) {
  AVDictionary* raw = nullptr;
  av_dict_set(&raw, "protocol_whitelist", "file", 0);
  av_dict_set(&raw, "format_whitelist", kFormats, 0);
  std::unique_ptr<AVDictionary, DictFreer> opts(raw);
  AVFormatContext* ctx = avformat_alloc_context();
  if (!ctx) fail<Error>("{}: out of memory opening the video", name);
  // "file:" keeps a name with a colon (or "concat:...") from selecting another protocol.
  const std::string url = "file:" + std::filesystem::absolute(path).string();
  raw = opts.release();
  const int rc = avformat_open_input(&ctx, url.c_str(), nullptr, &raw);  // frees ctx on failure
  opts.reset(raw);
  if (rc < 0) fail<FormatError>("{}: not a video file this build reads ({})", name, av_error(rc));
  return FormatPtr(ctx);
}

struct StreamScan {
  std::vector<std::int64_t> pts;  // every packet's pts (or dts), sorted: frame i has pts[i]
  double fps = 0;
};

// torchcodec's exact-mode scan: the frames are the stream's packets (not flagged discard), the
// average fps their count over (max(pts + duration) - min(pts)) seconds, else the header's rate.
StreamScan scan_stream(AVFormatContext* ctx, int stream_index, const VideoLimits& limits,
                       const std::string& name) {
  StreamScan scan;
  PacketPtr packet(av_packet_alloc());
  if (!packet) fail<Error>("{}: out of memory", name);
  std::int64_t begin = std::numeric_limits<std::int64_t>::max();
  std::int64_t end = std::numeric_limits<std::int64_t>::min();
  for (;;) {
    const int rc = av_read_frame(ctx, packet.get());
    if (rc == AVERROR_EOF) break;
    if (rc < 0) fail<FormatError>("{}: cannot read the video's packets ({})", name, av_error(rc));
    const bool take =
        packet->stream_index == stream_index && !(packet->flags & AV_PKT_FLAG_DISCARD);
    if (take) {
      const std::int64_t p = packet->pts == AV_NOPTS_VALUE ? packet->dts : packet->pts;
      begin = std::min(begin, p);
      end = std::max(end, p + packet->duration);
      scan.pts.push_back(p);
      if (static_cast<std::int64_t>(scan.pts.size()) > limits.max_packets)
        fail<FormatError>("{}: more than {} video packets (VideoLimits::max_packets)", name,
                          limits.max_packets);
    }
    av_packet_unref(packet.get());
  }
  std::sort(scan.pts.begin(), scan.pts.end());
  const AVStream* st = ctx->streams[stream_index];
  const auto seconds = [&](std::int64_t p) {
    return static_cast<double>(p) * st->time_base.num / st->time_base.den;
  };
  const double header_fps = av_q2d(st->r_frame_rate);
  scan.fps = header_fps;
  if (!scan.pts.empty() && st->time_base.den != 0) {
    const double duration = seconds(end) - seconds(begin);
    if (duration != 0.0) scan.fps = static_cast<double>(scan.pts.size()) / duration;
  }
  return scan;
}

// Colour conversion to RGB24 as torchcodec's swscale path sets it up: a same-size context with
// no scaler flag (swscale picks bicubic), the frame's colour range and matrix.
class RgbConverter {
 public:
  Image convert(const AVFrame& frame, const std::string& name) {
    const auto format = static_cast<AVPixelFormat>(frame.format);
    if (!ctx_ || frame.width != width_ || frame.height != height_ || format != format_ ||
        frame.colorspace != colorspace_ || frame.color_range != range_) {
      ctx_.reset(sws_getContext(frame.width, frame.height, format, frame.width, frame.height,
                                AV_PIX_FMT_RGB24, 0, nullptr, nullptr, nullptr));
      if (!ctx_)
        fail<FormatError>("{}: cannot convert frames of pixel format {} to RGB", name,
                          av_get_pix_fmt_name(format) ? av_get_pix_fmt_name(format) : "?");
      int *inv_table = nullptr, *table = nullptr;
      int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
      if (sws_getColorspaceDetails(ctx_.get(), &inv_table, &src_range, &table, &dst_range,
                                   &brightness, &contrast, &saturation) != -1) {
        if (frame.color_range != AVCOL_RANGE_UNSPECIFIED)
          src_range = frame.color_range == AVCOL_RANGE_JPEG;
        const int* coefficients = sws_getCoefficients(frame.colorspace);
        sws_setColorspaceDetails(ctx_.get(), coefficients, src_range, coefficients, dst_range,
                                 brightness, contrast, saturation);
      }
      width_ = frame.width, height_ = frame.height, format_ = format;
      colorspace_ = frame.colorspace, range_ = frame.color_range;
    }
    // swscale's SIMD converters write whole blocks of pixels: convert into rows padded to 64
    // bytes (as FFmpeg's own frames are), then copy the image out.
    const int row = frame.width * 3;
    const int stride = (row + 63) / 64 * 64;
    buffer_.assign(static_cast<std::size_t>(stride) * frame.height + 64, 0);
    std::uint8_t* dst[4] = {buffer_.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {stride, 0, 0, 0};
    const int rows =
        sws_scale(ctx_.get(), frame.data, frame.linesize, 0, frame.height, dst, dst_stride);
    if (rows != frame.height)
      fail<FormatError>("{}: colour conversion gave {} of {} rows", name, rows, frame.height);
    Image image;
    image.width = frame.width;
    image.height = frame.height;
    image.data.resize(static_cast<std::size_t>(row) * frame.height);
    for (int y = 0; y < frame.height; ++y)
      std::copy_n(buffer_.data() + static_cast<std::size_t>(y) * stride, row,
                  image.data.data() + static_cast<std::size_t>(y) * row);
    return image;
  }

 private:
  SwsPtr ctx_;
  std::vector<std::uint8_t> buffer_;
  int width_ = 0, height_ = 0;
  AVPixelFormat format_ = AV_PIX_FMT_NONE;
  AVColorSpace colorspace_ = AVCOL_SPC_UNSPECIFIED;
  AVColorRange range_ = AVCOL_RANGE_UNSPECIFIED;
};

// Decodes the stream from the start and keeps the frames whose index (the position of their pts
// among the packets') is wanted; stops once all are in.
// Each kept frame goes through `finish` (rotation and resize) as it comes, so that only the
// finished frames are held.
std::vector<Image> decode_frames(AVFormatContext* ctx, int stream_index,
                                 const std::vector<std::int64_t>& pts,
                                 const std::vector<std::int64_t>& wanted, const VideoLimits& limits,
                                 const std::function<Image(Image)>& finish,
                                 const std::string& name) {
  if (stream_index >= static_cast<int>(ctx->nb_streams))
    fail<FormatError>("{}: the video stream is gone on a second read", name);
  const AVStream* st = ctx->streams[stream_index];
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec)
    fail<UnsupportedError>("{}: no decoder for the video codec '{}' in this FFmpeg", name,
                           avcodec_get_name(st->codecpar->codec_id));
  CodecPtr dec(avcodec_alloc_context3(codec));
  if (!dec) fail<Error>("{}: out of memory", name);
  int rc = avcodec_parameters_to_context(dec.get(), st->codecpar);
  if (rc >= 0) {
    dec->thread_count = 0;  // automatic; frame and slice threading decode the same pixels
    rc = avcodec_open2(dec.get(), codec, nullptr);
  }
  if (rc < 0)
    fail<FormatError>("{}: cannot open the '{}' decoder ({})", name, codec->name, av_error(rc));
  if (st->codecpar->width > 0 && st->codecpar->height > 0 &&
      static_cast<std::int64_t>(st->codecpar->width) * st->codecpar->height >
          limits.max_frame_pixels)
    fail<FormatError>("{}: frames of {}x{} are above VideoLimits::max_frame_pixels ({})", name,
                      st->codecpar->width, st->codecpar->height, limits.max_frame_pixels);

  std::vector<Image> frames;
  frames.reserve(wanted.size());
  std::size_t next = 0;  // position in `wanted`
  RgbConverter rgb;
  PacketPtr packet(av_packet_alloc());
  FramePtr frame(av_frame_alloc());
  if (!packet || !frame) fail<Error>("{}: out of memory", name);
  std::int64_t sampled_bytes = 0;
  int first_width = 0, first_height = 0;

  const auto take_frames = [&]() {
    for (;;) {
      const int r = avcodec_receive_frame(dec.get(), frame.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) return;  // a corrupt frame: skipped; a wanted one missing is reported below
      const std::int64_t p = frame->pts == AV_NOPTS_VALUE ? frame->pkt_dts : frame->pts;
      // The frame's index: the last packet pts at or before its pts.
      const auto it = std::upper_bound(pts.begin(), pts.end(), p);
      const std::int64_t index = it == pts.begin() ? -1 : (it - pts.begin()) - 1;
      if (next < wanted.size() && index > wanted[next])
        fail<FormatError>("{}: video frame {} could not be decoded (the next decoded is frame {})",
                          name, wanted[next], index);
      if (next < wanted.size() && index == wanted[next]) {
        if (static_cast<std::int64_t>(frame->width) * frame->height > limits.max_frame_pixels)
          fail<FormatError>("{}: a frame of {}x{} is above VideoLimits::max_frame_pixels ({})",
                            name, frame->width, frame->height, limits.max_frame_pixels);
        sampled_bytes += static_cast<std::int64_t>(frame->width) * frame->height * 3;
        if (sampled_bytes > limits.max_sampled_bytes)
          fail<FormatError>("{}: the sampled frames exceed VideoLimits::max_sampled_bytes ({})",
                            name, limits.max_sampled_bytes);
        if (frames.empty()) {
          first_width = frame->width;
          first_height = frame->height;
        } else if (frame->width != first_width || frame->height != first_height) {
          fail<UnsupportedError>("{}: the sampled frames change size ({}x{} then {}x{})", name,
                                 first_width, first_height, frame->width, frame->height);
        }
        Image image = finish(rgb.convert(*frame, name));
        // A frame wanted twice (never with qwen-vl-utils' even counts, kept for safety).
        while (next < wanted.size() && wanted[next] == index) {
          frames.push_back(image);
          ++next;
        }
      }
      av_frame_unref(frame.get());
    }
  };

  while (next < wanted.size()) {
    rc = av_read_frame(ctx, packet.get());
    if (rc == AVERROR_EOF) break;
    if (rc < 0) fail<FormatError>("{}: cannot read the video's packets ({})", name, av_error(rc));
    if (packet->stream_index == stream_index && !(packet->flags & AV_PKT_FLAG_DISCARD)) {
      // A packet the decoder rejects is skipped, as FFmpeg's own tools do; a wanted frame that
      // never comes out is reported below.
      avcodec_send_packet(dec.get(), packet.get());
      take_frames();
    }
    av_packet_unref(packet.get());
  }
  if (next < wanted.size()) {  // drain the decoder
    if (avcodec_send_packet(dec.get(), nullptr) >= 0) take_frames();
  }
  if (next < wanted.size())
    fail<FormatError>(
        "{}: video frame {} could not be decoded ({} of the {} sampled frames were; the file may "
        "be truncated)",
        name, wanted[next], next, wanted.size());
  return frames;
}

// The stream's display-matrix rotation as torchcodec applies it: av_display_rotation_get's
// counter-clockwise degrees rounded to a multiple of 90; 0 without a (valid) matrix.
int stream_rotation(const AVStream* st) {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 31, 100)  // FFmpeg 6.1: codecpar side data
  if (const AVPacketSideData* sd =
          av_packet_side_data_get(st->codecpar->coded_side_data, st->codecpar->nb_coded_side_data,
                                  AV_PKT_DATA_DISPLAYMATRIX)) {
    data = sd->data;
    size = sd->size;
  }
#else
  data = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
#endif
  if (!data || size < 9 * sizeof(std::int32_t)) return 0;
  const double degrees = av_display_rotation_get(reinterpret_cast<const std::int32_t*>(data));
  if (std::isnan(degrees)) return 0;
  const int rounded = static_cast<int>(std::round(degrees / 90.0)) * 90;
  return rounded == -180 ? 180 : rounded;
}

// torch.rot90(hwc, k, dims=(0, 1)): k = 1 for 90 (counter-clockwise), 2 for 180, 3 for -90.
Image rotate(const Image& in, int degrees) {
  if (degrees == 0) return in;
  const int k = degrees == 90 ? 1 : degrees == 180 ? 2 : 3;
  const int h = in.height, w = in.width;
  Image out;
  out.height = k == 2 ? h : w;
  out.width = k == 2 ? w : h;
  out.data.resize(in.data.size());
  for (int i = 0; i < out.height; ++i)
    for (int j = 0; j < out.width; ++j) {
      const int y = k == 1 ? j : k == 2 ? h - 1 - i : h - 1 - j;
      const int x = k == 1 ? w - 1 - i : k == 2 ? w - 1 - j : i;
      std::copy_n(&in.data[(static_cast<std::size_t>(y) * w + x) * 3], 3,
                  &out.data[(static_cast<std::size_t>(i) * out.width + j) * 3]);
    }
  return out;
}

}  // namespace

Video load_video(const std::filesystem::path& path, const VideoLoadOptions& options) {
  const std::string name = path.string();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) fail<IoError>("{}: no such video file", name);
  if (std::filesystem::is_directory(status)) fail<IoError>("{}: is a directory, not a video", name);
  if (!std::ifstream(path, std::ios::binary)) fail<IoError>("{}: cannot open the video file", name);
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size == 0) fail<FormatError>("{}: empty file, not a video", name);

  av_log_set_level(AV_LOG_QUIET);
  FormatPtr ctx = open_input(path, name);
  int rc = avformat_find_stream_info(ctx.get(), nullptr);
  if (rc < 0) fail<FormatError>("{}: cannot read the video's streams ({})", name, av_error(rc));
  const int stream_index = av_find_best_stream(ctx.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream_index < 0) fail<FormatError>("{}: no video stream", name);
  const AVStream* st = ctx->streams[stream_index];
  if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
    fail<FormatError>("{}: the only video is an attached picture, not a video", name);
  // Frames are turned upright as the display matrix says (phone videos), as torchcodec does.
  const int rotation = stream_rotation(st);

  StreamScan scan = scan_stream(ctx.get(), stream_index, options.limits, name);
  if (scan.pts.empty()) fail<FormatError>("{}: the video stream has no frames", name);

  Video video;
  video.stream.total_frames = static_cast<std::int64_t>(scan.pts.size());
  video.stream.fps = scan.fps;
  const auto plan_for = [&](const VideoStreamInfo& stream) {
    try {
      return plan_video_sampling(stream, options.sampling);
    } catch (const InvalidArgument& e) {
      fail<InvalidArgument>("{}: {}", name, e.what());
    }
  };
  // Indices first: they need the frame count and fps only, not the frame size.
  VideoStreamInfo probe = video.stream;
  probe.height = probe.width = 1;
  video.plan.indices = plan_for(probe).indices;

  // Rewind: reopen rather than seek, so every container starts at its first packet.
  ctx.reset();
  ctx = open_input(path, name);
  rc = avformat_find_stream_info(ctx.get(), nullptr);
  if (rc < 0) fail<FormatError>("{}: cannot read the video's streams ({})", name, av_error(rc));
  // The plan's size needs the (upright) frame size: taken from the first frame, then every frame
  // is rotated and resized as it is decoded.
  const auto finish = [&](Image frame) {
    frame = rotate(frame, rotation);
    if (video.stream.width == 0) {
      video.stream.height = frame.height;
      video.stream.width = frame.width;
      video.plan = plan_for(video.stream);
    }
    if (options.resize)
      frame = resize_like_fetch_video(frame, video.plan.resized_height, video.plan.resized_width);
    return frame;
  };
  const std::vector<std::int64_t> indices = video.plan.indices;  // `finish` rewrites the plan
  video.frames =
      decode_frames(ctx.get(), stream_index, scan.pts, indices, options.limits, finish, name);
  video.timestamps.reserve(video.plan.indices.size());
  for (const std::int64_t i : video.plan.indices)
    video.timestamps.push_back(static_cast<double>(i) / video.stream.fps);
  return video;
}

}  // namespace ominix::vision
