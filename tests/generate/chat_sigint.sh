#!/bin/sh
# ominix chat: Ctrl-C (SIGINT) during an answer stops that answer only; the chat goes on and
# exits cleanly at /exit.   usage: chat_sigint.sh OMINIX MODEL_DIR
set -u
bin=$1
model=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/in"
"$bin" --device cpu chat --model "$model" --max-tokens 1000000 --ignore-eos --max-kv-size 64 \
  <"$dir/in" >"$dir/out" 2>"$dir/err" &
pid=$!
exec 3>"$dir/in"
echo hi >&3
i=0  # wait until the answer streams
while [ ! -s "$dir/out" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$dir/out" ] || { echo "no answer streamed"; cat "$dir/err"; kill $pid; exit 1; }
sleep 0.3
kill -INT $pid
sleep 0.5
if ! kill -0 $pid 2>/dev/null; then
  echo "chat exited on Ctrl-C during an answer"
  cat "$dir/err"
  exit 1
fi
echo "/exit" >&3
exec 3>&-
wait $pid
rc=$?
cat "$dir/err"
[ $rc -eq 0 ] || { echo "exit code $rc"; exit 1; }
grep -q "\[stopped\]" "$dir/err" || { echo "no [stopped] note"; exit 1; }
echo "ok: the answer stopped, the chat went on and exited at /exit"
