#!/usr/bin/env python3
"""Side-by-side LLM benchmark on one card: for each model, writes a random-weight checkpoint in
the real shapes, runs OminiX (bench_llm) and the transformers peer, and prints one JSON line per
model with both, their ratio, and the fraction of the rooflines (decode: weight bytes per token /
measured copy bandwidth; prefill: 2 * active params * tokens / measured bf16 matmul rate).

  run.py --bench BUILD/bin/bench_llm --work /tmp/bench [--models qwen3-0.6b,...] [--bits 4]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

from shapes import bytes_per_decode_token, config, params

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--work", default="/tmp/ominix-bench")
    ap.add_argument("--models", default="qwen3-0.6b,qwen3-4b,qwen3-8b")
    ap.add_argument("--bits", type=int, default=None)
    ap.add_argument("--prefill", default="512,2048")
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--ceilings", default=None, help="JSON from ceilings.py (measured now if absent)")
    args = ap.parse_args()
    ceil = json.loads(args.ceilings) if args.ceilings else run_json([sys.executable, os.path.join(HERE, "ceilings.py")])
    print(json.dumps({"ceilings": ceil}), flush=True)
    for name in args.models.split(","):
        cfg = config(name)
        d = os.path.join(args.work, f"{name}-{args.bits or 'bf16'}")
        shutil.rmtree(d, ignore_errors=True)
        mk = [sys.executable, os.path.join(HERE, "make_random.py"), name, d]
        if args.bits:
            mk += ["--bits", str(args.bits)]
        subprocess.run(mk, check=True, capture_output=True)
        ours = run_json([args.bench, "--model", d, "--prefill", args.prefill, "--decode", str(args.decode)])
        shutil.rmtree(d, ignore_errors=True)
        peer = None if args.no_peer else run_json(
            [sys.executable, os.path.join(HERE, "peer_transformers.py"), name, "--prefill", args.prefill,
             "--decode", str(args.decode)])
        bpt = bytes_per_decode_token(cfg, args.bits)
        decode_bound = ceil["copy_bandwidth_GBs"] * 1e9 / bpt
        row = {"model": name, "weights": f"{args.bits}-bit" if args.bits else "bf16",
               "card": ours.get("card"), "bytes_per_token_GB": bpt / 1e9,
               "decode_roofline_tok_s": decode_bound, "ours": ours, "peer": peer,
               "decode_roofline_fraction": ours["decode"]["tok_s"] / decode_bound}
        active = params(cfg, active=True)
        row["prefill_roofline_fraction"] = {
            n: v["tok_s"] * 2 * active / (ceil["bf16_matmul_TFLOPs"] * 1e12) for n, v in ours["prefill"].items()}
        if peer:
            row["decode_speedup_vs_peer"] = ours["decode"]["tok_s"] / peer["decode"]["tok_s"]
            row["prefill_speedup_vs_peer"] = {n: ours["prefill"][n]["tok_s"] / peer["prefill"][n]["tok_s"]
                                              for n in ours["prefill"]}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
