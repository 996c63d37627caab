#!/usr/bin/env bash
# Writes a folder with what bench/asr/peer_funasr.py needs beyond torch and numpy, to carry to a
# machine without network where only torch/transformers are installed:
#   funasr/  funasr's Python sources (funasr 1.4.16 as installed here), with a two-line
#            __init__.py: funasr's own imports every submodule at start-up, and with them
#            rapidfuzz, kaldiio, hydra, librosa, modelscope ...; the peer imports only the module
#            files of SANMEncoder, CifPredictorV2, ParaformerSANMDecoder and WavFrontend.
#   yaml/    PyYAML's pure-Python package (funasr.models.scama.utils imports yaml; transformers
#            usually brings it too: the copy is only used where it does not).
#   torchaudio/compliance/kaldi.py with an empty torchaudio/__init__.py: the Kaldi fbank in plain
#            torch ops that funasr's WavFrontend calls (funasr.utils.fbank uses torchaudio's, else
#            the compiled kaldi-native-fbank; torchaudio's compiled parts are not needed for it).
#            Taken from an installed torchaudio, else from the wheel TORCHAUDIO_WHEEL names, else
#            from one `pip download torchaudio --no-deps` fetches.
# Usage: bench/asr/pack_peer.sh OUT_DIR [SITE_PACKAGES]   (default: /opt/ominix-ref's)
# Then: python3 bench/asr/run.py --bench build/bin/bench_asr --funasr-path OUT_DIR
set -euo pipefail
OUT="${1:?usage: pack_peer.sh OUT_DIR [SITE_PACKAGES]}"
SITE="${2:-$(/opt/ominix-ref/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')}"
[ -d "$SITE/funasr" ] || { echo "no funasr package in $SITE" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
(cd "$SITE" && { find funasr \( -name '*.py' -o -name version.txt \); ls yaml/*.py; } | tar -cf - -T -) \
  | tar -xf - -C "$OUT"
# torchaudio's Kaldi-compatible fbank (pure Python over torch).
mkdir -p "$OUT/torchaudio/compliance"
KALDI="$(cd /tmp && /opt/ominix-ref/bin/python -c 'import torchaudio.compliance.kaldi as k; print(k.__file__)' 2>/dev/null || true)"
if [ -n "$KALDI" ]; then
  cp "$KALDI" "$OUT/torchaudio/compliance/kaldi.py"
else
  WHEEL="${TORCHAUDIO_WHEEL:-}"
  if [ -z "$WHEEL" ]; then
    TMP="$(mktemp -d)"
    /opt/ominix-ref/bin/python -m pip download --quiet --no-deps --dest "$TMP" torchaudio ||
      { echo "no torchaudio installed and none downloadable: set TORCHAUDIO_WHEEL=path/to/torchaudio-*.whl" >&2; exit 1; }
    WHEEL="$(ls "$TMP"/torchaudio-*.whl)"
  fi
  /opt/ominix-ref/bin/python - "$WHEEL" "$OUT/torchaudio/compliance/kaldi.py" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as f:
    f.write(z.read("torchaudio/compliance/kaldi.py"))
PY
fi
cat > "$OUT/torchaudio/__init__.py" <<'PY'
"""Only torchaudio.compliance.kaldi (pure torch), for funasr's WavFrontend in the benchmark peer
(bench/asr/pack_peer.sh). Not the torchaudio package."""
PY
: > "$OUT/torchaudio/compliance/__init__.py"
cat > "$OUT/funasr/__init__.py" <<'PY'
"""funasr, trimmed for the benchmark peer (bench/asr/pack_peer.sh): no eager import of every
submodule, so that the model files import with torch, numpy and pyyaml alone."""
import os

with open(os.path.join(os.path.dirname(__file__), "version.txt")) as f:
    __version__ = f.read().strip()
PY
echo "$OUT: $(du -sh "$OUT" | cut -f1), funasr $(cat "$OUT/funasr/version.txt"), torchaudio.compliance.kaldi from ${KALDI:-$WHEEL}"
