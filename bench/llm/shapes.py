"""Real shapes of the benchmarked checkpoints (config.json fields as Hugging Face publishes them)."""

COMMON = {"vocab_size": 151936, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 40960,
          "hidden_act": "silu", "attention_bias": False, "head_dim": 128, "bos_token_id": 151643,
          "eos_token_id": 151645, "torch_dtype": "bfloat16"}

SHAPES = {
    "qwen3-0.6b": {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 1024,
                   "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
                   "num_key_value_heads": 8, "tie_word_embeddings": True},
    "qwen3-4b": {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 2560,
                 "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "tie_word_embeddings": True},
    "qwen3-8b": {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 4096,
                 "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "tie_word_embeddings": False},
    "qwen3-30b-a3b": {"model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 2048,
                      "intermediate_size": 6144, "moe_intermediate_size": 768, "num_hidden_layers": 48,
                      "num_attention_heads": 32, "num_key_value_heads": 4, "num_experts": 128,
                      "num_experts_per_tok": 8, "norm_topk_prob": True, "decoder_sparse_step": 1,
                      "mlp_only_layers": [], "tie_word_embeddings": False},
}


def config(name):
    return {**COMMON, **SHAPES[name]}


def tensor_shapes(cfg):
    """(name, shape, kind) for every tensor of the Hugging Face layout; kind is 'linear' (quantizable
    [out, in]), 'embed', 'norm', 'router' or 'experts' ([E, out, in], mlx-lm's stacked switch_mlp)."""
    D, V, hd = cfg["hidden_size"], cfg["vocab_size"], cfg["head_dim"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    out = [("model.embed_tokens.weight", (V, D), "embed"), ("model.norm.weight", (D,), "norm")]
    if not cfg["tie_word_embeddings"]:
        out.append(("lm_head.weight", (V, D), "linear"))
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (D,), "norm"), (p + "post_attention_layernorm.weight", (D,), "norm"),
                (p + "self_attn.q_proj.weight", (H * hd, D), "linear"),
                (p + "self_attn.k_proj.weight", (KV * hd, D), "linear"),
                (p + "self_attn.v_proj.weight", (KV * hd, D), "linear"),
                (p + "self_attn.o_proj.weight", (D, H * hd), "linear"),
                (p + "self_attn.q_norm.weight", (hd,), "norm"), (p + "self_attn.k_norm.weight", (hd,), "norm")]
        if cfg["model_type"] == "qwen3_moe":
            E, I = cfg["num_experts"], cfg["moe_intermediate_size"]
            out += [(p + "mlp.gate.weight", (E, D), "router"),
                    (p + "mlp.switch_mlp.gate_proj.weight", (E, I, D), "experts"),
                    (p + "mlp.switch_mlp.up_proj.weight", (E, I, D), "experts"),
                    (p + "mlp.switch_mlp.down_proj.weight", (E, D, I), "experts")]
        else:
            I = cfg["intermediate_size"]
            out += [(p + "mlp.gate_proj.weight", (I, D), "linear"), (p + "mlp.up_proj.weight", (I, D), "linear"),
                    (p + "mlp.down_proj.weight", (D, I), "linear")]
    return out


def bytes_per_decode_token(cfg, bits=None, group_size=64):
    """Bytes of weights one decode step reads: every dense weight, the k active experts of each MoE
    layer, the LM head, and one embedding row. bits=None: bf16."""
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
            E = shape[0]
            total += size(shape) * cfg["num_experts_per_tok"] // E
        elif kind in ("norm", "router"):
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
            c = c * cfg["num_experts_per_tok"] // shape[0]
        if kind == "embed" and active:
            continue  # a lookup, not a matmul
        n += c
    if cfg["tie_word_embeddings"] and active:
        n += cfg["vocab_size"] * cfg["hidden_size"]  # the tied head is a matmul
    return n
