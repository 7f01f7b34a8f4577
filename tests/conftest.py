"""Shared fixtures. Everything is local: no test may reach the Hugging Face Hub."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Qwen3 chat model (seed 1, hidden 64) with a Chinese BPE tokenizer."""
    from bench.backends.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_a"), seed=1, hidden_size=64)


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory):
    """A second, different tiny model (seed 2, hidden 96)."""
    from bench.backends.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_b"), seed=2, hidden_size=96)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """A tiny random Llama chat model for serving tests. Servers return text decoded without
    special tokens, the local backend keeps them (as OpenCompass does), so this model never
    emits one before its EOS: their output rows are zero, and a zero logit is never the
    argmax of 2000 random ones. (And Llama: for Qwen-family models `transformers serve`'s chat
    endpoint parses the answer, dropping reasoning blocks and whitespace.)"""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.backends.tiny import build_tiny_model

    out = build_tiny_model(tmp_path_factory.mktemp("tiny_llama"), seed=3, arch="llama")
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    with torch.no_grad():
        for token in tok.all_special_ids:
            if token != tok.eos_token_id:
                model.lm_head.weight[token] = 0.0
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def served_tiny(tiny_llama_dir, tmp_path_factory):
    """The tiny Llama model behind `transformers serve` (started once per session, ~11 s)."""
    from bench.config import ModelSpec
    from bench.serve.server import serving

    spec = ModelSpec(name="tiny", path=str(tiny_llama_dir), dtype="float32", device="cpu")
    with serving(spec, "transformers", log_dir=tmp_path_factory.mktemp("serve-logs"),
                 timeout=300) as server:
        yield server


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium driven by playwright (the HTML reports' browser tests)."""
    from tests.helpers import require

    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "playwright is not installed (pip install playwright)"
    require(not reason, f"browser tests cannot run: {reason}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
