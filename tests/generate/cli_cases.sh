#!/bin/sh
# End-to-end cases of `ominix generate` / `ominix chat` that need more than one regex: exit codes,
# stdout and stderr apart, counts. Prints "ok: CASE ..." only when every check passes.
#   usage: cli_cases.sh CASE OMINIX MODEL_DIR [EXPECTED...]
set -u
case_name=$1
bin=$2
model=$3
shift 3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
  echo "FAILED: $case_name: $*"
  for f in "$dir"/out "$dir"/err; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done
  exit 1
}
# Number of ids in the "ids" array of a JSON line.
count_ids() { sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/' "$1" | tr ',' '\n' | grep -c '[0-9]'; }

case $case_name in
chat_invalid_utf8)
  # A line that is not UTF-8 is rejected with its offset; the chat goes on and exits cleanly.
  printf 'hi\nab\377c\n/reset\nhi\n' | "$bin" chat --model "$model" --max-tokens 16 \
    >"$dir/out" 2>"$dir/err" || fail "exit code $?"
  grep -q "not valid UTF-8 (line 1, byte offset 2 of that line); it was not sent" "$dir/err" ||
    fail "no error with the offset"
  [ "$(sed -n 1p "$dir/out")" = "$(sed -n 2p "$dir/out")" ] || fail "the answers differ"
  [ "$(wc -l <"$dir/out")" -eq 2 ] || fail "expected two answers"
  ;;
chat_context)
  # Answers stop at the context of 512 positions; the next turn drops the oldest messages.
  printf 'hi\nhi again\n' | "$bin" chat --model "$model" --max-tokens 1000 --ignore-eos \
    >"$dir/out" 2>"$dir/err" || fail "exit code $?"
  [ "$(grep -c "the answer stopped at the model's context of 512 tokens (finish_reason \"length\")" "$dir/err")" -eq 2 ] ||
    fail "expected the context warning after each answer"
  grep -q "/reset starts over; --max-kv-size N keeps a sliding window" "$dir/err" || fail "no advice"
  grep -q "dropped the 2 oldest message(s) to fit the model's context of 512 tokens" "$dir/err" ||
    fail "the second turn did not drop the first"
  grep -q "^error" "$dir/err" && fail "a turn failed"
  ;;
generate_context)
  # --max-tokens past the context warns and stops there; -1 runs to the context silently.
  "$bin" generate --model "$model" --prompt-ids 1 --max-tokens 5000 --ignore-eos --format json \
    >"$dir/out" 2>"$dir/err" || fail "exit code $?"
  grep -q "warning: --max-tokens 5000 goes past the model's context of 512 tokens (the prompt has 1): generation stops at 511 tokens" "$dir/err" ||
    fail "no warning"
  grep -q '"finish_reason":"length"' "$dir/out" || fail "finish_reason"
  [ "$(count_ids "$dir/out")" -eq 511 ] || fail "expected 511 ids"
  "$bin" generate --model "$model" --prompt-ids 1 -n -1 --ignore-eos --format json \
    >"$dir/out" 2>"$dir/err" || fail "exit code $? (-n -1)"
  grep -q "warning" "$dir/err" && fail "-1 warned"
  [ "$(count_ids "$dir/out")" -eq 511 ] || fail "expected 511 ids with -n -1"
  ;;
chat_multiline)
  # "a\" + "b" and a """ block give the message "a\nb": the same answer as generate's prompt.
  want=$("$bin" generate --model "$model" --prompt "$(printf 'a\nb')" --max-tokens 12 -q) ||
    fail "generate failed"
  printf 'a\\\nb\n/reset\n"""\na\nb\n"""\n' | "$bin" chat --model "$model" --max-tokens 12 \
    >"$dir/out" 2>"$dir/err" || fail "exit code $?"
  [ "$(sed -n 1p "$dir/out")" = "$want" ] || fail "backslash continuation: not '$want'"
  [ "$(sed -n 2p "$dir/out")" = "$want" ] || fail "\"\"\" block: not '$want'"
  ;;
quiet)
  # --quiet: nothing on stderr, the text on stdout.
  "$bin" generate --model "$model" --prompt hi --max-tokens 4 --quiet >"$dir/out" 2>"$dir/err" ||
    fail "exit code $?"
  [ -s "$dir/err" ] && fail "stderr not empty"
  [ -s "$dir/out" ] || fail "no text"
  printf 'hi\n' | "$bin" chat --model "$model" --max-tokens 4 --stats -q >"$dir/out" 2>"$dir/err" ||
    fail "chat exit code $?"
  [ -s "$dir/err" ] && fail "chat stderr not empty"
  ;;
chat_template_file)
  # --chat-template FILE with --no-thinking renders as `ominix template` does: the prompt holds
  # exactly the tokens of that rendering.
  tmpl=$1
  echo '[{"role": "user", "content": "hi"}]' >"$dir/messages.json"
  "$bin" template --model "$model" --messages "$dir/messages.json" --chat-template "$tmpl" \
    --add-generation-prompt --no-thinking >"$dir/rendered" || fail "template failed"
  grep -q "(no thinking)" "$dir/rendered" || fail "--no-thinking not passed"
  n=$("$bin" tokenize --model "$model" --file "$dir/rendered" --no-special | tr ',' '\n' | grep -c .)
  "$bin" generate --model "$model" --prompt hi --chat-template "$tmpl" --no-thinking -n 1 \
    --format json >"$dir/out" 2>"$dir/err" || fail "exit code $?"
  grep -q "\"prompt_tokens\":$n," "$dir/out" || fail "expected $n prompt tokens"
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "ok: $case_name"
