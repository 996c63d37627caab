#!/usr/bin/env python3
"""Launch-shape sweep of the quantized decode kernels (core/nn/quant_cuda.h): runs bench_kernels
once per OMINIX_QUANT_TUNE setting and prints its JSON lines with the setting added, then a table
of microseconds per call (setting x case) on stderr. The defaults in QuantTuning came from this
sweep on an H100 (docs/kernels.md); rerun it on another card before changing them.

  sweep.py --bench build/bin/bench_kernels [--only lm_head,experts] "qmv_rows=2" "down_rows=4" ...
"""
import argparse
import json
import os
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("settings", nargs="+", help='OMINIX_QUANT_TUNE values, e.g. "qmv_rows=2,block=64"')
    args = ap.parse_args()
    table = {}
    for tune in args.settings:
        cmd = [args.bench, "--reps", str(args.reps), "--repeat", str(args.repeat)]
        if args.only:
            cmd += ["--only", args.only]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                             env={**os.environ, "OMINIX_QUANT_TUNE": tune})
        for line in out.stdout.splitlines():
            row = {"tune": tune, **json.loads(line)}
            print(json.dumps(row), flush=True)
            table.setdefault(tune, {})[row["case"]] = row["ours_us"]
    cases = list(dict.fromkeys(c for t in table.values() for c in t))
    print("setting".ljust(32) + "".join(c[:20].rjust(22) for c in cases), file=sys.stderr)
    for tune, row in table.items():
        print(tune[:32].ljust(32) + "".join(f"{row.get(c, float('nan')):22.2f}" for c in cases), file=sys.stderr)


if __name__ == "__main__":
    main()
