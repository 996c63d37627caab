// Speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
// Decoding"; Chen et al. 2023): a draft model proposes N tokens, the target verifies them in one
// pass. Greedy: the longest prefix equal to the target's argmax is accepted, then the target's
// token, so the output equals the target alone. Sampling: the acceptance rule below, which keeps
// the target's output distribution. The loop itself runs inside Generator (GenerateParams::draft).
#pragma once

#include <span>

#include <mlx/array.h>

namespace ominix::generate {

namespace mx = mlx::core;

/// The outcome of verifying a draft: how many of its tokens were accepted, and the token that
/// follows them (the target's correction at the first rejection, or the bonus token).
struct Verification {
  int accepted = 0;
  int token = 0;
};

/// The standard acceptance rule. target_probs [n+1, V] (the target's sampling distribution at each
/// draft position and after the last), draft_probs [n, V] (the draft's, from which draft_tokens
/// [n] were drawn), key: an mx::random key. Accepts d_i with probability min(1, p_i(d_i)/q_i(d_i));
/// at the first rejection draws from norm(max(0, p_i - q_i)); if all are accepted, draws the bonus
/// token from p_n. Evaluates its arrays.
Verification verify_draft(const mx::array& target_probs, const mx::array& draft_probs,
                          std::span<const int> draft_tokens, const mx::array& key);

/// Greedy verification: accepts the longest prefix of draft_tokens [n] equal to target_argmax
/// [n+1], then target_argmax[accepted].
Verification verify_draft_greedy(std::span<const int> target_argmax,
                                 std::span<const int> draft_tokens);

}  // namespace ominix::generate
