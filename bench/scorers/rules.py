"""Rule checks on open-ended answers (promptfoo-style assertions from the suite file).

Each check gives a score in [0, 1] and a pass; a sample passes when every check passes, or, with a
`threshold`, when the weighted mean of check scores reaches it. Phrases match as plain substrings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.evaluate.manifest import fingerprint_of
from bench.scorers.configs import (ForbiddenCheck, JsonCheck, LengthCheck, RegexCheck,
                                   RequiredCheck, RulesConfig)

VERSION = 1
FENCE = re.compile(r"^```(?:json)?[ \t]*\n(.*?)\n?```$", re.DOTALL | re.IGNORECASE)

Outcome = tuple[bool, float, list[str]]  # passed, score, what was found


def _forbidden(check: ForbiddenCheck, answer: str) -> Outcome:
    found = [p for p in check.phrases if p in answer]
    return not found, float(not found), found


def _required(check: RequiredCheck, answer: str) -> Outcome:
    found = [p for p in check.phrases if p in answer]
    share = len(found) / len(check.phrases)
    return share >= check.min_share, share, found


def _regex(check: RegexCheck, answer: str) -> Outcome:
    match = re.search(check.pattern, answer)
    passed = (match is not None) == check.must_match
    return passed, float(passed), [match.group(0)] if match else []


def _length(check: LengthCheck, answer: str) -> Outcome:
    n = len(answer.strip())
    passed = (check.min_chars is None or n >= check.min_chars) and (
        check.max_chars is None or n <= check.max_chars)
    return passed, float(passed), [f"{n} chars"]


def _json(check: JsonCheck, answer: str) -> Outcome:
    text = answer.strip()
    fenced = FENCE.match(text)
    try:
        json.loads(fenced.group(1) if fenced else text)
    except ValueError as exc:
        return False, 0.0, [f"not JSON: {exc}"]
    return True, 1.0, []


CHECKS: dict[str, Callable[[Any, str], Outcome]] = {
    "forbidden": _forbidden, "required": _required, "regex": _regex, "length": _length,
    "json": _json}


@dataclass(frozen=True)
class RulesScorer:
    config: RulesConfig
    name: str = "rules"
    metrics: tuple[str, ...] = ("rules_pass", "rules_score")

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.name, VERSION, self.config.model_dump(mode="json"))

    @property
    def signature(self) -> str:
        config = self.config.model_dump(mode="json")
        rule = "all" if self.config.threshold is None else f"mean>={self.config.threshold:g}"
        return f"rules|n:{len(self.config.checks)}|{fingerprint_of(config)[:8]}|pass:{rule}"

    def assess(self, answer: str) -> dict:
        """One answer's pass, weighted score and per-check hits."""
        hits, total, weights = [], 0.0, 0.0
        for check in self.config.checks:
            passed, score, found = CHECKS[check.type](check, answer)
            hits.append({"check": check.title, "passed": passed, "score": score, "found": found})
            total, weights = total + check.weight * score, weights + check.weight
        mean = total / weights
        threshold = self.config.threshold
        passed = all(h["passed"] for h in hits) if threshold is None else mean >= threshold
        return {"values": {"rules_pass": float(passed), "rules_score": mean},
                "hits": hits, "passed": passed}

    def score(self, samples: Sequence[Any], outputs: list[dict]) -> list[dict]:
        if len(samples) != len(outputs):
            raise ValueError(f"rules: {len(samples)} samples but {len(outputs)} outputs")
        return [self.assess(out.get("prediction") or "") for out in outputs]
