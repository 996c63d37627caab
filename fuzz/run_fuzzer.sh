#!/usr/bin/env bash
# Runs one libFuzzer target for $OMINIX_FUZZ_SECONDS seconds (default 60): the ctest test that
# fuzz/CMakeLists.txt registers for each target (label `fuzz`). Run from the source tree.
#   run_fuzzer.sh BINARY CORPUS_DIR MAX_LEN "PREFIX_BYTES" SEED_GLOB...
# The corpus persists between runs; the seeds (committed fixtures no longer than MAX_LEN) are
# copied into CORPUS_DIR/../seeds-NAME, each also with every PREFIX byte in front when given.
# Exit status: libFuzzer's (non-zero on a crash, a sanitizer report, a leak, a timeout or an
# out-of-memory); the reproducer is written as CORPUS_DIR/../artifacts-NAME/crash-... etc.
set -euo pipefail
bin=$1 corpus=$2 max_len=$3 prefixes=$4
shift 4
name=$(basename "$bin")
seeds="$(dirname "$corpus")/seeds-$name"
artifacts="$(dirname "$corpus")/artifacts-$name"
mkdir -p "$corpus" "$seeds" "$artifacts"
n=0
shopt -s nullglob
for glob in "$@"; do
  for f in $glob; do
    [[ -f "$f" ]] || continue
    (( $(stat -c %s "$f") <= max_len )) || continue
    key=$(echo "$f" | tr '/' '_')
    if [[ -z "$prefixes" ]]; then
      cp "$f" "$seeds/$key"
    else
      for p in ${prefixes//;/ }; do
        { printf "\\x$(printf %02x "$p")"; cat "$f"; } > "$seeds/$p-$key"
      done
    fi
    n=$((n + 1))
  done
done
seconds=${OMINIX_FUZZ_SECONDS:-60}
echo "$name: $n seed files, ${seconds}s, corpus $corpus"
# MLX is not instrumented: leaks in its global state at exit are not ours.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
  -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$seeds"
