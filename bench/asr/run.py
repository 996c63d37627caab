#!/usr/bin/env python3
"""Side-by-side ASR benchmark on one card: Paraformer-large-shaped random weights (see
paraformer_config.py) written once in FunASR's layout, then OminiX (bench_asr) and funasr's PyTorch
modules (peer_funasr.py) on the same files, in the same run:

  - real-time factor at batch 1 on 10 s and 60 s of speech (OminiX cuts the 60 s file into
    chunks as `ominix transcribe` does, and also runs it in one pass like the peer);
  - throughput of a batch of 16 files of 10 s (seconds of audio per second);
  - the ratios ours / peer, and whether both produced the same token ids; the peer runs twice, with
    PyTorch's default full-float32 matmuls and with TF32 (what MLX's CUDA backend uses for
    float32), so both comparisons are in the output.

The audio is the repository's recorded utterances (tests/fixtures/audio/speech_00{1,3}.wav)
alternated with 0.3 s pauses up to the length. Prints one JSON object per line: the setup, then
one row per measurement.

  python3 bench/asr/run.py --bench BUILD/bin/bench_asr [--funasr-path PEER_DIR] [--work DIR]
  python3 bench/asr/run.py --bench BUILD/bin/bench_asr --tiny      # a quick check on a CPU

Needs torch, numpy and pyyaml (a transformers install has them) plus funasr's module files: either
funasr installed, or --funasr-path pointing at the folder bench/asr/pack_peer.sh writes.
"""
import argparse
import json
import os
import subprocess
import sys
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from paraformer_config import config, params  # noqa: E402


def run_json(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\nfailed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def read_wav(path):
    with wave.open(path, "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def speech(seconds, offset=0):
    """Recorded utterances alternated with 0.3 s pauses, cut to `seconds`."""
    utts = [read_wav(os.path.join(ROOT, "tests", "fixtures", "audio", f"speech_00{k}.wav")) for k in (1, 3)]
    pause = np.zeros(int(0.3 * 16000), np.float32)
    parts, n, i = [], 0, offset
    while n < seconds * 16000:
        parts += [utts[i % 2], pause]
        n += len(utts[i % 2]) + len(pause)
        i += 1
    return np.concatenate(parts)[: int(seconds * 16000)]


def write_wav(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="bench_asr binary")
    ap.add_argument("--work", default="/tmp/ominix-bench-asr")
    ap.add_argument("--funasr-path", default=None, help="folder holding the funasr package (pack_peer.sh)")
    ap.add_argument("--tiny", action="store_true", help="toy shapes, short audio: checks the path on a CPU")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    peer = [sys.executable, os.path.join(HERE, "peer_funasr.py")]
    if args.funasr_path:
        peer += ["--funasr-path", args.funasr_path]

    model = os.path.join(args.work, "paraformer-tiny" if args.tiny else "paraformer-large")
    made = run_json(peer + ["make", model] + (["--tiny"] if args.tiny else []))
    lengths = [2, 6] if args.tiny else [10, 60]
    rtf_files = []
    for s in lengths:
        rtf_files.append(os.path.join(args.work, f"speech_{s}s.wav"))
        write_wav(rtf_files[-1], speech(s))
    batch_files = []
    n_batch = 4 if args.tiny else args.batch
    for k in range(n_batch):
        batch_files.append(os.path.join(args.work, f"batch_{k:02d}.wav"))
        write_wav(batch_files[-1], speech(lengths[0], offset=k))
    files = ["--rtf", ",".join(rtf_files), "--batch-files", ",".join(batch_files), "--runs", str(args.runs)]
    # 60 s: OminiX cuts at pauses into chunks of at most 20 s, ~3 chunks; the tiny run uses 4 s.
    ours = run_json([args.bench, "--model", model] + files + (["--chunk-seconds", "4"] if args.tiny else []))
    theirs = None if args.no_peer else run_json(peer + ["bench", model] + files)
    # The peer again with TF32 matmuls, as MLX's CUDA backend computes float32 matmuls.
    tf32 = None if args.no_peer else run_json(peer + ["bench", model, "--tf32"] + files)
    cfg = config(args.tiny)
    print(json.dumps({"setup": {"model": "paraformer-tiny" if args.tiny else "paraformer-large (vocab8404 shapes)",
                                "parameters": made["parameters"], "parameters_formula": params(cfg),
                                "dtype": "float32", "card_ours": ours.get("card"),
                                "card_peer": theirs and theirs.get("card"),
                                "peer": theirs and {k: theirs.get(k) for k in ("engine", "funasr", "torch")},
                                "load_s_ours": ours["load_s"], "peak_memory_gb_ours": ours["peak_memory_gb"],
                                "peak_memory_gb_peer": theirs and theirs.get("peak_memory_gb")}}), flush=True)
    for i, row in enumerate(ours["rtf"]):
        out = {"measure": "rtf_batch1", "audio_seconds": row["audio_seconds"],
               "ours_chunked": {k: row["chunked"][k] for k in ("rtf", "seconds", "chunks", "tokens")},
               "ours_one_pass": {k: row["one_pass"][k] for k in ("rtf", "seconds", "tokens")}}
        for name, peer_out in (("peer", theirs), ("peer_tf32", tf32)):
            if not peer_out:
                continue
            p = peer_out["rtf"][i]["one_pass"]
            out[f"{name}_one_pass"] = {k: p[k] for k in ("rtf", "seconds", "tokens")}
            out[f"speedup_one_pass_vs_{name}"] = p["seconds"] / row["one_pass"]["seconds"]
            out[f"speedup_chunked_vs_{name}"] = p["seconds"] / row["chunked"]["seconds"]
            out[f"same_ids_one_pass_{name}"] = p["ids"] == row["one_pass"]["ids"]
        print(json.dumps(out), flush=True)
    out = {"measure": f"throughput_batch{n_batch}", "ours": ours["batch"]}
    for name, peer_out in (("peer", theirs), ("peer_tf32", tf32)):
        if peer_out:
            out[name] = peer_out["batch"]
            out[f"speedup_vs_{name}"] = peer_out["batch"]["seconds"] / ours["batch"]["seconds"]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
