"""Real shapes of the benchmarked checkpoints (config.json fields as Hugging Face publishes them).

Sources:
- Qwen3: the Qwen3-{0.6B,4B,8B,30B-A3B} config.json files.
- GLM-4-9B: GLM-4-9B-0414's config; hidden 4096, 40 layers, 32 heads, 2 KV heads, head_dim 128,
  intermediate 13696, vocab 151552, attention_bias true and partial_rotary_factor 0.5 are also
  transformers 5.24's Glm4Config defaults (configuration_glm4.py), checked against it.
- GLM-4.5-Air: transformers 5.24's Glm4MoeConfig defaults are GLM-4.5-Air's shapes (hidden 4096,
  46 layers, 96 heads of 128, 8 KV heads, 128 routed experts, 8 per token, 1 shared expert,
  moe_intermediate 1408, intermediate 10944, first_k_dense_replace 1, n_group 1, topk_group 1,
  norm_topk_prob, routed_scaling_factor 1.0, vocab 151552, partial_rotary 0.5, no q/k norm, no
  attention bias). "glm4.5-air-24l" keeps every width and cuts the layers to 24 (1 dense + 23 MoE,
  55 B parameters) so that the bf16 peer (111 GB) fits one 141 GB H200 and our 4-bit checkpoint
  (31 GB) fits the disk; the multi-token-prediction layer is not written (we drop it on load).
- Mixtral-8x7B: Mixtral-8x7B-v0.1's config (hidden 4096, 32 layers, 32 heads, 8 KV heads,
  intermediate 14336, 8 experts, 2 per token, vocab 32000, rope_theta 1e6, no sliding window).
  Its bf16 peer needs 93 GB: an H200, not an H100.

`tiny_config(name)` shrinks any of them to a few MB with the same structure, for checking the
whole pipeline on a CPU (run.py --tiny).
"""

QWEN = {"vocab_size": 151936, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 40960,
        "hidden_act": "silu", "attention_bias": False, "head_dim": 128, "bos_token_id": 151643,
        "eos_token_id": 151645, "torch_dtype": "bfloat16"}

GLM = {"vocab_size": 151552, "hidden_act": "silu", "head_dim": 128, "partial_rotary_factor": 0.5,
       "pad_token_id": 151329, "eos_token_id": [151329, 151336, 151338], "torch_dtype": "bfloat16"}

SHAPES = {
    "qwen3-0.6b": {**QWEN, "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 1024,
                   "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
                   "num_key_value_heads": 8, "tie_word_embeddings": True},
    "qwen3-4b": {**QWEN, "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 2560,
                 "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "tie_word_embeddings": True},
    "qwen3-8b": {**QWEN, "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 4096,
                 "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "tie_word_embeddings": False},
    "qwen3-30b-a3b": {**QWEN, "model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"],
                      "hidden_size": 2048, "intermediate_size": 6144, "moe_intermediate_size": 768,
                      "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4,
                      "num_experts": 128, "num_experts_per_tok": 8, "norm_topk_prob": True,
                      "decoder_sparse_step": 1, "mlp_only_layers": [], "tie_word_embeddings": False},
    "glm4-9b": {**GLM, "model_type": "glm4", "architectures": ["Glm4ForCausalLM"], "hidden_size": 4096,
                "intermediate_size": 13696, "num_hidden_layers": 40, "num_attention_heads": 32,
                "num_key_value_heads": 2, "attention_bias": True, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
                "max_position_embeddings": 32768, "tie_word_embeddings": False},
    "glm4.5-air-24l": {**GLM, "model_type": "glm4_moe", "architectures": ["Glm4MoeForCausalLM"],
                       "hidden_size": 4096, "intermediate_size": 10944, "moe_intermediate_size": 1408,
                       "num_hidden_layers": 24, "num_attention_heads": 96, "num_key_value_heads": 8,
                       "n_routed_experts": 128, "num_experts_per_tok": 8, "n_shared_experts": 1,
                       "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1, "norm_topk_prob": True,
                       "routed_scaling_factor": 1.0, "use_qk_norm": False, "attention_bias": False,
                       "rms_norm_eps": 1e-5, "rope_theta": 1000000.0, "max_position_embeddings": 131072,
                       "tie_word_embeddings": False},
    "mixtral-8x7b": {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "vocab_size": 32000,
                     "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                     "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                     "num_local_experts": 8, "num_experts_per_tok": 2, "hidden_act": "silu",
                     "rms_norm_eps": 1e-5, "rope_theta": 1000000.0, "max_position_embeddings": 32768,
                     "sliding_window": None, "tie_word_embeddings": False, "bos_token_id": 1,
                     "eos_token_id": 2, "torch_dtype": "bfloat16"},
}

MOE_TYPES = ("qwen3_moe", "glm4_moe", "mixtral")


def config(name):
    return dict(SHAPES[name])


def tiny_config(name):
    """The same family and structure at toy widths (every quantized input width a multiple of 64)."""
    cfg = config(name)
    cfg.update({"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
                "head_dim": 32, "vocab_size": 1024, "max_position_embeddings": 4096})
    cfg["num_hidden_layers"] = 3 if cfg["model_type"] == "glm4_moe" else 2
    for key, cap in (("num_experts", 16), ("n_routed_experts", 16), ("num_local_experts", 4)):
        if key in cfg:
            cfg[key] = cap
    if "moe_intermediate_size" in cfg:
        cfg["moe_intermediate_size"] = 64
    if "num_experts_per_tok" in cfg:
        cfg["num_experts_per_tok"] = min(cfg["num_experts_per_tok"], 4)
    if isinstance(cfg.get("eos_token_id"), list):
        cfg["eos_token_id"] = [1000]
    elif "eos_token_id" in cfg:
        cfg["eos_token_id"] = 1000
    for key in ("bos_token_id", "pad_token_id"):
        if key in cfg:
            cfg[key] = 1001
    return cfg


def _head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def _dense_mlp(p, D, I):
    return [(p + "gate_proj.weight", (I, D), "linear"), (p + "up_proj.weight", (I, D), "linear"),
            (p + "down_proj.weight", (D, I), "linear")]


def _experts(p, E, D, I):
    """mlx-lm's stacked switch_mlp layout (also what our loaders accept for dense checkpoints)."""
    return [(p + "switch_mlp.gate_proj.weight", (E, I, D), "experts"),
            (p + "switch_mlp.up_proj.weight", (E, I, D), "experts"),
            (p + "switch_mlp.down_proj.weight", (E, D, I), "experts")]


def tensor_shapes(cfg):
    """(name, shape, kind) for every tensor the family's loader binds; kind is 'linear' (quantizable
    [out, in]), 'embed', 'norm', 'bias', 'router' (kept in bf16) or 'experts' ([E, out, in])."""
    mt = cfg["model_type"]
    D, V, hd = cfg["hidden_size"], cfg["vocab_size"], _head_dim(cfg)
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    out = [("model.embed_tokens.weight", (V, D), "embed"), ("model.norm.weight", (D,), "norm")]
    if not cfg["tie_word_embeddings"]:
        out.append(("lm_head.weight", (V, D), "linear"))
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        out += [(p + "input_layernorm.weight", (D,), "norm"), (p + "post_attention_layernorm.weight", (D,), "norm"),
                (a + "q_proj.weight", (H * hd, D), "linear"), (a + "k_proj.weight", (KV * hd, D), "linear"),
                (a + "v_proj.weight", (KV * hd, D), "linear"), (a + "o_proj.weight", (D, H * hd), "linear")]
        if cfg.get("attention_bias"):
            out += [(a + "q_proj.bias", (H * hd,), "bias"), (a + "k_proj.bias", (KV * hd,), "bias"),
                    (a + "v_proj.bias", (KV * hd,), "bias")]
        if mt in ("qwen3", "qwen3_moe") or cfg.get("use_qk_norm"):
            out += [(a + "q_norm.weight", (hd,), "norm"), (a + "k_norm.weight", (hd,), "norm")]
        if mt == "qwen3_moe":
            E = cfg["num_experts"]
            out += [(p + "mlp.gate.weight", (E, D), "router")] + _experts(p + "mlp.", E, D, cfg["moe_intermediate_size"])
        elif mt == "mixtral":
            E = cfg["num_local_experts"]
            out += ([(p + "block_sparse_moe.gate.weight", (E, D), "router")]
                    + _experts(p + "block_sparse_moe.", E, D, cfg["intermediate_size"]))
        elif mt == "glm4":
            I = cfg["intermediate_size"]
            out += [(p + "post_self_attn_layernorm.weight", (D,), "norm"), (p + "post_mlp_layernorm.weight", (D,), "norm"),
                    (p + "mlp.gate_up_proj.weight", (2 * I, D), "linear"), (p + "mlp.down_proj.weight", (D, I), "linear")]
        elif mt == "glm4_moe" and i >= cfg["first_k_dense_replace"]:
            E, I = cfg["n_routed_experts"], cfg["moe_intermediate_size"]
            out += [(p + "mlp.gate.weight", (E, D), "router"), (p + "mlp.gate.e_score_correction_bias", (E,), "bias")]
            out += _experts(p + "mlp.", E, D, I) + _dense_mlp(p + "mlp.shared_experts.", D, I * cfg["n_shared_experts"])
        else:  # qwen3, a dense first layer of glm4_moe
            out += _dense_mlp(p + "mlp.", D, cfg["intermediate_size"])
    return out


def _experts_per_token(cfg):
    return cfg["num_experts_per_tok"]


def bytes_per_decode_token(cfg, bits=None, group_size=64):
    """Bytes of weights one decode step reads: every dense weight (attention, dense MLPs, shared
    experts, routers, norms, biases), the k active experts of each MoE layer, the LM head, and one
    embedding row. bits=None: bf16."""
    def size(shape, quantizable=True):
        n = 1
        for s in shape:
            n *= s
        if bits is None or not quantizable:
            return 2 * n
        groups = n // group_size
        return n * bits // 8 + groups * 2 * 2  # packed weight + bf16 scales and biases
    total = 0
    for name, shape, kind in tensor_shapes(cfg):
        if kind == "embed":
            total += size((1, shape[1])) if not cfg["tie_word_embeddings"] else size(shape)
        elif kind == "experts":
            total += size(shape) * _experts_per_token(cfg) // shape[0]
        elif kind in ("norm", "router", "bias"):
            total += size(shape, quantizable=False)
        else:
            total += size(shape)
    return total


def params(cfg, active=False):
    n = 0
    for name, shape, kind in tensor_shapes(cfg):
        c = 1
        for s in shape:
            c *= s
        if kind == "experts" and active:
            c = c * _experts_per_token(cfg) // shape[0]
        if kind == "embed" and active:
            continue  # a lookup, not a matmul
        n += c
    if cfg["tie_word_embeddings"] and active:
        n += cfg["vocab_size"] * cfg["hidden_size"]  # the tied head is a matmul
    return n


if __name__ == "__main__":
    for name in SHAPES:
        cfg = config(name)
        print(f"{name:16s} params {params(cfg) / 1e9:7.2f} B, active {params(cfg, True) / 1e9:6.2f} B, "
              f"decode bytes bf16 {bytes_per_decode_token(cfg) / 1e9:6.2f} GB, 4-bit {bytes_per_decode_token(cfg, 4) / 1e9:6.2f} GB")
