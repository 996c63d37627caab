#!/usr/bin/env bash
# The new-user check: runs the shell commands of README.md and docs/**/*.md verbatim, in document
# order, as a user would type them in a fresh clone, so that the docs and what works cannot drift.
#
#   tests/newuser/run.sh BUILD_DIR           # run them (ctest: newuser.docs_commands)
#   tests/newuser/run.sh BUILD_DIR --list    # only list the blocks and what would happen to each
#
# Which blocks run (docs/install.md, "Commands in the docs are tested"): every fenced block whose
# info string starts with `sh` or `bash` carries a marker, the rest of its info string:
#   ```sh run                      runs
#   ```sh needs: default-setup     runs when BUILD_DIR is what plain scripts/setup.sh makes (the
#                                  CPU wheel and the default model in .deps/), else is skipped
#   ```sh skip: REASON             never runs; the reason (a model not in CI, a GPU, the network,
#                                  a developer command that rewrites fixtures...) is required
# A block without a marker, or with any other, fails the check without running: whoever adds a
# command decides whether CI runs it, and a typo cannot silently skip one. Output, synopses and
# placeholders belong in plain ``` blocks, which are never run.
#
# The clone: a scratch folder outside the source tree whose entries link to the source tree's
# (so `examples/...`, `tests/fixtures/...` and `scripts/...` resolve), with `build` linking to
# BUILD_DIR; HOME is a scratch folder too (`~/ominix` is a scratch install prefix). Each block
# runs from the clone's root with bash -euo pipefail; what a block writes there stays for the
# next. Everything is removed at the end (kept with OMINIX_KEEP_WORK=1).
# OMINIX_NEWUSER_ONLY=GLOB runs only the blocks whose FILE:LINE matches, e.g. 'README.md:*'.
set -uo pipefail
ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="$(cd -P "${1:?usage: run.sh BUILD_DIR [--list]}" 2>/dev/null && pwd)" ||
  { echo "run.sh: '${1}' is not a build directory (usage: run.sh BUILD_DIR [--list])" >&2; exit 2; }
LIST=0
[[ "${2:-}" == "--list" ]] && LIST=1
BLOCK_TIMEOUT="${OMINIX_NEWUSER_BLOCK_TIMEOUT:-300}"

DOCS=(README.md)
while IFS= read -r f; do DOCS+=("$f"); done < <(cd "$ROOT" && find docs -name '*.md' | LC_ALL=C sort)

# Splits a markdown file into its sh/bash blocks: for each, a header line
# "\x01<line>\x01<marker>" then the block's lines (its fence's indentation removed).
extract() {
  awk '
    !inb && match($0, /^[ ]*```+[ ]*(sh|bash)([ ].*)?$/) {
      indent = $0; sub(/[^ ].*$/, "", indent); fence = $0; sub(/^[ ]*/, "", fence)
      ticks = fence; sub(/[^`].*$/, "", ticks)
      info = substr(fence, length(ticks) + 1); sub(/^[ ]*(sh|bash)[ ]*/, "", info)
      printf "\001%d\001%s\n", NR, info; inb = 1; next
    }
    !inb && /^[ ]*```/ { other = 1; inb = 2; next }
    inb == 1 && $0 ~ "^[ ]*" ticks "[ ]*$" { inb = 0; next }
    inb == 2 && /^[ ]*```[ ]*$/ { inb = 0; next }
    inb == 1 { line = $0; if (substr(line, 1, length(indent)) == indent) line = substr(line, length(indent) + 1); print line }
  ' "$ROOT/$1"
}

# Whether BUILD_DIR is what plain scripts/setup.sh makes, so that running it again changes nothing
# (no download, no reconfiguration): empty if so, else why not.
default_setup_missing() {
  # shellcheck source=../../scripts/mlx-pins.sh
  source "$ROOT/scripts/mlx-pins.sh"
  local mlx="$ROOT/.deps/mlx-cpu-$MLX_VERSION/mlx"
  grep -qx "MLX_ROOT:PATH=$mlx" "$BUILD_DIR/CMakeCache.txt" ||
    { echo "the build's MLX_ROOT is not $mlx"; return; }
  [[ -f "$ROOT/.deps/mlx-cpu-$MLX_VERSION/.complete" ]] || { echo "no complete $mlx"; return; }
  [[ -f "$ROOT/.deps/gemma3-270m/.complete" ]] || echo "the default model is not in .deps/gemma3-270m"
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ominix-newuser.XXXXXX")"
[[ -n "${OMINIX_KEEP_WORK:-}" ]] || trap 'rm -rf "$WORK"' EXIT
CLONE="$WORK/clone"
mkdir -p "$CLONE" "$WORK/home"
for entry in "$ROOT"/* "$ROOT"/.[!.]*; do
  name="$(basename "$entry")"
  [[ -e "$entry" ]] || continue
  case "$name" in build | build-* | .git) continue ;; esac
  ln -s "$entry" "$CLONE/$name"
done
ln -s "$BUILD_DIR" "$CLONE/build"

ran=0 skipped=0 failed=()
for doc in "${DOCS[@]}"; do
  block="" where="" marker=""
  run_block() {
    [[ -n "$where" ]] || return 0
    # shellcheck disable=SC2053
    [[ "$where" == ${OMINIX_NEWUSER_ONLY:-*} ]] || return 0
    local why=""
    case "$marker" in
      run) ;;
      "")
        failed+=("$where: no marker")
        echo "== $where: FAIL: no marker (\`\`\`sh run, \`\`\`sh needs: default-setup or \`\`\`sh skip: REASON)"
        return
        ;;
      "needs: default-setup") why="$(default_setup_missing)" ;;
      skip:*)
        why="${marker#skip:}"
        why="${why# }"
        if [[ -z "${why// /}" ]]; then
          failed+=("$where: 'skip:' without a reason")
          echo "== $where: FAIL: 'skip:' needs a reason"
          return
        fi
        ;;
      *)
        failed+=("$where: unknown marker '$marker'")
        echo "== $where: FAIL: unknown marker '$marker' (use 'run', 'needs: default-setup' or 'skip: REASON')"
        return
        ;;
    esac
    if [[ -n "$why" ]]; then
      echo "== $where: skipped ($why)"
      skipped=$((skipped + 1))
      return
    fi
    if ((LIST)); then
      echo "== $where: runs"
      printf '%s\n' "$block" | sed 's/^/   /'
      return
    fi
    echo "== $where: running"
    printf '%s\n' "$block" | sed 's/^/   $ /'
    local start=$SECONDS
    (cd "$CLONE" && env -u OMINIX_MODEL HOME="$WORK/home" OMINIX_BUILD_DIR="$BUILD_DIR" \
      timeout "$BLOCK_TIMEOUT" bash -euo pipefail -c "$block") 2>&1 | sed 's/^/   | /'
    local rc=${PIPESTATUS[0]}
    echo "   (exit $rc, $((SECONDS - start)) s)"
    ran=$((ran + 1))
    ((rc == 0)) || failed+=("$where: exit $rc")
  }
  while IFS= read -r line; do
    if [[ "$line" == $'\001'* ]]; then
      run_block
      IFS=$'\001' read -r _ n marker <<<"$line"
      marker="${marker%"${marker##*[! ]}"}"
      where="$doc:$n" block=""
    else
      block+="${block:+$'\n'}$line"
    fi
  done < <(extract "$doc")
  run_block
done

echo "newuser: $ran block(s) ran, $skipped skipped, ${#failed[@]} failed"
if ((${#failed[@]})); then
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "newuser OK"
