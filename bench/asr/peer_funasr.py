#!/usr/bin/env python3
"""The peer: funasr's own Paraformer modules (SANMEncoder, CifPredictorV2, ParaformerSANMDecoder)
and its WavFrontend, in PyTorch float32 on the GPU (CPU without one).

  peer_funasr.py make DIR [--tiny] [--seed 0]        # random weights -> FunASR's released layout
  peer_funasr.py bench DIR --rtf a.wav,b.wav --batch-files c.wav,... [--runs 3] [--device cuda] [--tf32]

`make` writes model.pt (state dict), config.yaml, am.mvn and tokens.json, the files OminiX loads,
so both engines run the same weights. `bench` times, as funasr's Paraformer.inference runs without
a VAD model: the WavFrontend on the CPU (as funasr's extract_fbank), features to the device, then
Paraformer.encode / calc_predictor / cal_decoder_with_predictor and the argmax (ref: funasr 1.4.16
funasr/models/paraformer/model.py; those three methods are restated here so that only the module
files are imported: funasr.models.paraformer.model itself pulls in rapidfuzz, kaldiio and more).
Each file is one pass over the whole file, as funasr does without a VAD. Prints one JSON object.

Imports: torch, numpy and pyyaml (transformers' own requirements) and funasr's module files. Where
funasr is not installed, `--funasr-path DIR` (before the subcommand) adds a folder holding the
`funasr` package (bench/asr/pack_peer.sh makes one) to sys.path. funasr's wav_frontend imports
librosa at module level for a different front end (eend_ola_feature); where librosa is absent an
empty module stands in for it, and WavFrontend never touches it.
"""
import argparse
import json
import os
import shutil
import sys
import time
import types
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from paraformer_config import config  # noqa: E402


def import_funasr(path):
    if path:
        sys.path.insert(0, os.path.abspath(path))
    try:
        import librosa  # noqa: F401
    except ImportError:
        sys.modules["librosa"] = types.ModuleType("librosa")
    import torch  # noqa: F401
    from funasr.frontends.wav_frontend import WavFrontend
    from funasr.models.paraformer.cif_predictor import CifPredictorV2
    from funasr.models.paraformer.decoder import ParaformerSANMDecoder
    from funasr.models.sanm.encoder import SANMEncoder
    from funasr.models.transformer.utils.nets_utils import make_pad_mask
    return types.SimpleNamespace(WavFrontend=WavFrontend, SANMEncoder=SANMEncoder,
                                 ParaformerSANMDecoder=ParaformerSANMDecoder,
                                 CifPredictorV2=CifPredictorV2, make_pad_mask=make_pad_mask)


def build(fa, cfg):
    import torch

    class Paraformer(torch.nn.Module):  # the inference modules, named as in funasr's Paraformer
        def __init__(self):
            super().__init__()
            self.encoder = fa.SANMEncoder(input_size=cfg["input_size"], **cfg["encoder_conf"])
            self.decoder = fa.ParaformerSANMDecoder(
                vocab_size=cfg["vocab_size"], encoder_output_size=cfg["encoder_conf"]["output_size"],
                **cfg["decoder_conf"])
            self.predictor = fa.CifPredictorV2(**cfg["predictor_conf"])

    return Paraformer().eval()


def write_wav_ints(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes())


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000, path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def make(args):
    import torch

    fa = import_funasr(args.funasr_path)
    cfg = config(args.tiny)
    torch.manual_seed(args.seed)
    model = build(fa, cfg)
    os.makedirs(args.dir, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.dir, "model.pt"))
    with open(os.path.join(args.dir, "config.yaml"), "w") as f:
        json.dump(cfg, f, indent=1)  # JSON is YAML
    shutil.copy(os.path.join(ROOT, "tests", "fixtures", "audio", "am.mvn"), os.path.join(args.dir, "am.mvn"))
    V = cfg["vocab_size"]
    tokens = ["<blank>", "<s>", "</s>"] + [chr(0x4E00 + i) for i in range(V - 4)] + ["<unk>"]
    with open(os.path.join(args.dir, "tokens.json"), "w") as f:
        json.dump(tokens, f, ensure_ascii=False)
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({"dir": args.dir, "parameters": n}))


def bench(args):
    import torch

    fa = import_funasr(args.funasr_path)
    with open(os.path.join(args.dir, "config.yaml")) as f:
        cfg = json.load(f)
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # PyTorch computes float32 matmuls in full float32 by default; MLX's CUDA backend uses TF32.
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    model = build(fa, cfg)
    sd = torch.load(os.path.join(args.dir, "model.pt"), map_location="cpu")
    model.load_state_dict(sd)
    model.to(dev)
    frontend = fa.WavFrontend(cmvn_file=os.path.join(args.dir, "am.mvn"), dither=0.0, **cfg["frontend_conf"])
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    @torch.inference_mode()
    def transcribe(wavs):
        # ref: funasr/utils/load_utils.py extract_fbank: the front end on the CPU, padded batch.
        lens = torch.tensor([len(w) for w in wavs])
        x = torch.zeros(len(wavs), int(lens.max()))
        for i, w in enumerate(wavs):
            x[i, : len(w)] = torch.from_numpy(w)
        feats, feat_lens = frontend(x, lens)
        feats, feat_lens = feats.to(dev), feat_lens.to(dev)
        # ref: Paraformer.encode, calc_predictor, cal_decoder_with_predictor, inference (argmax).
        enc, enc_lens, _ = model.encoder(feats, feat_lens)
        mask = (~fa.make_pad_mask(enc_lens, maxlen=enc.size(1))[:, None, :]).to(dev)
        emb, token_num, _, _ = model.predictor(enc, None, mask, ignore_id=-1)
        token_num = token_num.round().long()
        logits = model.decoder(enc, enc_lens, emb, token_num)[0]
        ids = torch.log_softmax(logits, dim=-1).argmax(-1).cpu()
        out = []
        for b in range(len(wavs)):
            seq = ids[b, : int(token_num[b])].tolist()
            out.append([i for i in seq if i not in (0, 1, 2)])  # blank, sos, eos (funasr's ids)
        return out

    def timed(wavs):
        result = transcribe(wavs)  # warm-up (kernels, allocator)
        runs = []
        for _ in range(args.runs):
            sync()
            t = time.perf_counter()
            result = transcribe(wavs)
            sync()
            runs.append(time.perf_counter() - t)
        return sorted(runs)[len(runs) // 2], runs, result

    out = {"engine": "funasr", "device": str(dev), "tf32": args.tf32,
           "card": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
           "torch": torch.__version__, "rtf": []}
    try:
        import funasr
        out["funasr"] = funasr.__version__
    except AttributeError:
        pass
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for f in [p for p in args.rtf.split(",") if p]:
        w = read_wav(f)
        s, runs, ids = timed([w])
        audio_s = len(w) / 16000
        out["rtf"].append({"file": f, "audio_seconds": audio_s,
                           "one_pass": {"seconds": s, "rtf": s / audio_s, "runs": runs,
                                        "tokens": len(ids[0]), "ids": ids[0]}})
    files = [p for p in args.batch_files.split(",") if p]
    if files:
        wavs = [read_wav(f) for f in files]
        audio_s = sum(len(w) for w in wavs) / 16000
        s, runs, _ = timed(wavs)
        out["batch"] = {"files": len(files), "audio_seconds": audio_s, "seconds": s, "runs": runs,
                        "audio_seconds_per_second": audio_s / s, "rtf": s / audio_s}
    if dev.type == "cuda":
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--funasr-path", default=None, help="folder holding the funasr package")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--tiny", action="store_true")
    m.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("bench")
    b.add_argument("dir")
    b.add_argument("--rtf", default="")
    b.add_argument("--batch-files", default="")
    b.add_argument("--runs", type=int, default=3)
    b.add_argument("--device", default=None)
    b.add_argument("--tf32", action="store_true", help="TF32 matmuls and convolutions on the GPU")
    args = ap.parse_args()
    make(args) if args.cmd == "make" else bench(args)


if __name__ == "__main__":
    main()
