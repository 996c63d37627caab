#!/usr/bin/env python3
"""The peer: the same checkpoint shape in transformers (bf16, SDPA attention, random weights made
on the GPU), timed the same way as bench_llm: prefill to the first token (prompt but the last token,
then the last token with logits_to_keep=1), and greedy decode at batch 1 with a DynamicCache.

  peer_transformers.py NAME [--prefill 512,2048] [--decode 128] [--tiny]

--tiny: the toy-width config (shapes.tiny_config); runs on the CPU in fp32 where there is no GPU.
"""
import argparse
import json
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

from shapes import config, tiny_config


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--prefill", default="512,2048")
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    shape = tiny_config(args.name) if args.tiny else config(args.name)
    cfg = AutoConfig.for_model(**{k: v for k, v in shape.items() if k != "architectures"})
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    with torch.device(dev):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation="sdpa")
    model.eval()
    sync()
    load_s = time.perf_counter() - t0
    V = cfg.vocab_size

    @torch.inference_mode()
    def prefill(n):
        ids = torch.randint(0, V, (1, n), device=dev)
        cache = DynamicCache(config=cfg)
        sync()
        t = time.perf_counter()
        if n > 1:
            model(ids[:, :-1], past_key_values=cache, use_cache=True, logits_to_keep=1)
        out = model(ids[:, -1:], past_key_values=cache, use_cache=True, logits_to_keep=1)
        out.logits.argmax(-1).item()
        return time.perf_counter() - t

    @torch.inference_mode()
    def decode(steps):
        ids = torch.randint(0, V, (1, 16), device=dev)
        cache = DynamicCache(config=cfg)
        y = model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1].argmax(-1, keepdim=True)
        sync()
        t = time.perf_counter()
        for _ in range(steps):
            y = model(y, past_key_values=cache, use_cache=True).logits[:, -1].argmax(-1, keepdim=True)
            y.item()  # the token a caller would stream
        return (time.perf_counter() - t) / steps

    prefill(64)
    decode(4)
    card = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    out = {"engine": "transformers", "card": card, "dtype": str(dtype), "load_s": load_s, "prefill": {}}
    for n in [int(x) for x in args.prefill.split(",")]:
        prefill(n)
        s = prefill(n)
        out["prefill"][str(n)] = {"seconds": s, "tok_s": n / s}
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    per = decode(args.decode)
    out["decode"] = {"steps": args.decode, "tok_s": 1 / per, "ms_per_token": 1e3 * per}
    out["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9 if dev == "cuda" else None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
