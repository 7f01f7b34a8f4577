"""The Backend protocol, and how OpenCompass turns a message list into model input.

Rendering lives here, not in a backend, because every backend (local weights or an API) must feed
the model exactly what OpenCompass feeds it:

* base models (``HuggingFaceBaseModel``, ``LMTemplateParser`` without a meta template,
  opencompass/models/base.py:LMTemplateParser.parse_template): the prompts of a round are joined
  with ``'\\n'`` -- not plainly concatenated -- so ``[HUMAN q, BOT a]`` becomes ``"q\\na"``.
* chat models (``HuggingFacewithChatTemplate``, ``APITemplateParser`` with the default meta template
  round ``[HUMAN, SYSTEM->HUMAN, BOT(generate)]``, opencompass/models/base_api.py and
  huggingface_above_v4_33.py:_convert_chat_messages): every meta role is emitted once per round, the
  absent SYSTEM as an empty HUMAN turn, then same-role neighbours are merged with ``'\\n'``. A
  single-HUMAN round ``q`` therefore becomes the user message ``"q\\n"``. In gen mode the last
  round stops before BOT; the tokenizer's chat template is applied with add_generation_prompt=True.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from bench.tasks.base import Message, Prompt
from bench.tasks.loaders import file_sha256

# OpenCompass's default API meta template: (role, api_role, generate)
_META_ROUND = (("HUMAN", "HUMAN", False), ("SYSTEM", "HUMAN", False), ("BOT", "BOT", True))
_ROLE_INDEX = {role: i for i, (role, _, _) in enumerate(_META_ROUND)}
_CHAT_ROLE = {"HUMAN": "user", "BOT": "assistant", "SYSTEM": "system"}


def oc_base_text(prompt: Prompt | str) -> str:
    """LMTemplateParser (no meta template): non-empty prompts joined by '\\n'.

    A plain str stands for an OpenCompass string template (csl/ocnli_fc ppl) and is kept as is.
    """
    if isinstance(prompt, str):
        return prompt
    text, sep = "", ""
    for message in prompt:
        if message.prompt:
            text += sep + message.prompt
        sep = "\n"
    return text


def _split_rounds(prompt: Prompt) -> list[list[Message]]:
    """APITemplateParser._split_rounds: a new round starts when a role does not move forward."""
    rounds: list[list[Message]] = []
    last = -1
    for message in prompt:
        idx = _ROLE_INDEX[message.role]
        if idx <= last or not rounds:
            rounds.append([])
        rounds[-1].append(message)
        last = idx
    return rounds


def oc_chat_messages(prompt: Prompt | str, mode: str) -> list[dict[str, str]]:
    """Chat messages exactly as OpenCompass builds them for a chat model (mode 'gen' or 'ppl').

    A plain str (an OpenCompass string template) becomes one user message, without the '\\n'.
    """
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    api: list[list[str]] = []  # [api_role, text]
    rounds = _split_rounds(prompt)
    for r, round_ in enumerate(rounds):
        given = {m.role: m.prompt for m in round_}
        for role, api_role, generate in _META_ROUND:
            if mode == "gen" and generate and r == len(rounds) - 1:
                break
            api.append([api_role, given.get(role, "")])
    merged: list[list[str]] = []
    for api_role, text in api:  # APITemplateParser merge of same-role neighbours
        if merged and merged[-1][0] == api_role:
            merged[-1][1] += "\n" + text
        else:
            merged.append([api_role, text])
    messages: list[dict[str, str]] = []
    for api_role, text in merged:  # _convert_chat_messages: skip empty, merge again
        if not text:
            continue
        role = _CHAT_ROLE[api_role]
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + text
        else:
            messages.append({"role": role, "content": text})
    return messages


# Files that decide what a model computes: weights, config, tokenizer, chat template, remote code.
CONTENT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".json", ".model", ".txt",
                    ".jinja", ".tiktoken", ".py")
def dir_fingerprint(root: str | os.PathLike) -> str:
    """sha256 over (relative path, file sha256) of a model/adapter dir's content files."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.suffix.lower() in CONTENT_SUFFIXES:
            digest.update(f"{rel.as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def oc_batched_ce(scores: list[list[dict]], batch_size: int,
                  pad_nll: Callable[[list[tuple[int, int]]], list[float]],
                  shard_size: int | None = None) -> list[list[float]]:
    """The ce OpenCompass reports when it scores with batch_size > 1 (left padding, no
    position ids): PPLInferencer batches candidate l of samples [j*bs, (j+1)*bs) together, and a
    row with k = (longest in its batch) - (own length) pads also counts its first token,
    predicted from the last pad: ce = (-logprob + pad_nll(k, first_token)) / n_counted.

    `scores` are score_candidates results for a whole task in dataset order, every item with the
    same candidates (labels); `pad_nll` is the backend's oc_pad_nll. `shard_size`: the step of
    OpenCompass's NumWorkerPartitioner (max(ceil(n / num_split), min_task_size)) when it split
    the task, since batches restart at every shard.
    """
    if not scores:
        return []
    n_labels = len(scores[0])
    ks: list[list[int]] = [[0] * n_labels for _ in scores]
    for label in range(n_labels):
        step = shard_size or len(scores)
        starts = [b for s in range(0, len(scores), step)
                  for b in range(s, min(s + step, len(scores)), batch_size)]
        for start in starts:
            shard_end = (start // step + 1) * step
            rows = range(start, min(start + batch_size, shard_end, len(scores)))
            longest = max(scores[i][label]["n_tokens"] for i in rows)
            for i in rows:
                ks[i][label] = longest - scores[i][label]["n_tokens"]
    pairs = [(ks[i][c], s["first_token"])
             for i, row in enumerate(scores) for c, s in enumerate(row)]
    extra = iter(pad_nll(pairs))
    return [[(-s["logprob"] + next(extra)) / s["n_counted"] for s in row] for row in scores]


def new_stats() -> dict[str, int]:
    """Counters every backend keeps (cumulative over its lifetime)."""
    return {"tokens_pushed": 0, "tokens_padded": 0, "tokens_naive": 0,
            "forward_calls": 0, "sequences": 0}


@runtime_checkable
class Backend(Protocol):
    """What the evaluator needs from a model."""

    fingerprint: str
    """sha256 over model content (weights, tokenizer, chat template, template mode, adapter)."""
    info: dict
    """params, dtype, device, template mode, backend name and version."""
    stats: dict
    """tokens_pushed, tokens_padded, tokens_naive, forward_calls, sequences."""

    def render(self, prompt: Prompt, mode: str) -> str:
        """The exact text the model is fed for a prompt in mode 'gen' or 'ppl'."""
        ...

    def render_chat(self, messages: list[dict]) -> str:
        """The text a conversation of role/content messages (ending with a user turn) is answered
        from: the chat template's rendering with the generation prompt (base: one per line)."""
        ...

    def score_candidates(self, items: list[list[Prompt]]) -> list[list[dict]]:
        """Per item, per candidate full sequence: {"ce", "logprob", "n_tokens"}.

        ce is OpenCompass's get_ppl value (lowest wins, first on ties); logprob is the summed
        log-probability of the tokens counted in ce; n_tokens the length of the token sequence.
        """
        ...

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[dict]:
        """Per (context, continuation), tokenized as lm-eval's HFLM does: {"logprob" (summed over
        the continuation's tokens), "token_logprobs", "n_tokens", "is_greedy"}."""
        ...

    def generate(self, prompts: list[Prompt], max_new_tokens: int,
                 stop: Callable[[str], bool] | None = None) -> list[str]:
        """Greedy continuations; a sequence ends at EOS, max_new_tokens or once stop(text)."""
        ...
