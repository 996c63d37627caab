#!/bin/sh
# `ominix convert` end to end: cli.sh CASE OMINIX FIXTURES WORKDIR (tests/convert/convert.cmake).
#   moe SRC REF   convert SRC (a Hugging Face MoE checkpoint) at 4 bits in groups of 32; generate
#                 on it gives the tokens of REF (mlx-lm's conversion of SRC)
#   funasr        a converted FunASR-Nano directory transcribes as the original
#   bad_config    a broken config.json: an error naming it, no OUT or OUT.partial left
#   out_is_file   --out naming a file: refused, the file kept
#   unwritable    --out under a file: an ominix error (exit 1) naming the path
set -u
case_=$1 ominix=$2 fx=$3 work=$4
shift 4
rm -rf "$work" && mkdir -p "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }

case $case_ in
moe)
  src=$fx/$1 ref=$fx/$2
  "$ominix" convert --model "$src" --out "$work/q4" --quantize 4 --group-size 32 || fail convert
  ids=5,17,33,2,9,41,7,3
  got=$("$ominix" generate --model "$work/q4" --prompt-ids $ids --max-tokens 16 --ignore-eos \
        --format json | grep -o '"ids":\[[0-9,]*\]') || fail "generate on the converted model"
  want=$("$ominix" generate --model "$ref" --prompt-ids $ids --max-tokens 16 --ignore-eos \
         --format json | grep -o '"ids":\[[0-9,]*\]') || fail "generate on $ref"
  echo "converted: $got"; echo "mlx-lm:    $want"
  [ "$got" = "$want" ] || fail "tokens differ"
  ;;
funasr)
  "$ominix" convert --model "$fx/models/funasr_nano/tiny" --out "$work/nano" || fail convert
  for clip in speech_001 speech_003; do
    got=$("$ominix" transcribe --model "$work/nano" "$fx/audio/$clip.wav" | cut -f2) ||
      fail "transcribe with the converted model"
    want=$("$ominix" transcribe --model "$fx/models/funasr_nano/tiny" "$fx/audio/$clip.wav" |
           cut -f2) || fail "transcribe with the original"
    echo "$clip: converted '$got', original '$want'"
    [ -n "$want" ] && [ "$got" = "$want" ] || fail "transcripts differ"
  done
  ;;
bad_config)
  mkdir "$work/src" && cp "$fx/models/qwen3/qwen2_tied/model.safetensors" "$work/src/" &&
    printf '{"model_type": "qwen2", "hidden_size": ' > "$work/src/config.json" || exit 1
  for flags in "" "--quantize 4"; do
    "$ominix" convert --model "$work/src" --out "$work/out" $flags 2> "$work/err"
    rc=$?; cat "$work/err"
    [ $rc -eq 1 ] || fail "exit status $rc, expected 1 ($flags)"
    grep -q "src/config.json" "$work/err" || fail "the message does not name config.json"
    [ ! -e "$work/out" ] && [ ! -e "$work/out.partial" ] || fail "output left behind ($flags)"
  done
  ;;
out_is_file)
  echo "keep me" > "$work/file" && : > "$work/empty" || exit 1
  for f in file empty; do
    "$ominix" convert --model "$fx/models/qwen3/qwen2_tied" --out "$work/$f" 2> "$work/err"
    rc=$?; cat "$work/err"
    [ $rc -eq 1 ] || fail "exit status $rc, expected 1"
    grep -q "$work/$f: exists and is not a directory" "$work/err" || fail "message"
    [ -f "$work/$f" ] && [ ! -e "$work/$f.partial" ] || fail "$f replaced or output left behind"
  done
  [ "$(cat "$work/file")" = "keep me" ] && [ ! -s "$work/empty" ] || fail "a file was changed"
  ;;
unwritable)
  echo "x" > "$work/file"
  "$ominix" convert --model "$fx/models/qwen3/qwen2_tied" --out "$work/file/sub" 2> "$work/err"
  rc=$?; cat "$work/err"
  [ $rc -eq 1 ] || fail "exit status $rc, expected 1 (an ominix error)"
  grep -q "$work/file/sub" "$work/err" || fail "the message does not name the path"
  ;;
*) fail "unknown case $case_" ;;
esac
echo PASS
