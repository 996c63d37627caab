#!/usr/bin/env python3
"""Side-by-side LLM benchmark on one card: for each model, writes a random-weight checkpoint in
the real shapes, runs OminiX (bench_llm) and the transformers peer, and prints one JSON line per
model with both, their ratio, and the fraction of the rooflines (decode: bytes of the weights one
token reads -- every dense weight, the k active experts of each MoE layer -- / measured copy
bandwidth; prefill: 2 * active params * tokens / measured bf16 matmul rate).

  run.py --bench BUILD/bin/bench_llm --work /tmp/bench [--models qwen3-0.6b,...] [--bits 4]
         [--moe-ab] [--dequant-ab] [--qmv-ab] [--mma-ab] [--tune-ab SPEC] [--bench-ab PATH]
         [--env-ab "NAME=VALUE ..."]... [--rounds N] [--fused-ab] [--tiny] [--no-peer]

Only one checkpoint is on disk at a time: it is deleted before the peer runs (the peer builds its
bf16 model from the config on the GPU, with random weights). --moe-ab also runs OminiX with
OMINIX_MOE_FUSED=0 (MLX's ops for the router, the experts and the combine) on MoE models, as
"ours_plain_moe"; --dequant-ab with OMINIX_MOE_DEQUANT_PAIRS=1e9 (long prompts through MLX's
gather_qmm instead of the dequantized grouped GEMM), as "ours_gather_qmm_prefill"; --qmv-ab on
quantized models with OMINIX_QMV_FUSED=0 (MLX's quantized_matmul for the dense projections at
decode instead of our GEMV kernel), as "ours_mlx_qmv"; --mma-ab on quantized models with
OMINIX_QUANT_TUNE=mma=0 (our quantized kernels on the CUDA cores instead of the tensor cores), as
"ours_cuda_core_kernels"; --tune-ab SPEC with OMINIX_QUANT_TUNE=SPEC (another launch shape of
those kernels, e.g. down_split=8), as "ours_tuned"; --bench-ab PATH runs another build of
bench_llm (e.g. the previous commit's) on the same checkpoint, as "ours_b"; each --env-ab
"NAME=VALUE ..." runs ours with those variables set (e.g. MLX's MLX_MAX_OPS_PER_BUFFER), as
"ours_env" (a list, in order). --rounds N repeats ours and the --tune-ab/--bench-ab/--env-ab runs N
times, alternating, and adds each one's decode tok/s per
round and the median of the per-round ratios ("rounds"): on machines whose speed drifts within
minutes, a ratio taken within a round is the steadier comparison.
--tiny: toy widths of the same families (shapes.tiny_config), to check the pipeline on a CPU;
without a GPU the ceilings are not measured and the roofline fields are null.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

from shapes import MOE_TYPES, bytes_per_decode_token, config, params, tiny_config

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def has_cuda():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--work", default="/tmp/ominix-bench")
    ap.add_argument("--models", default="qwen3-0.6b,qwen3-4b,qwen3-8b")
    ap.add_argument("--bits", type=int, default=None)
    ap.add_argument("--prefill", default="512,2048")
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--moe-ab", action="store_true", help="also run MoE models with OMINIX_MOE_FUSED=0")
    ap.add_argument("--dequant-ab", action="store_true",
                    help="also run MoE models with OMINIX_MOE_DEQUANT_PAIRS=1e9 (gather_qmm prefill)")
    ap.add_argument("--qmv-ab", action="store_true",
                    help="also run quantized models with OMINIX_QMV_FUSED=0 (MLX's quantized_matmul)")
    ap.add_argument("--mma-ab", action="store_true",
                    help="also run quantized models with OMINIX_QUANT_TUNE=mma=0 (CUDA-core kernels)")
    ap.add_argument("--tune-ab", default=None, metavar="SPEC",
                    help="also run quantized models with OMINIX_QUANT_TUNE=SPEC")
    ap.add_argument("--bench-ab", default=None, metavar="PATH",
                    help="also run this bench_llm binary (another build) on the same checkpoint")
    ap.add_argument("--env-ab", action="append", default=[], metavar="'NAME=VALUE ...'",
                    help="also run ours with these environment variables (repeatable)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat ours and the --tune-ab/--bench-ab/--env-ab runs this many times, alternating")
    ap.add_argument("--fused-ab", action="store_true",
                    help="also run with OMINIX_FUSED_KERNELS=0 OMINIX_JOIN_PROJECTIONS=0 (the plain ops)")
    ap.add_argument("--tiny", action="store_true", help="toy widths, for a CPU check of the pipeline")
    ap.add_argument("--ceilings", default=None, help="JSON from ceilings.py (measured now if absent)")
    args = ap.parse_args()
    if args.ceilings:
        ceil = json.loads(args.ceilings)
    elif has_cuda():
        ceil = run_json([sys.executable, os.path.join(HERE, "ceilings.py")])
    else:
        ceil = None  # no GPU: nothing to measure a roofline against
    print(json.dumps({"ceilings": ceil}), flush=True)
    tiny = ["--tiny"] if args.tiny else []
    for name in args.models.split(","):
        cfg = tiny_config(name) if args.tiny else config(name)
        d = os.path.join(args.work, f"{name}-{args.bits or 'bf16'}{'-tiny' if args.tiny else ''}")
        shutil.rmtree(d, ignore_errors=True)
        mk = [sys.executable, os.path.join(HERE, "make_random.py"), name, d] + tiny
        if args.bits:
            mk += ["--bits", str(args.bits)]
        subprocess.run(mk, check=True, capture_output=True)
        bench = [args.bench, "--model", d, "--prefill", args.prefill, "--decode", str(args.decode)]
        try:
            ours = run_json(bench)
            plain = None
            if args.moe_ab and cfg["model_type"] in MOE_TYPES:
                plain = run_json(bench, env={**os.environ, "OMINIX_MOE_FUSED": "0"})
            quantized_prefill = None
            if args.dequant_ab and args.bits and cfg["model_type"] in MOE_TYPES:
                quantized_prefill = run_json(bench, env={**os.environ,
                                                         "OMINIX_MOE_DEQUANT_PAIRS": "1000000000"})
            mlx_qmv = None
            if args.qmv_ab and args.bits:
                mlx_qmv = run_json(bench, env={**os.environ, "OMINIX_QMV_FUSED": "0"})
            cuda_cores = None
            if args.mma_ab and args.bits:
                cuda_cores = run_json(bench, env={**os.environ, "OMINIX_QUANT_TUNE": "mma=0"})
            # The A/B variants, each run once here and once more a round (alternating with ours).
            variants = {}
            if args.tune_ab and args.bits:
                variants["ours_tuned"] = lambda: run_json(
                    bench, env={**os.environ, "OMINIX_QUANT_TUNE": args.tune_ab})
            if args.bench_ab:
                variants["ours_b"] = lambda: run_json([args.bench_ab] + bench[1:])
            for i, spec in enumerate(args.env_ab):
                extra = dict(kv.split("=", 1) for kv in spec.split())
                variants[f"ours_env{i}"] = lambda extra=extra: run_json(bench, env={**os.environ, **extra})
            results = {k: [run()] for k, run in variants.items()}
            tuned = results.get("ours_tuned", [None])[0]
            other = results.get("ours_b", [None])[0]
            rounds = None
            if args.rounds > 1 and variants:
                rounds = {"ours": [ours], **results}
                for _ in range(args.rounds - 1):
                    rounds["ours"].append(run_json(bench))
                    for k, run in variants.items():
                        rounds[k].append(run())
            unfused = None
            if args.fused_ab:
                unfused = run_json(bench, env={**os.environ, "OMINIX_FUSED_KERNELS": "0",
                                               "OMINIX_JOIN_PROJECTIONS": "0"})
        finally:
            shutil.rmtree(d, ignore_errors=True)
        peer = None if args.no_peer else run_json(
            [sys.executable, os.path.join(HERE, "peer_transformers.py"), name, "--prefill", args.prefill,
             "--decode", str(args.decode)] + tiny)
        bpt = bytes_per_decode_token(cfg, args.bits)
        active = params(cfg, active=True)
        row = {"model": name + (" (tiny)" if args.tiny else ""), "weights": f"{args.bits}-bit" if args.bits else "bf16",
               "card": ours.get("card"), "bytes_per_token_GB": bpt / 1e9, "params_B": params(cfg) / 1e9,
               "active_params_B": active / 1e9, "ours": ours, "peer": peer}
        if unfused:
            row["ours_unfused"] = unfused
            row["decode_speedup_fused"] = ours["decode"]["tok_s"] / unfused["decode"]["tok_s"]
        if mlx_qmv:
            row["ours_mlx_qmv"] = mlx_qmv
            row["decode_speedup_qmv"] = ours["decode"]["tok_s"] / mlx_qmv["decode"]["tok_s"]
        if cuda_cores:
            row["ours_cuda_core_kernels"] = cuda_cores
            row["decode_speedup_mma"] = ours["decode"]["tok_s"] / cuda_cores["decode"]["tok_s"]
        if other:
            row["ours_b"] = {"bench": args.bench_ab, **other}
            row["decode_speedup_vs_b"] = ours["decode"]["tok_s"] / other["decode"]["tok_s"]
        if rounds:
            tok = {k: [r["decode"]["tok_s"] for r in v] for k, v in rounds.items()}
            row["rounds"] = {"decode_tok_s": tok}
            for k in tok:
                if k != "ours":
                    ratios = sorted(a / b for a, b in zip(tok["ours"], tok[k]))
                    row["rounds"][f"median_ratio_vs_{k}"] = ratios[len(ratios) // 2]
        if args.env_ab:
            row["ours_env"] = [{"env": spec, **results[f"ours_env{i}"][0],
                                "decode_speedup_vs_ours": results[f"ours_env{i}"][0]["decode"]["tok_s"]
                                / ours["decode"]["tok_s"]} for i, spec in enumerate(args.env_ab)]
        if tuned:
            row["ours_tuned"] = {"tune": args.tune_ab, **tuned}
            row["decode_speedup_vs_tuned"] = ours["decode"]["tok_s"] / tuned["decode"]["tok_s"]
        if quantized_prefill:
            row["ours_gather_qmm_prefill"] = quantized_prefill
        if plain:
            row["ours_plain_moe"] = plain
            row["decode_speedup_fused_moe"] = ours["decode"]["tok_s"] / plain["decode"]["tok_s"]
        if ceil:
            decode_bound = ceil["copy_bandwidth_GBs"] * 1e9 / bpt
            row["decode_roofline_tok_s"] = decode_bound
            row["decode_roofline_fraction"] = ours["decode"]["tok_s"] / decode_bound
            row["prefill_roofline_fraction"] = {
                n: v["tok_s"] * 2 * active / (ceil["bf16_matmul_TFLOPs"] * 1e12) for n, v in ours["prefill"].items()}
        if peer:
            row["decode_speedup_vs_peer"] = ours["decode"]["tok_s"] / peer["decode"]["tok_s"]
            row["prefill_speedup_vs_peer"] = {n: ours["prefill"][n]["tok_s"] / peer["prefill"][n]["tok_s"]
                                              for n in ours["prefill"]}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
