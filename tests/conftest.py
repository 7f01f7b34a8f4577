"""Shared fixtures. Everything is local: no test may reach the Hugging Face Hub."""

from __future__ import annotations

import os

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
