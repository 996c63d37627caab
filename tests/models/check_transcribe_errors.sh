#!/bin/sh
# `ominix transcribe` with bad files among good ones (issue 16, defect 8) and clips too short for a
# token (defect 3): every good file is still transcribed, each bad one is reported naming it (text
# mode: on stderr; JSON mode: an entry whose "error" is set, the same keys as the others), and the
# exit status is 1. Usage: check_transcribe_errors.sh OMINIX MODEL_DIR AUDIO_FIXTURES SHORT_FIXTURES
set -u
ominix=$1 model=$2 audio=$3 short=$4
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0
check() {  # check DESCRIPTION COMMAND...: a failed grep or test marks the script failed
  what=$1
  shift
  if ! "$@"; then
    echo "FAIL: $what"
    status=1
  fi
}

good1=$audio/speech_001.wav good2=$audio/speech_003.wav
bad1=$audio/not_audio.wav bad2=$audio/empty.wav
# Text mode: the bad files in between, a directory and a missing file at the end.
"$ominix" transcribe --model "$model" "$good1" "$bad1" "$bad2" "$good2" "$audio" "$tmp/missing.wav" \
  >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err"
check "text: exit status 1 (got $rc)" [ "$rc" -eq 1 ]
check "text: both good files on stdout" [ "$(wc -l <"$tmp/out")" -eq 2 ]
check "text: speech_001 transcribed" grep -q "speech_001.wav	在和" "$tmp/out"
check "text: speech_003 transcribed after the bad files" grep -q "speech_003.wav	在和" "$tmp/out"
check "text: not_audio.wav named" grep -q "^error: .*not_audio.wav: not a readable audio file" "$tmp/err"
check "text: empty.wav named" grep -q "^error: .*empty.wav: not audio: the file is empty" "$tmp/err"
check "text: the directory named" grep -q "^error: $audio: cannot open audio: is a directory" "$tmp/err"
check "text: the missing file named" grep -q "^error: .*missing.wav: cannot open audio: no such file" "$tmp/err"
check "text: a count of the failures" grep -q "^error: 4 of 6 file(s) could not be transcribed" "$tmp/err"

# JSON mode, the bad file inside a batch: every file has its entry, in order, with the same keys.
"$ominix" transcribe --model "$model" --format json --batch 3 "$good1" "$bad1" "$good2" "$bad2" \
  >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err"
check "json: exit status 1 (got $rc)" [ "$rc" -eq 1 ]
check "json: 4 entries" [ "$(grep -c '^    "file": ' "$tmp/out")" -eq 4 ]
check "json: 2 successes" [ "$(grep -c '^    "error": null' "$tmp/out")" -eq 2 ]
check "json: 2 errors" [ "$(grep -c '^    "error": "' "$tmp/out")" -eq 2 ]
check "json: keys and order of a success" grep -Pzq \
  '"file": "[^"]*speech_003.wav",\n *"text": "在和[^"]*",\n *"duration": [0-9.e-]+,\n *"rtf": [0-9.e-]+,\n *"chunks": 1,\n *"error": null\n' "$tmp/out"
check "json: keys and order of a failure" grep -Pzq \
  '"file": "[^"]*not_audio.wav",\n *"text": null,\n *"duration": null,\n *"rtf": null,\n *"chunks": null,\n *"error": "[^"]*not_audio.wav: not a readable audio file' "$tmp/out"
check "json: the summary on stderr" grep -q "^error: 2 of 4 file(s) could not be transcribed" "$tmp/err"

# Clips too short for a token (funasr's transcript of each is empty: gen_paraformer_short.py):
# an empty text and status 0, alone and batched with speech.
for clip in "$audio/stereo.wav" "$audio/eight_channels.wav" "$audio/float.wav" "$short/sine_1200.wav" \
  "$audio/empty_frames.wav"; do
  "$ominix" transcribe --model "$model" "$clip" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  cat "$tmp/out" "$tmp/err"
  check "short $clip: exit status 0 (got $rc)" [ "$rc" -eq 0 ]
  check "short $clip: an empty transcript" [ "$(cat "$tmp/out")" = "$clip	" ]
done
"$ominix" transcribe --model "$model" --batch 2 "$good1" "$audio/stereo.wav" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err"
check "short in a batch: exit status 0 (got $rc)" [ "$rc" -eq 0 ]
check "short in a batch: an empty transcript" grep -qx "$audio/stereo.wav	" "$tmp/out"
exit $status
