#!/usr/bin/env python3
"""Writes a random-weight checkpoint in the real shapes of a benchmarked model.

  make_random.py NAME OUT_DIR [--bits 4] [--tiny]

bf16: the Hugging Face layout (experts stacked as mlx-lm's switch_mlp, which our loaders also
take). --bits: the mlx-community layout (packed uint32 weights + bf16 scales/biases, group 64) with
config.json's quantization; the packed words are drawn directly as random integers (no bf16 tensor
is made and quantized), so a 47 B-parameter model is written at disk speed. Routers, norms and
biases stay bf16. Random bits are as costly to read as real ones; values stay small so activations
stay finite. --tiny: the same family at toy widths (shapes.tiny_config), for a CPU check.
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

from shapes import config, tensor_shapes, tiny_config


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("out")
    ap.add_argument("--bits", type=int, default=None)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    cfg = tiny_config(args.name) if args.tiny else config(args.name)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator(device=dev).manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    if args.bits:
        cfg["quantization"] = {"group_size": args.group_size, "bits": args.bits, "mode": "affine"}
    shard, shard_bytes, index, n = {}, 0, {}, 0

    def flush():
        nonlocal shard, shard_bytes, n
        if not shard:
            return
        fname = f"model-{n:05d}.safetensors"
        save_file(shard, os.path.join(args.out, fname), metadata={"format": "pt"})
        for k in shard:
            index[k] = fname
        shard, shard_bytes, n = {}, 0, n + 1

    def add(name, t):
        nonlocal shard_bytes
        shard[name] = t.cpu()
        shard_bytes += t.numel() * t.element_size()
        if shard_bytes > 4 << 30:
            flush()

    for name, shape, kind in tensor_shapes(cfg):
        if kind == "norm":
            add(name, torch.ones(shape, dtype=torch.bfloat16))
            continue
        if kind == "bias":
            add(name, (torch.randn(shape, generator=g, device=dev) * 0.02).to(torch.bfloat16))
            continue
        if args.bits and kind in ("linear", "embed", "experts"):
            *lead, cols = shape
            prefix = name[: -len(".weight")]
            packed = (*lead, cols * args.bits // 32)
            groups = (*lead, cols // args.group_size)
            bits = torch.randint(-(2**31), 2**31 - 1, packed, generator=g, device=dev, dtype=torch.int64)
            add(name, bits.to(torch.int32).view(torch.uint32))
            add(prefix + ".scales", (torch.rand(groups, generator=g, device=dev) * 2e-3 + 1e-3).to(torch.bfloat16))
            add(prefix + ".biases", (-(2**args.bits - 1) / 2 * 2e-3 * torch.ones(groups, device=dev)).to(torch.bfloat16))
            continue
        add(name, (torch.randn(shape, generator=g, device=dev) * 0.02).to(torch.bfloat16))
    flush()
    json.dump({"metadata": {}, "weight_map": index}, open(os.path.join(args.out, "model.safetensors.index.json"), "w"))
    json.dump(cfg, open(os.path.join(args.out, "config.json"), "w"), indent=1)
    print(json.dumps({"wrote": args.out, "shards": n}))


if __name__ == "__main__":
    main()
