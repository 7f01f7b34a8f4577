"""Prompt text and token ids exactly as OpenCompass builds them, for any backend that has a
tokenizer: the transformers backend, and an API model given `tokenizer` (which then renders the
prompts it sends to /v1/completions and counts tokens as the local model would)."""

from __future__ import annotations

from bench.backends.base import oc_base_text, oc_chat_messages
from bench.chat import render, with_system
from bench.tasks.base import Prompt


def max_seq_len_of(config) -> int | None:
    """OpenCompass's max_seq_len (_get_possible_max_seq_len): inputs longer are cut from the left."""
    return next((v for v in (getattr(config, k, None) for k in (
        "max_position_embeddings", "seq_length", "model_max_length")) if isinstance(v, int)), None)


class OCEncoding:
    """Mixed into backends; uses their tokenizer, mode ('chat' | 'base'), max_seq_len and spec."""

    def _encode(self, prompts: list[Prompt | str], mode: str) -> list[list[int]]:
        """Token ids as OpenCompass builds them (BOS as the tokenizer adds it for base, none
        added for chat: the template carries its own)."""
        if self.mode == "base":
            return self._tokenize([oc_base_text(p) for p in prompts], special=True)
        return self._tokenize([self.render(p, mode) for p in prompts], special=False)

    def _tokenize(self, texts: list[str], special: bool) -> list[list[int]]:
        """As OpenCompass: truncation=True, max_length=max_seq_len, from the left (the special
        tokens the tokenizer adds are kept)."""
        if not self.max_seq_len:
            return self.tokenizer(texts, add_special_tokens=special)["input_ids"]
        side = self.tokenizer.truncation_side
        self.tokenizer.truncation_side = "left"
        try:
            return self.tokenizer(texts, add_special_tokens=special, truncation=True,
                                  max_length=self.max_seq_len)["input_ids"]
        finally:
            self.tokenizer.truncation_side = side

    def render(self, prompt: Prompt | str, mode: str) -> str:
        """The exact text fed to the model for a prompt (for records and debugging)."""
        if self.mode == "base":
            return oc_base_text(prompt)
        return self.tokenizer.apply_chat_template(oc_chat_messages(prompt, mode), tokenize=False,
                                                  add_generation_prompt=mode == "gen")

    def render_chat(self, messages: list[dict]) -> str:
        """A conversation ({"role": system|user|assistant, "content"}, ending with a user turn)
        as the text the model answers it from: the chat template with its generation prompt, or
        for a base model the contents one per line."""
        return render(self.tokenizer, with_system(messages, self.spec.system), self.mode)
