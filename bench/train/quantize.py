"""bitsandbytes quantization configs, and one clear message where it is not available."""

from __future__ import annotations

from bench.errors import BenchError


def bnb_config(kind: str, compute_dtype, quant_storage=None):
    """nf4: 4-bit NormalFloat with double quantization (QLoRA, XTuner's default); int8: 8-bit.
    On CPU bitsandbytes runs both through its CPU backend. `quant_storage`: the dtype the 4-bit
    values are packed in; DeepSpeed ZeRO-3 shards them only when it is the model's dtype (PEFT,
    "Use PEFT QLoRA and DeepSpeed with ZeRO3")."""
    from bench.logs import import_bitsandbytes

    import_bitsandbytes()
    try:
        import bitsandbytes  # noqa: F401 - its absence is the message below
        from transformers import BitsAndBytesConfig
    except ModuleNotFoundError:
        raise BenchError(f"quantization: {kind} needs bitsandbytes, which is not installed; "
                         "pip install 'bench[train]', or set quantization: none") from None
    if kind == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute_dtype,
                                  **({"bnb_4bit_quant_storage": quant_storage} if quant_storage else {}))
    return BitsAndBytesConfig(load_in_8bit=True)
