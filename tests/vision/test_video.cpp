// core/vision video: decoding and sampling against qwen-vl-utils' fetch_video (torchcodec reader)
// fixtures (tools/fixtures/gen_video.py).
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ominix/base/error.h"
#include "ominix/vision/video.h"

namespace vision = ominix::vision;

namespace {

const std::filesystem::path kDir = std::filesystem::path(OMINIX_FIXTURES) / "video";

const nlohmann::json& expected() {
  static const nlohmann::json j = nlohmann::json::parse(std::ifstream(kDir / "expected.json"));
  return j;
}

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

vision::VideoSamplingOptions options_from(const nlohmann::json& ele, int patch_size) {
  vision::VideoSamplingOptions o;
  o.patch_size = patch_size;
  if (ele.contains("fps")) o.fps = ele["fps"];
  if (ele.contains("nframes")) o.nframes = ele["nframes"].get<int>();
  if (ele.contains("min_frames")) o.min_frames = ele["min_frames"];
  if (ele.contains("max_frames")) o.max_frames = ele["max_frames"];
  if (ele.contains("min_pixels")) o.min_pixels = ele["min_pixels"].get<std::int64_t>();
  if (ele.contains("max_pixels")) o.max_pixels = ele["max_pixels"].get<std::int64_t>();
  if (ele.contains("total_pixels")) o.total_pixels = ele["total_pixels"].get<double>();
  return o;
}

// Every frame of v is h x w and equals the reference's RGB bytes in `frames` (frame after frame).
void expect_frames(const vision::Video& v, const std::filesystem::path& frames, int h, int w,
                   const std::string& what) {
  const auto want = read_bytes(frames);
  const std::size_t frame_bytes = static_cast<std::size_t>(h) * w * 3;
  ASSERT_EQ(want.size(), frame_bytes * v.frames.size()) << what;
  for (std::size_t f = 0; f < v.frames.size(); ++f) {
    ASSERT_EQ(v.frames[f].height, h) << what;
    ASSERT_EQ(v.frames[f].width, w) << what;
    int differing = 0, worst = 0;
    for (std::size_t i = 0; i < frame_bytes; ++i) {
      const int d = std::abs(int{v.frames[f].data[i]} - int{want[f * frame_bytes + i]});
      differing += d != 0;
      worst = std::max(worst, d);
    }
    EXPECT_EQ(differing, 0) << what << " frame " << f << ": largest difference " << worst;
  }
}

}  // namespace

// Frame counts, fps, frame sizes and options run through fetch_video (with a reader of that frame
// count, fps and size): indices, sample fps and resized size exactly, errors where it raises.
TEST(VideoSampling, PlansMatchFetchVideo) {
  const auto& plans = expected()["plans"];
  const auto& lists = expected()["index_lists"];
  ASSERT_GT(plans.size(), 500u);
  int errors = 0;
  for (const auto& p : plans) {
    const vision::VideoStreamInfo stream{.total_frames = p["total_frames"],
                                         .fps = p["video_fps"],
                                         .height = p["height"],
                                         .width = p["width"]};
    const auto o = options_from(p["options"], p["patch_size"]);
    const std::string what = p.dump();
    if (p.contains("error")) {
      ++errors;
      EXPECT_THROW(vision::plan_video_sampling(stream, o), ominix::InvalidArgument) << what;
      continue;
    }
    vision::VideoSamplingPlan plan;
    ASSERT_NO_THROW(plan = vision::plan_video_sampling(stream, o)) << what;
    EXPECT_EQ(plan.indices, lists[p["indices"].get<int>()].get<std::vector<std::int64_t>>())
        << what;
    EXPECT_EQ(plan.sample_fps, p["sample_fps"].get<double>()) << what;
    EXPECT_EQ(plan.resized_height, p["resized_height"]) << what;
    EXPECT_EQ(plan.resized_width, p["resized_width"]) << what;
  }
  EXPECT_GT(errors, 0);
}

// The test videos (H.264/MP4, MPEG-4/AVI, MJPEG/MKV; widths a multiple of 32 and not): frame
// count, fps, sampled indices, frame size and every RGB byte equal to what fetch_video reads.
TEST(VideoDecode, FramesMatchFetchVideo) {
  int compared = 0;
  for (const auto& c : expected()["videos"]) {
    if (c.contains("error")) continue;
    const std::string what = c["file"].get<std::string>() + " patch " + c["patch_size"].dump();
    vision::VideoLoadOptions o;
    o.sampling.patch_size = c["patch_size"];
    o.resize = false;
    vision::Video v;
    ASSERT_NO_THROW(v = vision::load_video(kDir / c["file"].get<std::string>(), o)) << what;
    EXPECT_EQ(v.stream.total_frames, c["total_frames"]) << what;
    EXPECT_EQ(v.stream.fps, c["fps"].get<double>()) << what;
    EXPECT_EQ(v.plan.indices, c["indices"].get<std::vector<std::int64_t>>()) << what;
    EXPECT_EQ(v.plan.resized_height, c["resized_height"]) << what;
    EXPECT_EQ(v.plan.resized_width, c["resized_width"]) << what;
    ASSERT_EQ(v.frames.size(), v.plan.indices.size()) << what;
    ASSERT_EQ(v.timestamps.size(), v.plan.indices.size()) << what;
    for (std::size_t i = 0; i < v.timestamps.size(); ++i)
      EXPECT_EQ(v.timestamps[i], static_cast<double>(v.plan.indices[i]) / v.stream.fps) << what;

    expect_frames(v, kDir / c["frames"].get<std::string>(), c["height"], c["width"], what);
    ++compared;
  }
  EXPECT_GE(compared, 9);
}

// With resize on (the default), frames are fetch_video's output: its size and every value
// (torchvision's antialiased bicubic resize of the uint8 frames, through core/vision's resize).
TEST(VideoDecode, ResizedFramesMatchFetchVideo) {
  int compared = 0;
  for (const auto& c : expected()["resized"]) {
    const std::string what = c.dump();
    vision::VideoLoadOptions o;
    o.sampling = options_from(c["options"], c["patch_size"]);
    const auto v = vision::load_video(kDir / c["file"].get<std::string>(), o);
    const int h = c["height"], w = c["width"];
    ASSERT_EQ(v.frames.size(), c["count"].get<std::size_t>()) << what;
    EXPECT_EQ(v.plan.resized_height, h) << what;
    EXPECT_EQ(v.plan.resized_width, w) << what;
    expect_frames(v, kDir / c["frames"].get<std::string>(), h, w, what);
    ++compared;
  }
  EXPECT_EQ(compared, 3);
}

// Files the reference cannot read (truncated, not a video, empty, a single frame): an
// ominix::Error naming the file. Those it reads (a truncated MKV still holds whole frames): the
// same frames.
TEST(VideoDecode, BrokenFilesAsTheReference) {
  int errors = 0;
  for (const auto& c : expected()["videos"]) {
    if (!c.contains("error")) continue;
    const auto path = kDir / c["file"].get<std::string>();
    try {
      (void)vision::load_video(path);
      ADD_FAILURE() << c["file"] << ": no error; the reference says " << c["error"];
    } catch (const ominix::Error& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      ++errors;
    }
  }
  EXPECT_GE(errors, 8);
}

TEST(VideoDecode, MissingFileAndDirectory) {
  EXPECT_THROW(vision::load_video(kDir / "no_such_video.mp4"), ominix::IoError);
  EXPECT_THROW(vision::load_video(kDir), ominix::IoError);
  try {
    vision::load_video(kDir / "no_such_video.mp4");
  } catch (const ominix::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_video.mp4"), std::string::npos);
  }
}

// Each error kind, by its class.
TEST(VideoDecode, ErrorKinds) {
  EXPECT_THROW(vision::load_video(kDir / "empty.mp4"), ominix::FormatError);
  EXPECT_THROW(vision::load_video(kDir / "not_a_video.mp4"), ominix::FormatError);
  EXPECT_THROW(vision::load_video(kDir / "truncated_h264_64x48_8fps.mp4"), ominix::FormatError);
  EXPECT_THROW(vision::load_video(kDir / "truncated_faststart.mp4"), ominix::FormatError);
  EXPECT_THROW(vision::load_video(kDir / "one_frame.mp4"), ominix::InvalidArgument);
  try {
    vision::load_video(kDir / "audio_only.mkv");
    ADD_FAILURE() << "audio_only.mkv: no error";
  } catch (const ominix::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("no video stream"), std::string::npos) << e.what();
  }
  // An image is not a video (image demuxers are not opened).
  const auto images = std::filesystem::path(OMINIX_FIXTURES) / "vision";
  int checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(images))
    if (e.path().extension() == ".png" && checked++ < 2) {
      EXPECT_THROW(vision::load_video(e.path()), ominix::FormatError) << e.path();
    }
  EXPECT_GT(checked, 0);
}

// Limits bound the work: a packet cap below the video's packet count is an error, not a hang.
TEST(VideoDecode, LimitsAreErrors) {
  vision::VideoLoadOptions o;
  o.limits.max_packets = 5;
  EXPECT_THROW(vision::load_video(kDir / "h264_64x48_8fps.mp4", o), ominix::FormatError);
  o = {};
  o.limits.max_frame_pixels = 100;
  EXPECT_THROW(vision::load_video(kDir / "h264_64x48_8fps.mp4", o), ominix::FormatError);
  o = {};
  o.limits.max_sampled_bytes = 64 * 48 * 3;
  EXPECT_THROW(vision::load_video(kDir / "h264_64x48_8fps.mp4", o), ominix::FormatError);
}

// Hostile input: the test videos with bytes overwritten or cut at seeded random places either
// load or throw an ominix::Error; never a crash, a hang or another exception.
TEST(VideoDecode, CorruptedFilesLoadOrThrow) {
  const std::vector<std::string> files = {"h264_64x48_8fps.mp4", "mpeg4_50x30_5fps.avi",
                                          "mjpeg_40x24_3fps.mkv", "h264_96x64_25fps.mp4"};
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ominix_video_corrupt_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::uint64_t state = 12345;
  const auto next = [&] {  // xorshift64
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  int loaded = 0, errors = 0;
  for (int round = 0; round < 60; ++round)
    for (const auto& name : files) {
      auto bytes = read_bytes(kDir / name);
      const int edits = 1 + static_cast<int>(next() % 8);
      for (int e = 0; e < edits; ++e)
        bytes[next() % bytes.size()] = static_cast<std::uint8_t>(next());
      if (round % 5 == 4) bytes.resize(next() % bytes.size());
      const auto path = dir / (std::to_string(round) + "_" + name);
      std::ofstream(path, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()),
                 static_cast<std::streamsize>(bytes.size()));
      try {
        (void)vision::load_video(path);
        ++loaded;
      } catch (const ominix::Error& e) {
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
        ++errors;
      } catch (const std::exception& e) {
        ADD_FAILURE() << path << ": not an ominix::Error: " << e.what();
      }
    }
  std::filesystem::remove_all(dir);
  EXPECT_EQ(loaded + errors, 240);
  EXPECT_GT(errors, 0);
}
