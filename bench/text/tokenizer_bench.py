#!/usr/bin/env python3
"""Encode throughput: OminiX's C++ tokenizer vs HF `tokenizers`, single-threaded, same corpus,
same documents, side by side in one run. Prints JSON with both rates and their ratio, and checks
that both produced the same ids (count and FNV-1a hash).

  /opt/ominix-ref/bin/python bench/text/tokenizer_bench.py --binary build/bin/tokenizer_bench \\
      [--model ../shared/data/tokenizers/qwen3] [--corpus-mb 8]
"""
import argparse
import glob
import json
import os
import random
import subprocess
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures"))


def build_corpus(path, megabytes, seed=0):
    """A mixed corpus: Python sources and license texts found on this machine (English prose and
    code) interleaved with multilingual paragraphs (the fixture corpus, shuffled and recombined)."""
    from gen_tokenizer import CORPUS  # noqa: E402

    rng = random.Random(seed)
    sources = sorted(glob.glob("/usr/lib/python3*/**/*.py", recursive=True))
    sources += sorted(glob.glob("/usr/share/common-licenses/*"))
    rng.shuffle(sources)
    multi = [t for t in CORPUS if t.strip() and len(t) < 400]
    docs, size, target = [], 0, megabytes * 1_000_000
    for src in sources:
        if size >= target:
            break
        try:
            with open(src, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        if not text or "\f" in text:
            continue
        # Every document gets a multilingual paragraph, so a third or so of the bytes are non-ASCII.
        para = " ".join(rng.choice(multi) for _ in range(rng.randint(20, 60)))
        for doc in (text[:20000], para):
            docs.append(doc)
            size += len(doc.encode("utf-8"))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\f\n".join(docs))
    return docs


def fnv(ids_lists):
    h = 1469598103934665603
    for ids in ids_lists:
        for i in ids:
            h = ((h ^ i) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def run_hf(model, docs, repeat):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    best, out = 1e30, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = [tok.encode(d, add_special_tokens=False).ids for d in docs]
        best = min(best, time.perf_counter() - t0)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    tokens = sum(len(x) for x in out)
    import tokenizers
    return {"impl": f"hf-tokenizers {tokenizers.__version__}", "bytes": nbytes, "docs": len(docs),
            "tokens": tokens, "seconds": best, "bytes_per_s": nbytes / best, "tokens_per_s": tokens / best,
            "ids_hash": fnv(out)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "bin", "tokenizer_bench"))
    ap.add_argument("--model", action="append")
    ap.add_argument("--corpus-mb", type=float, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", default="/tmp/ominix_tokenizer_bench_corpus.txt")
    args = ap.parse_args()
    shared = os.path.join(ROOT, "..", "shared", "data", "tokenizers")
    models = args.model or [os.path.join(shared, "qwen3"), os.path.join(shared, "llama2")]
    docs = build_corpus(args.corpus, args.corpus_mb)
    results = []
    for model in models:
        ours = json.loads(subprocess.run([args.binary, "--model", model, "--corpus", args.corpus, "--repeat",
                                          str(args.repeat)], check=True, capture_output=True, text=True).stdout)
        hf = run_hf(model, docs, args.repeat)
        results.append({
            "model": os.path.basename(os.path.normpath(model)),
            "corpus_bytes": hf["bytes"],
            "ominix": ours,
            "hf": hf,
            "ratio_ominix_over_hf": ours["bytes_per_s"] / hf["bytes_per_s"],
            "same_ids": ours["tokens"] == hf["tokens"] and ours["ids_hash"] == hf["ids_hash"],
        })
    print(json.dumps({"threads": 1, "results": results}, indent=2))


if __name__ == "__main__":
    main()
