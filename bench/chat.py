"""Conversations (role/content messages) as the text a model answers them from: the one rendering
that training rows, answers sampled during training and the evaluation of the trained model share
(FewCLUE/CLUE tasks keep OpenCompass's rendering, bench/backends/base.py)."""

from __future__ import annotations

from collections.abc import Iterable


def with_system(messages: Iterable[dict], system: str | None) -> tuple[dict, ...]:
    """`system` first, unless the conversation has a system message already."""
    messages = tuple(messages)
    if system and not (messages and messages[0]["role"] == "system"):
        return ({"role": "system", "content": system}, *messages)
    return messages


def render(tokenizer, messages: Iterable[dict], template: str = "chat") -> str:
    """The prompt text for a conversation ending with a user turn: the tokenizer's chat template
    with its generation prompt (what TRL applies to a conversational training row's prompt), or
    for a base model the contents one per line."""
    messages = list(messages)
    if template == "base":
        return "".join(m["content"] + "\n" for m in messages)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
