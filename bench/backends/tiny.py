"""Build a tiny, deterministic Qwen3 causal LM with a Chinese byte-level BPE tokenizer, offline.

Used by the tests and the offline demo: no Hub access, a few seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

BOS, EOS, PAD = "<|bos|>", "<|im_end|>", "<|endoftext|>"
IM_START = "<|im_start|>"
CHATML = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_BUILTIN = [
    "语句一：“{sentence1}”\n语句二：“{sentence2}”\n请判断语句一和语句二说的是否是一个意思？",
    "A. 无关\nB. 相关\n请从“A”，“B”中进行选择。\n答：",
    "两句话说的毫不相关。两句话说是的一个意思。",
    "阅读文章：根据上文，回答如下问题：\n答：对 错 可能 如果为真，那么也为真吗?",
    "内容：情绪分类：消极。积极。以下句子是否通顺？这个句子是通顺的。",
    "此处，代词被用于指代吗? 是 否 摘要：关键词：",
    "上述内容属于什么新闻？请判断上述内容属于什么新闻？",
    "故事 文化 娱乐 体育 财经 房产 汽车 教育 科技 军事 旅游 国际 股票 农业 电竞",
    "今天天气很好，我们一起去公园散步吧。这部电影非常精彩，演员的表演也很出色。",
    "他说的话让我很难过，但是我相信明天会更好。学生们正在教室里认真学习数学和语文。",
    "中国的经济发展迅速，科技创新成为推动社会进步的重要力量。成语：画蛇添足 守株待兔 亡羊补牢",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789 .,;:!?()[]{}'\"-_/ ",
]


def _corpus(extra: list[str] | None) -> list[str]:
    """Built-in prompt strings, each CJK character on its own, plus the caller's text."""
    texts = list(_BUILTIN) + list(extra or [])
    chars = sorted({ch for t in texts for ch in t})
    return texts + chars


def build_tiny_model(out_dir: str | Path, *, seed: int, hidden_size: int = 64, num_layers: int = 2,
                     corpus: list[str] | None = None, chat: bool = True,
                     vocab_size: int = 2000, arch: str = "qwen3") -> Path:
    """Train the tokenizer, build a random Qwen3ForCausalLM (or LlamaForCausalLM: arch='llama',
    which `transformers serve` passes through unparsed), save both into out_dir."""
    import torch
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=[PAD, BOS, IM_START, EOS],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(corpus), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    # add_special_tokens=True prepends BOS (as Llama tokenizers do), so BOS handling is exercised
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=[IM_START], chat_template=CHATML if chat else None)
    fast.save_pretrained(out)

    torch.manual_seed(seed)
    heads = 4
    config_class, model_class = ((LlamaConfig, LlamaForCausalLM) if arch == "llama"
                                 else (Qwen3Config, Qwen3ForCausalLM))
    config = config_class(
        vocab_size=len(fast), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=heads, num_key_value_heads=2,
        head_dim=hidden_size // heads, max_position_embeddings=1024, initializer_range=0.2,
        tie_word_embeddings=True, bos_token_id=bos_id, eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id)
    model = model_class(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
        do_sample=False)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Writing model shards" bar for a one-file model
    model.save_pretrained(out)
    return out
