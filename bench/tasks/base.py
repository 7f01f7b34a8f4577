"""Sample and Task: what every backend, scorer and report agrees on.

A prompt is a list of messages in OpenCompass's roles (HUMAN / BOT / SYSTEM). How a message list
becomes text is the backend's business (chat template for chat models, plain concatenation for base
models, as OpenCompass does); a task never tokenizes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from bench.rows import RowLog

Role = Literal["HUMAN", "BOT", "SYSTEM"]
Mode = Literal["gen", "ppl"]


@dataclass(frozen=True)
class Message:
    role: Role
    prompt: str


Prompt = tuple[Message, ...]



@dataclass(frozen=True)
class Sample:
    """One scored item.

    gen mode: `gen_prompt` is asked; the post-processed answer is compared with `letters[target]`.
    ppl mode: `ppl_prompts[i]` is the full sequence for candidate i (context and answer together);
    the candidate with the lowest mean token cross-entropy wins and is compared with `target`.
    """

    id: str  # position in the source file ("L17"): ids in FewCLUE files are not unique
    doc: dict
    target: int
    gen_prompt: Prompt
    ppl_prompts: tuple[Prompt, ...]
    letters: tuple[str, ...]

    @property
    def hash(self) -> str:
        payload = json.dumps(
            {"doc": self.doc, "target": self.target}, ensure_ascii=False, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class Task:
    """A task of one kind (bench/tasks/kinds.py) at one split in one mode, with its samples
    loaded (Sample for the choice kind; each kind has its own, with `id` and `hash`)."""

    name: str
    split: str
    mode: str  # choice: gen | ppl; preference: loglik
    samples: list
    spec_fingerprint: str  # templates, labels, post-processor, metric, loader version
    data_sha256: str
    metric: str = "accuracy"
    meta: dict = field(default_factory=dict)
    rows: RowLog | None = None  # what reading the data kept, skipped as bad, and dropped
    kind: str = "choice"
    scorers: list = field(default_factory=list)  # bound by bench.tasks.kinds.bind_scorers

    @property
    def key(self) -> str:
        return f"{self.name}-{self.split}"

    @property
    def fingerprint(self) -> str:
        raw = f"{self.spec_fingerprint}|{self.mode}|{self.data_sha256}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def signature(self) -> str:
        """The headline metric's signature: its first scorer's."""
        return self.scorers[0].signature
