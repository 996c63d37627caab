"""Paraformer shapes for the benchmark, in FunASR's config.yaml layout.

LARGE is speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch (Paraformer-large,
about 220M parameters), reconstructed from funasr 1.4.16's defaults and the released model's module
dump: SANM encoder of 50 blocks (encoders0 takes the 560-wide LFR features, 49 more at 512),
d_model 512, 4 heads, feed-forward 2048, FSMN kernel 11; ParaformerSANMDecoder of 16 blocks, all
with cross-attention, plus decoders3; CifPredictorV2 (threshold 1.0, l/r order 1, tail threshold
0.45); WavFrontend 80 mel bins, 25/10 ms hamming, LFR 7/6; vocabulary 8404.

TINY has the same structure in toy sizes, to check the bench path on a CPU.
"""
import copy

LARGE = {
    "model": "Paraformer",
    "model_conf": {"ctc_weight": 0.0, "lsm_weight": 0.1, "length_normalized_loss": True,
                   "predictor_weight": 1.0, "predictor_bias": 1, "sampling_ratio": 0.75},
    "encoder": "SANMEncoder",
    "encoder_conf": {"output_size": 512, "attention_heads": 4, "linear_units": 2048, "num_blocks": 50,
                     "dropout_rate": 0.1, "positional_dropout_rate": 0.1, "attention_dropout_rate": 0.1,
                     "input_layer": "pe", "pos_enc_class": "SinusoidalPositionEncoder",
                     "normalize_before": True, "kernel_size": 11, "sanm_shfit": 0,
                     "selfattention_layer_type": "sanm"},
    "decoder": "ParaformerSANMDecoder",
    "decoder_conf": {"attention_heads": 4, "linear_units": 2048, "num_blocks": 16, "dropout_rate": 0.1,
                     "positional_dropout_rate": 0.1, "self_attention_dropout_rate": 0.1,
                     "src_attention_dropout_rate": 0.1, "att_layer_num": 16, "kernel_size": 11,
                     "sanm_shfit": 0},
    "predictor": "CifPredictorV2",
    "predictor_conf": {"idim": 512, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
    "frontend": "WavFrontend",
    "frontend_conf": {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25, "frame_shift": 10,
                      "lfr_m": 7, "lfr_n": 6},
    "specaug": None,
    "normalize": None,
    "input_size": 560,
    "vocab_size": 8404,
}


def config(tiny=False):
    c = copy.deepcopy(LARGE)
    if tiny:
        c["encoder_conf"].update(output_size=64, linear_units=128, num_blocks=3)
        c["decoder_conf"].update(linear_units=128, num_blocks=2, att_layer_num=2)
        c["predictor_conf"]["idim"] = 64
        c["vocab_size"] = 200
    return c


def params(c):
    """Parameter count of the inference modules (encoder, predictor, decoder)."""
    e, d, D, V = c["encoder_conf"], c["decoder_conf"], c["encoder_conf"]["output_size"], c["vocab_size"]
    F, K, I = e["linear_units"], e["kernel_size"], c["input_size"]

    def enc_block(i):
        return 2 * i + (i * 3 * D + 3 * D) + (D * D + D) + D * K + (D * F + F) + (F * D + D) + 2 * D

    enc = enc_block(I) + (e["num_blocks"] - 1) * enc_block(D) + 2 * D
    pred = D * D * 3 + D + D + 1
    Fd = d["linear_units"]
    ffn = D * Fd + Fd + Fd * D + 2 * Fd
    att = 2 * D + ffn + 2 * D + D * d["kernel_size"] + 2 * D + (D * D + D) + (D * 2 * D + 2 * D) + (D * D + D)
    dec = d["att_layer_num"] * att + (2 * D + ffn) + 2 * D + (D * V + V) + V * D  # + embed
    return enc + pred + dec
