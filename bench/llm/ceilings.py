#!/usr/bin/env python3
"""Measures the card's two ceilings once: device-to-device copy bandwidth (bytes read + written)
and the bf16 matmul rate (8192^3, random data), both with CUDA events, median of repeats."""
import json

import torch


def timed(fn, reps=20):
    fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return sorted(times)[len(times) // 2]


def main():
    n = 1 << 30  # 2 GiB of bf16
    src = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    s = timed(lambda: dst.copy_(src))
    bw = 2 * src.numel() * 2 / s
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    s = timed(lambda: a @ b)
    flops = 2 * 8192**3 / s
    print(json.dumps({"card": torch.cuda.get_device_name(), "copy_bandwidth_GBs": bw / 1e9, "bf16_matmul_TFLOPs": flops / 1e12}))


if __name__ == "__main__":
    main()
