"""ROUGE F1 of an open-ended answer against its reference, on Chinese-aware tokens.

rouge-score's default tokenizer keeps only [a-z0-9] and so scores any Chinese pair 0.0; this
scorer hands it jieba words or single characters instead (no stemming, no lowercasing).

Long texts: rouge-score's ROUGE-L fills an (m+1) x (n+1) table of Python ints (a 200 KB answer
against a 200 KB reference grew past 13 GB). Here each side is cut to its first `max_tokens`
tokens (10,000 by default; the cut is in the signature, and a cut sample says so), ROUGE-1/2
come from rouge-score on those tokens, and ROUGE-L's longest common subsequence is computed
bit-parallel (Hyyrö 2004) in memory linear in the text, with the same F1 as rouge-score's.
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
MAX_TOKENS = 10_000  # per side


class Tokenizer:
    """What rouge_scorer.RougeScorer calls: `.tokenize(text) -> list[str]` (the first `cap`)."""

    def __init__(self, kind: Literal["jieba", "char"], cap: int | None = None):
        self.kind, self.cap = kind, cap
        self._cut: Callable[[str], list[str]] = _jieba_cut() if kind == "jieba" else list
        self._last: dict[str, list[str]] = {}  # one pair's texts: each is cut by jieba once

    def tokenize(self, text: str) -> list[str]:
        return self.all_tokens(text)[: self.cap]

    def all_tokens(self, text: str) -> list[str]:
        if text not in self._last:
            if len(self._last) >= 2:
                self._last.clear()
            self._last[text] = [t for t in self._cut(text) if t.strip()]
        return self._last[text]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """The longest common subsequence's length, bit-parallel over b (Hyyrö 2004): one bit per
    token of b, one pass over a; memory is linear, not len(a) x len(b)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def _jieba_cut() -> Callable[[str], list[str]]:
    jieba = require("jieba", "jieba", "rouge")
    jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict ..." on stderr
    return jieba.lcut


@dataclass(frozen=True)
class RougeScorer:
    tokenizer: Literal["jieba", "char"] = "jieba"
    max_tokens: int = MAX_TOKENS
    name: str = "rouge"
    metrics: tuple[str, ...] = tuple(TYPES)

    @property
    def fingerprint(self) -> str:
        packages = {"rouge_score": version("rouge-score", self.name)}
        if self.tokenizer == "jieba":
            packages["jieba"] = version("jieba", self.name)
        return fingerprint_of(self.name, VERSION, self.tokenizer, packages, self.max_tokens)

    @property
    def signature(self) -> str:
        return f"rouge-l|tok:{self.tokenizer}|f1|avg:macro|cap:{self.max_tokens}"

    def score(self, samples: Sequence[Any], outputs: list[dict]) -> list[dict]:
        rouge_scorer = require("rouge_score.rouge_scorer", "rouge-score", self.name)
        scoring = require("rouge_score.scoring", "rouge-score", self.name)
        tok = Tokenizer(self.tokenizer, self.max_tokens)
        ngrams = rouge_scorer.RougeScorer(["rouge1", "rouge2"], tokenizer=tok)
        scored = []
        for sample, out in zip(samples, outputs, strict=True):
            prediction, reference = out.get("prediction") or "", sample.reference or ""
            record: dict = {}
            if prediction.strip() and reference.strip():
                f1 = ngrams.score(reference, prediction)
                pred, ref = tok.all_tokens(prediction), tok.all_tokens(reference)
                cut = {side: len(t) for side, t in (("prediction", pred), ("reference", ref))
                       if len(t) > self.max_tokens}
                pred, ref = pred[: self.max_tokens], ref[: self.max_tokens]
                lcs = lcs_length(ref, pred)  # as rouge-score's _score_lcs, without its table
                rouge_l = scoring.fmeasure(lcs / len(pred), lcs / len(ref)) if pred and ref else 0.0
                values = {"rouge-l": float(rouge_l), "rouge-1": float(f1["rouge1"].fmeasure),
                          "rouge-2": float(f1["rouge2"].fmeasure)}
                if cut:  # tokens each side had, of which the first max_tokens were scored
                    record["cut"] = cut
            else:
                values = dict.fromkeys(TYPES, 0.0)
            scored.append({"values": values, **record})
        return scored
