#!/usr/bin/env python3
"""The peer: the same checkpoint shape in transformers (bf16, SDPA attention, random weights made
on the GPU), timed the same way as bench_llm: prefill to the first token (prompt but the last token,
then the last token with logits_to_keep=1), and greedy decode at batch 1 with a DynamicCache.

  peer_transformers.py NAME [--prefill 512,2048] [--decode 128]
"""
import argparse
import json
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

from shapes import config


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--prefill", default="512,2048")
    ap.add_argument("--decode", type=int, default=128)
    args = ap.parse_args()
    cfg = AutoConfig.for_model(**{k: v for k, v in config(args.name).items() if k != "architectures"})
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    torch.cuda.synchronize()
    load_s = time.perf_counter() - t0
    V = cfg.vocab_size

    @torch.inference_mode()
    def prefill(n):
        ids = torch.randint(0, V, (1, n), device="cuda")
        cache = DynamicCache(config=cfg)
        torch.cuda.synchronize()
        t = time.perf_counter()
        if n > 1:
            model(ids[:, :-1], past_key_values=cache, use_cache=True, logits_to_keep=1)
        out = model(ids[:, -1:], past_key_values=cache, use_cache=True, logits_to_keep=1)
        out.logits.argmax(-1).item()
        return time.perf_counter() - t

    @torch.inference_mode()
    def decode(steps):
        ids = torch.randint(0, V, (1, 16), device="cuda")
        cache = DynamicCache(config=cfg)
        y = model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1].argmax(-1, keepdim=True)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            y = model(y, past_key_values=cache, use_cache=True).logits[:, -1].argmax(-1, keepdim=True)
            y.item()  # the token a caller would stream
        return (time.perf_counter() - t) / steps

    prefill(64)
    decode(4)
    out = {"engine": "transformers", "card": torch.cuda.get_device_name(), "load_s": load_s, "prefill": {}}
    for n in [int(x) for x in args.prefill.split(",")]:
        prefill(n)
        s = prefill(n)
        out["prefill"][str(n)] = {"seconds": s, "tok_s": n / s}
    torch.cuda.reset_peak_memory_stats()
    per = decode(args.decode)
    out["decode"] = {"steps": args.decode, "tok_s": 1 / per, "ms_per_token": 1e3 * per}
    out["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    print(json.dumps(out))


if __name__ == "__main__":
    main()
