"""Sentence BLEU of an open-ended answer against its reference (sacrebleu, Chinese tokenizer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.evaluate.manifest import fingerprint_of
from bench.scorers._deps import require, version

VERSION = 1


@dataclass(frozen=True)
class BleuScorer:
    name: str = "bleu"
    metrics: tuple[str, ...] = ("bleu",)
    signature: str = "bleu|tok:zh|sentence|avg:macro"

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.name, VERSION, "zh", {"sacrebleu": version("sacrebleu", self.name)})

    def score(self, samples: Sequence[Any], outputs: list[dict]) -> list[dict]:
        sacrebleu = require("sacrebleu", "sacrebleu", self.name)
        scored = []
        for sample, out in zip(samples, outputs, strict=True):
            prediction, reference = out.get("prediction") or "", sample.reference or ""
            bleu = 0.0
            if prediction.strip() and reference.strip():
                score = sacrebleu.sentence_bleu(prediction, [reference], tokenize="zh").score
                bleu = min(1.0, score / 100)  # an identical pair gives 100.00000000000004
            scored.append({"values": {"bleu": bleu}})
        return scored
