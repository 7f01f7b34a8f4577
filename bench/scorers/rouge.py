"""ROUGE F1 of an open-ended answer against its reference, on Chinese-aware tokens.

rouge-score's default tokenizer keeps only [a-z0-9] and so scores any Chinese pair 0.0; this
scorer hands it jieba words or single characters instead (no stemming, no lowercasing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bench.evaluate.manifest import fingerprint_of
from bench.scorers._deps import require, version

VERSION = 1
TYPES = {"rouge-l": "rougeL", "rouge-1": "rouge1", "rouge-2": "rouge2"}


class Tokenizer:
    """What rouge_scorer.RougeScorer calls: `.tokenize(text) -> list[str]`."""

    def __init__(self, kind: Literal["jieba", "char"]):
        self.kind = kind
        self._cut: Callable[[str], list[str]] = _jieba_cut() if kind == "jieba" else list

    def tokenize(self, text: str) -> list[str]:
        return [t for t in self._cut(text) if t.strip()]


def _jieba_cut() -> Callable[[str], list[str]]:
    jieba = require("jieba", "jieba", "rouge")
    jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict ..." on stderr
    return jieba.lcut


@dataclass(frozen=True)
class RougeScorer:
    tokenizer: Literal["jieba", "char"] = "jieba"
    name: str = "rouge"
    metrics: tuple[str, ...] = tuple(TYPES)

    @property
    def fingerprint(self) -> str:
        packages = {"rouge_score": version("rouge-score", self.name)}
        if self.tokenizer == "jieba":
            packages["jieba"] = version("jieba", self.name)
        return fingerprint_of(self.name, VERSION, self.tokenizer, packages)

    @property
    def signature(self) -> str:
        return f"rouge-l|tok:{self.tokenizer}|f1|avg:macro"

    def score(self, samples: Sequence[Any], outputs: list[dict]) -> list[dict]:
        rouge_scorer = require("rouge_score.rouge_scorer", "rouge-score", self.name)
        scorer = rouge_scorer.RougeScorer(list(TYPES.values()), tokenizer=Tokenizer(self.tokenizer))
        scored = []
        for sample, out in zip(samples, outputs, strict=True):
            prediction, reference = out.get("prediction") or "", sample.reference or ""
            if prediction.strip() and reference.strip():
                f1 = scorer.score(reference, prediction)
                values = {m: float(f1[t].fmeasure) for m, t in TYPES.items()}
            else:
                values = dict.fromkeys(TYPES, 0.0)
            scored.append({"values": values})
        return scored
