// Long audio in pieces a speech model can take: where to cut (at pauses when there are any,
// otherwise with an overlap), and how to join the pieces' timed tokens so that no token is
// dropped or doubled at a cut.
//
// Cuts at pauses follow FunASR, which splits long audio with a VAD and concatenates the segments'
// text. Where speech runs on without a pause, consecutive chunks overlap and their token sequences
// are aligned in the overlap (as NeMo's buffered RNN-T inference and transformers' chunked Whisper
// pipeline join chunks), then spliced at an agreed token near the middle of the overlap.
#pragma once

#include <cstdint>
#include <vector>

#include <mlx/array.h>

namespace ominix::audio {

namespace mx = mlx::core;

struct ChunkOptions {
  double max_seconds = 20.0;       ///< no chunk is longer
  double min_seconds = 10.0;       ///< a cut at a pause is looked for from here to max_seconds
  double overlap_seconds = 4.0;    ///< chunks cut without a pause share this much audio
  double min_pause_seconds = 0.2;  ///< the shortest quiet stretch that is a pause
  double pause_below_db = 40.0;    ///< quiet: this far below the loud frames (95th percentile)
  double frame_seconds = 0.01;     ///< energy frames for finding pauses
};

/// The default options scaled to chunks of at most max_seconds: min_seconds = max_seconds / 2,
/// overlap_seconds = max_seconds / 5 (the defaults' proportions: 20, 10, 4).
ChunkOptions chunk_options(double max_seconds);

/// Samples [begin, end) of the input.
struct Chunk {
  std::int64_t begin = 0;
  std::int64_t end = 0;
};

/// Chunks covering float samples [T] in order: one chunk when T <= max_seconds; otherwise each
/// chunk ends at the middle of the longest pause in [min_seconds, max_seconds] after its begin,
/// and the next begins there, or, with no pause there, each is max_seconds long and the next
/// begins overlap_seconds before its end. InvalidArgument for inconsistent options or 2-D input.
std::vector<Chunk> plan_chunks(const mx::array& samples, int sample_rate,
                               const ChunkOptions& options = {});

/// A recognised token and when it was heard, in seconds from the start of the whole input.
struct TimedToken {
  int id = 0;
  double time = 0;
};

struct MergeOptions {
  double time_tolerance = 0.3;  ///< equal tokens of two chunks this close in time may be one
};

/// Joins the chunks' tokens (tokens[i] from chunks[i], sorted by time) into one sequence.
/// Chunks that do not overlap are concatenated. In an overlap, the tokens of both chunks that
/// lie in it are aligned (the most pairs of equal ids within time_tolerance, then the smallest
/// total time difference); the result takes the earlier chunk up to the aligned pair nearest the
/// overlap's middle and the later chunk after it. Without any aligned pair, each chunk keeps its
/// tokens on its side of the middle. InvalidArgument when the counts differ or the chunks are not
/// in order.
std::vector<TimedToken> merge_chunks(const std::vector<Chunk>& chunks,
                                     const std::vector<std::vector<TimedToken>>& tokens,
                                     int sample_rate, const MergeOptions& options = {});

/// Joins the tokens of two consecutive chunks that share audio when the model gives no token
/// times (an LLM decoder): the later chunk's first k tokens are aligned with the earlier chunk's
/// last k at the k that scores best, equal ids less |k - expected_overlap| / expected_overlap
/// (expected_overlap: the overlap's share of the earlier chunk's tokens), and the result takes
/// the earlier chunk up to the middle of that overlap and the later one after it. Without any
/// equal id, expected_overlap tokens are taken as shared and split at their middle.
std::vector<int> merge_untimed(const std::vector<int>& earlier, const std::vector<int>& later,
                               int expected_overlap);

}  // namespace ominix::audio
