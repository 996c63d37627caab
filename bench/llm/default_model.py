#!/usr/bin/env python3
"""The default model (a GGUF file) side by side: `ominix generate` (greedy, --ignore-eos, JSON
stats) and transformers loading the same GGUF (dequantized), greedy generate of the same length
after the same prompt, on the same device. Prints one JSON line.

  default_model.py --ominix build/bin/ominix --gguf FILE [--device gpu|cpu] [--tokens 256]
"""
import argparse
import json
import os
import subprocess
import time

PROMPT = "The capital of France is Paris. The capital of Germany is"


def ours(args):
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([args.ominix, "--device", args.device, "generate", "--model", args.gguf,
                              "--prompt", PROMPT, "--max-tokens", str(args.tokens), "--ignore-eos",
                              "--format", "json"], check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1])["stats"])
    runs.sort(key=lambda s: s["generation_tps"])
    mid = runs[len(runs) // 2]
    return {"decode_tok_s": mid["generation_tps"], "all_decode_tok_s": [s["generation_tps"] for s in runs],
            "time_to_first_token_s": mid["time_to_first_token_s"], "prompt_tokens": mid["prompt_tokens"],
            "peak_memory_gb": mid["peak_memory_bytes"] / 1e9}


def peer(args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    dev = "cuda" if args.device == "gpu" else "cpu"
    d, f = os.path.split(os.path.abspath(args.gguf))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).to(dev).eval()
    ids = tok(PROMPT, return_tensors="pt").input_ids.to(dev)

    def run(n):
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        if dev == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    run(8)  # warm-up
    ttft = sorted(run(1) for _ in range(3))[1]
    full = sorted(run(args.tokens + 1) for _ in range(args.runs))
    return {"decode_tok_s": args.tokens / (full[len(full) // 2] - ttft), "time_to_first_token_s": ttft,
            "prompt_tokens": int(ids.shape[1]), "dtype": "float32 (GGUF dequantized)",
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if dev == "cuda" else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ominix", required=True)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--device", default="gpu", choices=["gpu", "cpu"])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    row = {"model": os.path.basename(args.gguf), "device": args.device, "tokens": args.tokens, "ours": ours(args)}
    if not args.no_peer:
        row["peer"] = peer(args)
        row["decode_speedup_vs_peer"] = row["ours"]["decode_tok_s"] / row["peer"]["decode_tok_s"]
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
